"""The options of `reasonalign annotate` and its actions (init, add-rater, serve, export, stats): their flags and
help come from these fields (core/config.py)."""

from dataclasses import dataclass

from reasonalign.core.config import option
from reasonalign.judging import JudgeOptions


@dataclass
class InitConfig:
    items: str | None = option(None, "generations.jsonl of each model to rate, comma-separated; the folder name is the "
                              "model's name (or write NAME=PATH)")
    db: str = option("study.sqlite", "the study file to create (never overwritten)")
    show_gold_reason: bool = option(False, "show raters the human reason beside the generated one")
    seed: int = option(0, "seed of the blinded ids and of each rater's item order")
    max_items: int | None = option(None, "rate only this many items per model (a seeded sample of each file)")


@dataclass
class RaterConfig:
    db: str = option("study.sqlite", "the study file")


@dataclass
class ServeConfig:
    db: str = option("study.sqlite", "the study file")
    host: str = option("127.0.0.1", "address to bind; anything but loopback needs --allow-remote")
    port: int = option(8750, "port (0 = any free port; the address is printed)")
    allow_remote: bool = option(False, "allow a non-loopback --host; put a TLS proxy in front (tokens travel in "
                                       "every request) that passes the Host header through unchanged (the "
                                       "Origin check compares with it)")
    allowed_hosts: str | None = option(None, "comma-separated extra Host names to answer (a proxy's public name); "
                                             "requests for any other Host than these, --host and the loopback "
                                             "names get 400")
    threads: int = option(8, "worker threads of the server")
    max_body_kb: int = option(64, "largest request body accepted, in KiB (larger requests get 413)")


@dataclass
class ExportConfig:
    db: str = option("study.sqlite", "the study file")
    output: str = option("ratings.csv", "the filled rating sheet (its un-blinding key goes beside it as "
                                        "NAME.key.csv); `eval --task reasons --judge human --ratings` reads it")


@dataclass
class StatsConfig(JudgeOptions):
    db: str = option("study.sqlite", "the study file")
    judge: str = option("", "automatic judges to compare with the raters on the same items: reference, llm or "
                            "both comma-separated; empty = none")
    output: str | None = option(None, "also write every number as JSON here")
    seed: int = option(0, "seed of the bootstrap intervals")
