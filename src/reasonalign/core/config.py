"""One config system: dataclasses whose field help is the CLI help, filled from YAML and flags.

Precedence, lowest first: dataclass defaults < `--config recipe.yaml` < `--key value` flags
(every field is a flag, e.g. `--lora-r 16`). Unknown YAML keys are errors, so a typo in a
recipe never silently falls back to a default.
"""

import argparse
import dataclasses
import types
import typing
from pathlib import Path

import yaml

from reasonalign.core.errors import UserError


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_HELP = ("precision of every forward pass: bf16 = bfloat16 autocast, fp16 = float16 autocast (GPU only), "
                  "auto = bf16 where a matmul probe on this machine finds it faster, else fp32")


def option(default, help: str, choices=None):
    """A dataclass field that carries its CLI help (and choices)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def redefault(base, name: str, default):
    """The field `name` of dataclass `base` with another default (same help and choices): how a
    subclass config says "the same option, another default" without repeating its help."""
    f = next(f for f in dataclasses.fields(base) if f.name == name)
    return option(default, f.metadata.get("help", ""), f.metadata.get("choices"))


def _base_type(tp):
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _convert(cls, name: str, value):
    if value is None:
        return None
    tp = _base_type(typing.get_type_hints(cls)[name])
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


def add_arguments(parser, cls, seen: set[str] | None = None, defaults: dict[str, str] | None = None) -> None:
    """One `--field-name` flag per dataclass field; help and choices come from the field.

    `seen` (names already added to the same parser) lets several configs share one command:
    `eval --task ...` adds each task's options once, in the task's own argument group, and
    `defaults` replaces the default shown for options whose default differs by task.
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
        shown = (defaults or {}).get(f.name, f.default)
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS, help=f"{f.metadata.get('help', '')} (default: {shown})")
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
    return cls(**values)


def _read_yaml(path: Path, names: set[str]) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark else None
        raise UserError(f"{path}:{row}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of option: value")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{path}: unknown option(s) {', '.join(unknown)}")
    return data


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
