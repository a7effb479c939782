"""One config system: dataclasses whose field help is the CLI help, filled from YAML and flags.

Precedence, lowest first: dataclass defaults < `--config recipe.yaml` < `--key value` flags
(every field is a flag, e.g. `--lora-r 16`). Unknown YAML keys are errors, so a typo in a
recipe never silently falls back to a default. Every value, from YAML or a flag, is checked
against the range of its name (`RANGES`: an option name means one thing in every command)
before any model loads: `--batch-size 0` or `lr: .nan` is one line, not a traceback after
minutes of loading, nor a "finished" run that trained nothing.
"""

import argparse
import dataclasses
import math
import sys
import types
import typing
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.files import read_yaml


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_HELP = ("precision of every forward pass: bf16 = bfloat16 autocast, fp16 = float16 autocast (GPU only), "
                  "auto = bf16 where a matmul probe on this machine finds it faster, else fp32")
DEFAULT_MODEL = "smollm2-135m-instruct"  # every command's --model default (one of models.OFFLINE_MODELS)
MODEL_HELP = "short name, hub id or folder of the base model"


@dataclasses.dataclass(frozen=True)
class Range:
    """The values an option accepts: a finite number between lo and hi (open ends say "above"/"below"),
    or one of `also` (e.g. -1 = "use epochs")."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    also: tuple = ()

    def accepts(self, value) -> bool:
        if value in self.also:
            return True
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def text(self) -> str:
        if self.lo is not None and self.hi is not None and not (self.lo_open or self.hi_open):
            return f"between {self.lo:g} and {self.hi:g}" + "".join(f" (or {a:g})" for a in self.also)
        low = None if self.lo is None else f"{'above' if self.lo_open else 'at least'} {self.lo:g}"
        high = None if self.hi is None else f"{'below' if self.hi_open else 'at most'} {self.hi:g}"
        words = " and ".join(filter(None, [low, high])) or "finite"
        return words + "".join(f" (or {a:g})" for a in self.also)


_POSITIVE, _COUNT, _NONNEG = Range(0, lo_open=True), Range(1), Range(0)
_SHARE = Range(0, 1, hi_open=True)
RANGES = {
    "lr": _POSITIVE, "encoder_lr": _POSITIVE, "epochs": _POSITIVE, "encoder_epochs": _COUNT,
    "max_steps": Range(1, also=(-1,)), "grad_accum": _COUNT, "batch_size": _COUNT, "groups_per_step": _COUNT,
    "max_length": _COUNT, "max_new_tokens": _COUNT, "min_new_tokens": _NONNEG, "max_tokens": _COUNT, "batch_tokens": _COUNT, "warmup_ratio": _SHARE,
    "weight_decay": _NONNEG, "max_grad_norm": _NONNEG, "lora_r": _COUNT, "lora_alpha": _POSITIVE,
    "lora_dropout": _SHARE, "lora_layers": _COUNT, "logging_steps": _COUNT, "save_steps": _NONNEG,
    "train_rows": Range(1, also=(0,)), "calibration_rows": _NONNEG, "rows": _COUNT, "skip_rows": _NONNEG, "max_items": _COUNT,
    "label_weight": Range(0, 1), "k": _COUNT, "temperature": _NONNEG, "top_p": Range(0, 1, lo_open=True),
    "repetition_penalty": _POSITIVE, "no_repeat_ngram_size": _NONNEG, "seed": _NONNEG,
    "test_share": Range(0, 1, lo_open=True, hi_open=True), "cv_folds": Range(2), "port": Range(0, 65535),
    "threads": _COUNT, "max_body_kb": _COUNT, "judge_concurrency": _COUNT, "judge_timeout": _POSITIVE,
    "judge_retries": _NONNEG, "sft_weight": _NONNEG, "max_responses": _COUNT, "beta": _POSITIVE,
    "constraint_beta": _NONNEG,
}


def check_value(name: str, value) -> None:
    """One-line `UserError` when a number is out of its option's range or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    rule = RANGES.get(name, Range())
    if not rule.accepts(value):
        finite = "" if math.isfinite(value) or rule.also else " a finite number"
        raise UserError(f"--{name.replace('_', '-')} {value}: must be{finite} {rule.text()}")


def validate(config) -> None:
    """Check every field of a config instance (defaults included): the API path of `build`."""
    for f in dataclasses.fields(config):
        check_value(f.name, getattr(config, f.name))


def option(default, help: str, choices=None):
    """A dataclass field that carries its CLI help (and choices)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def precision_option():
    """`--precision`: the same choices, default and help in every command that runs a model."""
    return option("auto", PRECISION_HELP, list(PRECISIONS))


def trust_remote_code_option():
    """`--trust-remote-code`: off unless asked for, in every command that loads a model."""
    return option(False, "allow model code from the hub (off unless you ask)")


def redefault(base, name: str, default):
    """The field `name` of dataclass `base` with another default (same help and choices): how a
    subclass config says "the same option, another default" without repeating its help."""
    f = next(f for f in dataclasses.fields(base) if f.name == name)
    return option(default, f.metadata.get("help", ""), f.metadata.get("choices"))


def _base_type(tp):
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _optional(tp) -> bool:
    return (isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union) and type(None) in typing.get_args(tp)


def _convert(cls, name: str, value):
    hint = typing.get_type_hints(cls)[name]
    if value is None:
        if not _optional(hint):  # `lr: null` in a YAML would otherwise reach the trainer as None
            raise UserError(f"option {name}: needs a value, got null")
        return None
    tp = _base_type(hint)
    try:
        # YAML gives typed values: never truncate 8.5 to 8 or read true/[..] as a number or text
        if isinstance(value, (list, dict)) or (isinstance(value, bool) and tp is not bool):
            raise ValueError(value)
        if (tp is int and isinstance(value, float) and not value.is_integer()) or (
                tp is bool and not isinstance(value, str) and value not in (0, 1)):
            raise ValueError(value)
        if tp is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return tp(value) if not isinstance(value, tp) else value
    except (TypeError, ValueError):
        raise UserError(f"option {name}: expected {tp.__name__}, got {value!r}") from None


def add_arguments(parser, cls, seen: set[str] | None = None, hidden: bool = False) -> None:
    """One `--field-name` flag per dataclass field; help and choices come from the field.

    `seen` (names already added to the same parser) lets several configs share one command, and
    `hidden` adds flags that parse but do not show in `--help`: `eval` lists the options of its
    `--task` and still parses the other tasks' (to refuse them with a one-line error).
    """
    if seen is None or not seen:
        parser.add_argument("--config", metavar="YAML", help="recipe file with any of the options below")
    seen = set() if seen is None else seen
    seen.add("config")
    for f in dataclasses.fields(cls):
        if f.name in seen:
            continue
        seen.add(f.name)
        flag = "--" + f.name.replace("_", "-")
        tp = _base_type(typing.get_type_hints(cls)[f.name])
        text = argparse.SUPPRESS if hidden else f"{f.metadata.get('help', '')} (default: {f.default})"
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS, help=text)
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            parser.add_argument(flag, metavar=tp.__name__.upper(), **kwargs)


def build(cls, args: argparse.Namespace):
    """Merge defaults, the YAML recipe and flags into a validated `cls` instance."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict = {}
    if getattr(args, "config", None):
        values.update(_read_yaml(Path(args.config), names))
    values.update({k: v for k, v in vars(args).items() if k in names})
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        if f.name in values:
            values[f.name] = _convert(cls, f.name, values[f.name])
            if choices and values[f.name] not in choices:
                raise UserError(f"option {f.name}: {values[f.name]!r} is not one of {', '.join(map(str, choices))}")
            check_value(f.name, values[f.name])
    return cls(**values)


def _read_yaml(path: Path, names: set[str]) -> dict:
    data = read_yaml(path)
    if data is None:  # allowed (= the defaults), but said: it is as likely the wrong or an unsaved file
        print(f"warning: {path}: empty config file; every option keeps its default", file=sys.stderr)
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of option: value")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{path}: unknown option(s) {', '.join(unknown)}")
    return data


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
