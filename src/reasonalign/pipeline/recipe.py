"""Recipes: a pipeline of reasonalign commands (e.g. train -> sample -> align -> eval), run by `reasonalign recipe`.

A recipe is plain YAML; every step is one sub-command with its options, exactly as its flags::

    vars:                                 # optional: "{name}" in any value below becomes the var's value
      lr: {default: 1.0e-3, help: "learning rate"}          # --set lr=2e-3 overrides it
    output: runs/aft-aqua                 # "{output}" (a var too; --output overrides it)
    steps:
      - name: sft                         # a label for the log
        command: train                    # any reasonalign sub-command
        creates: "{output}/sft/run.json"  # optional: skip the step when this exists
        if: lr                            # optional: skip the step when this var is 0, false or empty
        options: {method: cot, data: aqua:dev, lr: "{lr}", output: "{output}/sft"}
    table: ...                            # optional: a results table after the steps (report/recipe_table.py)

A step runs as `reasonalign COMMAND --key value ...` (True -> `--key`, False -> `--no-key`, None ->
left out), so the command itself checks its options. `creates` makes a rerun resume after the last
finished step; so does `--resume`, which keeps the key of every finished command line (chained with
the steps before it) in {output}/recipe_steps.json. NAME is a recipe shipped in the package
(`reasonalign/recipes/NAME.yaml`, e.g. demo).
The time of each step goes to {output}/recipe_summary.json. `--seeds 0,1,2` runs the whole recipe once
per seed (its `seed` var) into {output}/seed-S and writes the mean and spread over seeds to
{output}/results-seeds.md and .json: one seed's CI covers the test items, not the training run.
"""

import hashlib
import json
import re
import shlex
import time
from pathlib import Path


from reasonalign.core.errors import UserError
from reasonalign.core.files import read_yaml, write_text
from reasonalign.pipeline import Commands

BUILTIN = Path(__file__).parents[1] / "recipes"
RESUME_FILE = "recipe_steps.json"  # the keys of the steps a `--resume` run finished in its output folder


def recipe_path(name: str) -> Path:
    path = Path(name)
    if not path.is_file() and (BUILTIN / f"{name}.yaml").is_file():
        return BUILTIN / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found")
    return path


def read_recipe(path: Path) -> dict:
    recipe = read_yaml(path, "recipe")
    if not isinstance(recipe, dict) or not isinstance(recipe.get("steps"), list) or not recipe["steps"]:
        raise UserError(f"{path}: a recipe needs `steps:`, a list of {{command, options}}")
    unknown = set(recipe) - {"vars", "output", "steps", "table"}
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    return recipe


def var_specs(path: Path, recipe: dict) -> dict[str, dict]:
    """name -> {default, help, type} for every var (`output` always is one)."""
    specs = {}
    for name, spec in (recipe.get("vars") or {}).items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        if set(spec) - {"default", "help", "type"}:
            raise UserError(f"{path}: var {name}: keys are default, help and type")
        kind = spec.get("type") or type(spec.get("default")).__name__
        if kind not in ("int", "float", "str", "bool"):
            raise UserError(f"{path}: var {name}: give a default or `type: int|float|str|bool`")
        specs[name] = {"default": spec.get("default"), "help": str(spec.get("help", "")), "type": kind}
    specs.setdefault("output", {"default": str(recipe.get("output", "runs/recipe")), "help": "output folder",
                                "type": "str"})
    return specs


def _typed(name: str, kind: str, text: str):
    if text.lower() in ("none", "null", ""):
        return None
    try:
        if kind == "bool":
            return {"true": True, "false": False}[text.lower()]
        return {"int": int, "float": float, "str": str}[kind](text)
    except (KeyError, ValueError):
        raise UserError(f"--set {name}={text}: expected {kind}") from None


def fill_vars(value, values: dict):
    """"{var}" alone -> the var's typed value; inside a longer string -> its text."""
    if not isinstance(value, str):
        return value
    if value.startswith("{") and value.endswith("}") and value[1:-1] in values:
        return values[value[1:-1]]
    for name, v in values.items():
        value = value.replace("{" + name + "}", str(v))
    return value


UNFILLED = re.compile(r"\{([A-Za-z_]\w*)\}")


def unfilled(where: str, value) -> None:
    """A `{name}` left after the vars were filled names no var: refused before step 1, not at step 5."""
    if isinstance(value, str) and (m := UNFILLED.search(value)):
        raise UserError(f"{where}: {{{m.group(1)}}} names no var")


def command_line(command: str, options: dict) -> list[str]:
    """`reasonalign` argv of a command and its options: True -> `--key`, False -> `--no-key`, None -> left out."""
    argv = command.split()
    for key, value in options.items():
        flag = "--" + str(key).replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def load_recipe(path: Path, output: str | None = None, settings: dict | None = None) -> tuple[dict, list[dict], dict]:
    """(vars, steps with their argv, the recipe), checked before any step runs."""
    recipe = read_recipe(path)
    specs = var_specs(path, recipe)
    values = {name: spec["default"] for name, spec in specs.items()}
    for name, value in (settings or {}).items():
        if name not in specs:
            raise UserError(f"{path}: no var {name!r} (vars: {', '.join(specs)})")
        values[name] = _typed(name, specs[name]["type"], value) if isinstance(value, str) else value
    if output:
        values["output"] = output
    for name, value in values.items():  # a var's value may name others, e.g. sft: "{output}/demo/lr"
        if isinstance(value, str) and "{" in value:
            values[name] = fill_vars(value, {k: v for k, v in values.items() if k != name})
    steps = []
    for n, step in enumerate(recipe["steps"], 1):
        if not isinstance(step, dict) or not isinstance(step.get("command"), str):
            raise UserError(f"{path}: step {n} needs a `command`")
        unknown = set(step) - {"name", "command", "options", "creates", "if"}
        if unknown:
            raise UserError(f"{path}: step {n}: unknown key(s) {', '.join(sorted(unknown))}")
        if step.get("if") is not None and step["if"] not in values:
            raise UserError(f"{path}: step {n}: `if: {step['if']}` names no var")
        options = step.get("options") or {}
        if not isinstance(options, dict):
            raise UserError(f"{path}: step {n}: `options` must be a mapping of option: value")
        argv = command_line(step["command"], {key: fill_vars(value, values) for key, value in options.items()})
        creates = step.get("creates")
        for text in argv + [fill_vars(creates, values) if creates else None]:
            unfilled(f"{path}: step {n}", text)
        steps.append({"name": step.get("name") or f"step {n}", "argv": argv,
                      "creates": fill_vars(creates, values) if creates else None,
                      "skip": step.get("if") is not None and not values[step["if"]]})
    return values, steps, recipe


def check_options(path, steps: list[dict], commands: Commands) -> None:
    """Every step's flags must exist for its command: a typo fails before step 1 starts, not after."""
    for n, step in enumerate(steps, 1):
        try:
            unknown = commands.unknown_options(step["argv"])
        except SystemExit:  # argparse has printed what is wrong
            raise UserError(f"{path}: step {n} ({step['name']}): invalid command or option value") from None
        if unknown:
            raise UserError(f"{path}: step {n} ({step['name']}): unknown option(s) {' '.join(unknown)}")


def step_keys(steps: list[dict]) -> list[str]:
    """A key per step that changes when its command line or any earlier step's changes: a resumed
    run (`--resume`) skips a step only when it, and everything it may have read, ran as written."""
    keys, key = [], ""
    for step in steps:
        key = hashlib.sha256((key + json.dumps(step["argv"])).encode()).hexdigest()[:16]
        keys.append(key)
    return keys


def resume_flag(argv: list[str], cell: bool = False) -> list[str]:
    """`--resume` for a train/align step whose output holds a complete checkpoint of an interrupted run:
    `train` refuses to start over such checkpoints, and a rerun of the recipe should continue them. A
    reproduce `cell` continues even with `--overwrite` in its options: its folder is its own, never finished
    before its cell.json, so its checkpoints can only be its own interrupted run's."""
    if argv[0] not in ("train", "align") or "--resume" in argv or "--output" not in argv or (
            "--overwrite" in argv and not cell):
        return []
    out = Path(argv[argv.index("--output") + 1])
    interrupted = not any((out / f).exists() for f in ("train_summary.json", "align_summary.json", "run.json"))
    return ["--resume"] if interrupted and any(out.glob("checkpoint-*/trainer_state.json")) else []


def run_recipe(file: str, commands: Commands, *, output: str | None = None, settings: dict | None = None,
               dry_run: bool = False, resume: bool = False) -> int:
    """Each step as its own command line (`commands.run`), then the recipe's table."""
    path = recipe_path(file)
    values, steps, recipe = load_recipe(path, output, settings)
    check_options(file, steps, commands)
    if recipe.get("table"):
        from reasonalign.report.recipe_table import compare_pairs  # a typo in `compare` fails before step 1

        compare_pairs(recipe["table"], lambda v: fill_vars(v, values), str(path))
    out, done = values["output"], []
    ledger_file = Path(out) / RESUME_FILE
    ledger = json.loads(ledger_file.read_text()) if resume and ledger_file.is_file() else {}
    for i, (step, key) in enumerate(zip(steps, step_keys(steps)), 1):
        line = "reasonalign " + shlex.join(step["argv"])
        finished = step["creates"] and Path(step["creates"]).exists()
        if step["skip"] or finished or key in ledger:
            why = ("skipped (its `if` var is off)" if step["skip"] else
                   f"already done ({step['creates']} exists), skipped" if finished else
                   "already done (--resume: the same command finished here), skipped")
            print(f"[{i}/{len(steps)}] {step['name']}: {why}")
            done.append({**step, "seconds": None, "skipped": True})
            continue
        print(f"[{i}/{len(steps)}] {step['name']}: {line}", flush=True)
        if dry_run:
            continue
        started = time.time()
        status = commands.run(step["argv"] + resume_flag(step["argv"]))
        seconds = round(time.time() - started, 1)
        done.append({**step, "seconds": seconds, "skipped": False})
        if status:
            raise UserError(f"{file}: step {i} ({step['name']}) failed with exit status {status}")
        if resume:
            ledger[key] = seconds
            Path(out).mkdir(parents=True, exist_ok=True)
            write_text(ledger_file, json.dumps(ledger, indent=2))
        print(f"[{i}/{len(steps)}] {step['name']}: done in {seconds} s", flush=True)
    if dry_run:
        return 0
    Path(out).mkdir(parents=True, exist_ok=True)
    total = sum(s["seconds"] or 0 for s in done)
    write_text(Path(out) / "recipe_summary.json", json.dumps(
        {"recipe": str(path), "output": out, "vars": values, "seconds": round(total, 1), "steps": done}, indent=2))
    if recipe.get("table"):
        from reasonalign.report.recipe_table import write_table

        write_table(recipe["table"], values, lambda v: fill_vars(v, values), str(path))
    print(f"recipe done in {total / 60:.1f} min -> {out}/recipe_summary.json")
    return 0


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text}: expected distinct integers separated by commas, e.g. 0,1,2")
    return seeds


def run_seeds(file: str, seeds: list[int], commands: Commands, *, output: str | None = None,
              settings: dict | None = None, dry_run: bool = False, resume: bool = False) -> int:
    """The whole recipe once per seed, each in {output}/seed-S, then its table's cells over seeds."""
    path = recipe_path(file)
    values, _, recipe = load_recipe(path, output, settings)
    if "seed" not in values:
        raise UserError(f"{path}: --seeds needs a `seed` var in the recipe's `vars:`")
    out = Path(values["output"])
    for seed in seeds:
        print(f"=== seed {seed} -> {out / f'seed-{seed}'} ===", flush=True)
        run_recipe(file, commands, output=str(out / f"seed-{seed}"), settings={**(settings or {}), "seed": seed},
                   dry_run=dry_run, resume=resume)
    if recipe.get("table") and not dry_run:
        from reasonalign.report.recipe_table import write_seed_table

        write_seed_table(out, seeds)
    return 0
