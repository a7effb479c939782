"""`reasonalign recipe FILE.yaml`: a pipeline of reasonalign commands (e.g. train -> sample -> align -> eval).

A recipe is plain YAML; every step is one sub-command with its options, exactly as its flags::

    output: runs/aft-aqua                 # "{output}" in any value below becomes this
    steps:
      - name: sft                         # a label for the log
        command: train                    # any reasonalign sub-command
        creates: "{output}/sft/train_summary.json"   # optional: skip the step when this exists
        options: {method: cot, data: aqua:dev, output: "{output}/sft"}

A step runs as `reasonalign COMMAND --key value ...` (True -> `--key`, False -> `--no-key`), so the
command itself checks its options. `creates` makes a rerun resume after the last finished step.
The time of each step goes to {output}/recipe_summary.json.
"""

import json
import shlex
import time
from pathlib import Path

import yaml

from reasonalign.core.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("recipe", help="run a multi-step YAML recipe (train -> sample -> align -> eval)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("file", metavar="FILE.yaml", help="the recipe, e.g. configs/aft-aqua-cpu.yaml")
    p.add_argument("--output", help="replace the recipe's output folder")
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    p.set_defaults(run=run)


def load_recipe(path: Path, output: str | None = None) -> tuple[str, list[dict]]:
    """(output folder, steps with their argv), checked before any step runs."""
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML") from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("steps"), list) or not recipe["steps"]:
        raise UserError(f"{path}: a recipe needs `steps:`, a list of {{command, options}}")
    out = output or str(recipe.get("output", "runs/recipe"))
    steps = []
    for n, step in enumerate(recipe["steps"], 1):
        if not isinstance(step, dict) or not isinstance(step.get("command"), str):
            raise UserError(f"{path}: step {n} needs a `command`")
        unknown = set(step) - {"name", "command", "options", "creates"}
        if unknown:
            raise UserError(f"{path}: step {n}: unknown key(s) {', '.join(sorted(unknown))}")
        options = step.get("options") or {}
        if not isinstance(options, dict):
            raise UserError(f"{path}: step {n}: `options` must be a mapping of option: value")
        argv = step["command"].split()
        for key, value in options.items():
            flag = "--" + str(key).replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            elif value is not None:
                argv += [flag, str(value).replace("{output}", out)]
        creates = step.get("creates")
        steps.append({"name": step.get("name") or f"step {n}", "argv": argv,
                      "creates": creates.replace("{output}", out) if creates else None})
    return out, steps


def check_options(path, steps: list[dict]) -> None:
    """Every step's flags must exist for its command: a typo fails before step 1 starts, not after."""
    from reasonalign.cli import build_parser

    for n, step in enumerate(steps, 1):
        try:
            _, unknown = build_parser().parse_known_args(step["argv"])
        except SystemExit:  # argparse has printed what is wrong
            raise UserError(f"{path}: step {n} ({step['name']}): invalid command or option value") from None
        if unknown:
            raise UserError(f"{path}: step {n} ({step['name']}): unknown option(s) {' '.join(unknown)}")


def run(args) -> int:
    from reasonalign.cli import main

    out, steps = load_recipe(Path(args.file), args.output)
    check_options(args.file, steps)
    done = []
    for i, step in enumerate(steps, 1):
        line = "reasonalign " + shlex.join(step["argv"])
        if step["creates"] and Path(step["creates"]).exists():
            print(f"[{i}/{len(steps)}] {step['name']}: already done ({step['creates']} exists), skipped")
            done.append({**step, "seconds": None, "skipped": True})
            continue
        print(f"[{i}/{len(steps)}] {step['name']}: {line}", flush=True)
        if args.dry_run:
            continue
        started = time.time()
        status = main(step["argv"])
        seconds = round(time.time() - started, 1)
        done.append({**step, "seconds": seconds, "skipped": False})
        if status:
            raise UserError(f"{args.file}: step {i} ({step['name']}) failed with exit status {status}")
        print(f"[{i}/{len(steps)}] {step['name']}: done in {seconds} s", flush=True)
    if not args.dry_run:
        Path(out).mkdir(parents=True, exist_ok=True)
        total = sum(s["seconds"] or 0 for s in done)
        (Path(out) / "recipe_summary.json").write_text(json.dumps(
            {"recipe": args.file, "output": out, "seconds": round(total, 1), "steps": done}, indent=2))
        print(f"recipe done in {total / 60:.1f} min -> {out}/recipe_summary.json")
    return 0
