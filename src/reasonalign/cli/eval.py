"""`reasonalign eval --task labels|reasons|answers|ranking`: one command, one config per task.

Each task's options are a dataclass in `eval/config.py` (so `--help` imports no implementation); options
with the same name (model, adapter, output, seed, ...) mean the same thing in every task and appear once.
"""

import dataclasses
import importlib

from reasonalign.core import config as cfg
from reasonalign.core.distributed import is_main
from reasonalign.core.errors import UserError

# task: (module, its config class in eval/config.py, its function config -> metrics dict, what it measures).
# The module also has `headline(metrics, config) -> str`, the line printed when it is done.
TASKS = {
    "labels": ("reasonalign.eval.labels", "EvalConfig", "evaluate", "classification accuracy (DFAR, ETHOS)"),
    "reasons": ("reasonalign.eval.reasons", "ReasonsConfig", "evaluate_reasons",
                "misalignment rate (MAR) of generated reasons, by the reference, llm or human judge"),
    "answers": ("reasonalign.eval.answers", "AnswersConfig", "evaluate_answers",
                "chain-of-thought answer accuracy (GSM8K, AQuA)"),
    "ranking": ("reasonalign.eval.ranking", "RankingConfig", "evaluate_ranking",
                "assessment alignment: share of (better, worse) response pairs ordered right, and the margin"),
}
GLOBAL = {"command", "run", "debug", "task", "config", "commands"}


def _config(name: str):
    from reasonalign.eval import config

    return getattr(config, TASKS[name][1])


def _task(name: str):
    module, _, fn_name, _ = TASKS[name]
    mod = importlib.import_module(module)
    return mod, _config(name), getattr(mod, fn_name)


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure accuracy, misalignment rate, answers or ranking",
                       description="Evaluate a model (optionally with a LoRA adapter) and write metrics.json. "
                                   "Tasks: " + "; ".join(f"{k} = {v[3]}" for k, v in TASKS.items()) + ".")
    p.add_argument("--task", choices=list(TASKS), default="labels", help="what to measure (default: labels)")
    configs = {name: _config(name) for name in TASKS}
    seen: set[str] = set()
    for name, config_cls in configs.items():
        group = p.add_argument_group(f"--task {name}" if seen else f"--task {name} (and options shared by all tasks)")
        cfg.add_arguments(group, config_cls, seen, _defaults_by_task(configs))
    p.set_defaults(run=run)


def _defaults_by_task(configs: dict) -> dict[str, str]:
    """'labels: dfar:test, answers: gsm8k:test' for the shared options whose default differs by task."""
    by_name: dict[str, dict] = {}
    for task, config_cls in configs.items():
        for f in dataclasses.fields(config_cls):
            by_name.setdefault(f.name, {})[task] = f.default
    return {name: ", ".join(f"{task}: {d}" for task, d in per_task.items())
            for name, per_task in by_name.items() if len({repr(d) for d in per_task.values()}) > 1}


def run(args) -> int:
    mod, config_cls, evaluate = _task(args.task)
    names = {f.name for f in dataclasses.fields(config_cls)}
    foreign = sorted(k for k in vars(args) if k not in names | GLOBAL)
    if foreign:  # a flag of another task would otherwise be silently ignored
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise UserError(f"{flags}: not an option of --task {args.task}")
    config = cfg.build(config_cls, args)
    from reasonalign.cli import locked

    with locked(config.output, f"eval --task {args.task}"):
        metrics = evaluate(config)
    if is_main():  # under a launcher the main process holds the metrics (core.distributed)
        print(mod.headline(metrics, config))
    return 0
