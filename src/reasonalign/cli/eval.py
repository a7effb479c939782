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


def register(sub, argv: list[str] | None = None) -> None:
    """`eval --help` lists the options of the task on the command line (default labels) and no other."""
    task = _task_on(argv or [])
    p = sub.add_parser("eval", help="measure accuracy, misalignment rate, answers or ranking",
                       description="Evaluate a model (optionally with a LoRA adapter) and write metrics.json. "
                                   "Tasks: " + "; ".join(f"{k} = {v[3]}" for k, v in TASKS.items()) + ". "
                                   f"Options below: --task {task}'s; each task's: "
                                   f"reasonalign eval --task NAME --help.")
    p.add_argument("--task", choices=list(TASKS), default="labels", help="what to measure (default: labels)")
    seen: set[str] = set()
    cfg.add_arguments(p.add_argument_group(f"--task {task}"), _config(task), seen)
    for name in TASKS:  # the other tasks' flags parse, so that run() refuses them in one line
        cfg.add_arguments(p, _config(name), seen, hidden=True)
    p.set_defaults(run=run)


def _task_on(argv: list[str]) -> str:
    """The `--task` value of an `eval` command line (`--task X` or `--task=X`), else labels."""
    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv) and argv[i + 1] in TASKS:
            return argv[i + 1]
        if arg.startswith("--task=") and arg.split("=", 1)[1] in TASKS:
            return arg.split("=", 1)[1]
    return "labels"


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
