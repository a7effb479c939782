"""Reproduce: the paper's table in one command (`reasonalign reproduce --config configs/reproduce-cpu.yaml`).

The config lists *cells* — a recipe (or one command) run once per seed — and the table built from
them (`columns`, `rows`, `compare`). Each cell runs into OUTPUT/cells/NAME/seed-S-KEY, KEY a hash of
what it runs (its recipe file, its settings, the folders of the cells it reads), so:
- a finished cell (its cell.json written) is never recomputed: a second run only rebuilds the table;
- an interrupted run continues: finished cells are reused, the interrupted one resumes after its
  last finished step (the recipe runner's `--resume`);
- a changed setting gets a new KEY, hence a new run, and never mixes with the old one.
Afterwards OUTPUT holds results.json/.md/.csv (our number, n, CI, seeds and the paper's number per
cell; paired differences), plots/ (PNG + SVG) and report.html; `--readme README.md` also replaces
the README's generated results block with results.md's content.
"""

import hashlib
import json
import os
import re
import time
from pathlib import Path


from reasonalign.core.errors import UserError
from reasonalign.core.files import read_yaml, write_text
from reasonalign.pipeline import Commands
from reasonalign.pipeline.recipe import (check_options, command_line, fill_vars, load_recipe, parse_seeds,
                                         recipe_path, resume_flag, run_recipe, unfilled)

KEYS = {"title", "output", "seeds", "vars", "files", "paper", "cells", "columns", "rows", "compare", "extra_sources",
        "caption", "readme_block", "results"}
CELL_REF = re.compile(r"\{cell:([\w.-]+)\}")
def markers(block: str = "reproduce") -> tuple[str, str]:
    """The README markers of one generated block: a config's `readme_block` (default `reproduce`), so the
    full-data table and the quick one each keep their own block."""
    return f"<!-- {block}:begin -->", f"<!-- {block}:end -->"


def load_config(path: Path, output: str | None, seeds: str | None, settings: list[str] = ()) -> dict:
    config = read_yaml(path)
    if not isinstance(config, dict) or not config.get("cells") or not config.get("rows") or not config.get("columns"):
        raise UserError(f"{path}: a reproduce config needs `cells:`, `columns:` and `rows:`")
    if set(config) - KEYS:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(set(config) - KEYS))}")
    config["seeds"] = [int(s) for s in config.get("seeds") or [0]]
    if seeds:
        wanted = parse_seeds(seeds)
        if set(wanted) - set(config["seeds"]):
            raise UserError(f"--seeds {seeds}: the config's seeds are {config['seeds']}")
        config["seeds"] = wanted
    config["output"] = output or config.get("output") or "runs/reproduce"
    config["vars"] = dict(config.get("vars") or {})
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in config["vars"]:
            raise UserError(f"--set {item}: expected VAR=VALUE with VAR one of {', '.join(config['vars']) or 'none'}")
        if not value.strip():
            raise UserError(f"--set {item}: empty value; give a value or leave --set out")
        config["vars"][name.strip()] = value.strip()
    return config


def check_references(path: Path, config: dict) -> None:
    """Every `{cell:NAME}` of the table names a listed cell and every `compare:` pair names rows of the
    table, before any cell runs: a typo would otherwise show as "—" after hours of work."""
    cells, methods = set(config["cells"]), set()
    texts = []
    for n, row in enumerate(config["rows"], 1):
        if not isinstance(row, dict) or not isinstance(row.get("folders"), dict) or "method" not in row:
            raise UserError(f"{path}: rows: row {n} needs `method:` and `folders:`")
        methods.add(row["method"])
        texts += [(f"row {row['method']}", t) for t in row["folders"].values()]
    texts += [("extra_sources", s.get("folder", "")) for s in config.get("extra_sources") or [] if isinstance(s, dict)]
    for where, text in texts:
        for ref in CELL_REF.findall(str(text)):
            if ref not in cells:
                raise UserError(f"{path}: {where}: {{cell:{ref}}} names no cell (cells: {', '.join(cells)})")
    for pair in config.get("compare") or []:
        if not isinstance(pair, list) or len(pair) != 2:
            raise UserError(f"{path}: compare: {pair!r} is not a pair [A, B]")
        for method in pair:
            if method not in methods:
                raise UserError(f"{path}: compare: {method!r} is no row's method")


def plan(path: Path, config: dict, commands: Commands) -> list[dict]:
    """Every (cell, seed) in order, with its command and folder; checked before anything runs."""
    out, planned, folders = Path(config["output"]), [], {}
    check_references(path, config)
    for name, cell in config["cells"].items():
        if not isinstance(cell, dict) or ("recipe" in cell) == ("command" in cell):
            raise UserError(f"{path}: cell {name}: give either `recipe:` (with `set:`) or `command:` (with `options:`)")

    def fill(value, seed: int, name: str):
        """`{cell:NAME}` -> that cell's folder for this seed, then the config's vars."""
        if not isinstance(value, str):
            return value
        for ref in CELL_REF.findall(value):
            if (ref, seed) not in folders:
                raise UserError(f"{path}: cell {name} (seed {seed}) reads cell {ref}, which is not listed "
                                f"before it or does not run seed {seed}")
            value = value.replace("{cell:" + ref + "}", str(folders[(ref, seed)]))
        value = fill_vars(value, config["vars"])
        unfilled(f"{path}: cell {name}", value)
        return value

    # seed by seed: an interrupted run has whole seeds done first, and a cell reads only its own seed's cells
    for seed in config["seeds"]:
        for name, cell in config["cells"].items():
            if seed not in cell.get("seeds", config["seeds"]):
                continue
            if "recipe" in cell:
                settings = {k: fill(v, seed, name) for k, v in (cell.get("set") or {}).items()}
                recipe = recipe_path(fill(cell["recipe"], seed, name))
                what = {"recipe": recipe.read_text(), "set": settings}
            else:
                settings = {k: fill(v, seed, name) for k, v in (cell.get("options") or {}).items()}
                recipe, what = None, {"command": cell["command"], "options": settings}
            key = hashlib.sha256(json.dumps({**what, "seed": seed}, sort_keys=True).encode()).hexdigest()[:8]
            folder = out / "cells" / name / f"seed-{seed}-{key}"
            folders[(name, seed)] = folder
            item = {"name": name, "seed": seed, "key": key, "folder": folder, "recipe": recipe}
            if recipe is not None:
                item["settings"] = {**settings, "seed": seed}
                _, steps, _ = load_recipe(recipe, str(folder), item["settings"])
                check_options(f"{path}: cell {name}", steps, commands)
            else:
                item["argv"] = command_line(cell["command"], {**settings, "seed": seed, "output": str(folder)})
                check_options(f"{path}: cell {name}", [{"name": name, "argv": item["argv"]}], commands)
            planned.append(item)
    return planned


def run_cells(cells: list[dict], commands: Commands) -> list[dict]:
    """Run what is not finished, in order; a failing cell stops the run (the finished ones are kept)."""
    started, done = time.time(), []
    for i, cell in enumerate(cells, 1):
        marker = cell["folder"] / "cell.json"
        head = f"[cell {i}/{len(cells)}] {cell['name']} seed {cell['seed']} ({cell['key']})"
        if marker.is_file():
            print(f"{head}: finished earlier, reused ({cell['folder']})", flush=True)
            done.append({**json.loads(marker.read_text()), "status": "reused"})
            continue
        print(f"{head}: running -> {cell['folder']}  ({(time.time() - started) / 60:.1f} min so far)", flush=True)
        t = time.time()
        if cell["recipe"] is not None:
            run_recipe(str(cell["recipe"]), commands, output=str(cell["folder"]), settings=cell["settings"],
                       resume=True)
        elif _trained(cell):
            print(f"{head}: its run finished before cell.json was written; recorded as done", flush=True)
        elif status := commands.run(cell["argv"] + resume_flag(cell["argv"], cell=True)):
            raise UserError(f"cell {cell['name']} seed {cell['seed']} failed with exit status {status}; rerun to "
                            f"continue (finished cells are kept)")
        record = {"name": cell["name"], "seed": cell["seed"], "key": cell["key"], "folder": str(cell["folder"]),
                  "seconds": round(time.time() - t, 1), "finished": time.strftime("%Y-%m-%d %H:%M")}
        write_text(marker, json.dumps(record, indent=2))
        done.append({**record, "status": "ran"})
        print(f"{head}: done in {record['seconds'] / 60:.1f} min", flush=True)
    return done


def _trained(cell: dict) -> bool:
    """A train/align cell whose run wrote its summary (its completion marker) but was stopped before cell.json.
    (An interrupted one that left a checkpoint gets `--resume`: `recipe.resume_flag`.)"""
    return cell["argv"][0] in ("train", "align") and any(
        (cell["folder"] / f).is_file() for f in ("train_summary.json", "align_summary.json"))


def machine() -> dict:
    import platform

    import torch

    from reasonalign.core.precision import probe

    cpu, flags = platform.processor(), set()
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(l.split(":", 1)[1].strip() for l in info if l.startswith("model name"))
        flags = set(next(l.split(":", 1)[1] for l in info if l.startswith("flags")).split())
    except (OSError, StopIteration):
        pass
    # what decides bf16 speed on a CPU (the brief: ~3x with AVX512-BF16/AMX, ~100x slower without)
    cpu += f" ({', '.join(f for f in ('avx512_bf16', 'amx_bf16') if f in flags) or 'no avx512_bf16/amx'})"
    p = probe("cpu")
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available()
            else None, "torch": torch.__version__, "precision": p["auto"], "bf16_speedup": round(p["speedup"], 2)}


def build_results(path: Path, config: dict, cells: list[dict], done: list[dict]) -> dict:
    from reasonalign.report.table import build_rows, compare, sources

    out = Path(config["output"])
    folders = {(c["name"], c["seed"]): str(c["folder"]) for c in cells}

    def per_seed(template: str) -> dict[int, str]:
        found = {}
        for seed in config["seeds"]:
            refs = CELL_REF.findall(template)
            if all((r, seed) in folders for r in refs):
                value = template
                for r in refs:
                    value = value.replace("{cell:" + r + "}", folders[(r, seed)])
                found[seed] = value
        return found

    rows = [{**row, "folders": {d: per_seed(t) for d, t in row["folders"].items()}} for row in config["rows"]]
    seed = config["seeds"][0]
    table, outcomes = build_rows(rows, config["columns"], seed)
    extra = [{**s, "seed": sd, "folder": f} for s in config.get("extra_sources") or []
             for sd, f in per_seed(s["folder"]).items() if Path(f).is_dir()]
    results = {"title": config.get("title", "results"), "config": str(path), "seeds": config["seeds"],
               "written": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(sum(c["seconds"] for c in done), 1),
               "machine": machine(), "paper": config.get("paper"), "columns": config["columns"], "rows": table,
               "comparisons": compare(config.get("compare") or [], config["columns"], outcomes, seed),
               "sources": sources(rows, extra), "caption": " ".join(str(config.get("caption", "")).split()),
               "cells": done}
    if speed := generation_speed(cells):
        results["speed"] = speed
    for item in results["sources"] + results["cells"]:
        item["folder"] = os.path.relpath(item["folder"], out)
    return results


def summary_markdown(results: dict, heading: str = "#") -> str:
    """results.md, and the README's generated block: what ran, where, how long, then the table."""
    from reasonalign.report.table import markdown

    m = results["machine"]
    return "\n".join([
        f"{heading} {results['title']}", "",
        f"`reasonalign reproduce --config {results['config']}` — seeds {', '.join(map(str, results['seeds']))}; "
        f"{len(results['cells'])} cells, {results['seconds'] / 60:.1f} min of compute in all (each cell's time: results.json); "
        f"written {results['written']} on {m['cpu']} ({m['cores']} cores"
        + (f", {m['gpu']}" if m["gpu"] else "") + f"), torch {m['torch']}, precision {m['precision']} "
        f"(bf16 matmul probe {m['bf16_speedup']}x fp32).", "",
        markdown(results), "", results["caption"] + _speed_note(results.get("speed")), ""])


def generation_speed(cells: list[dict]) -> dict:
    """Median generated tokens/s of sampling (sample_summary.json) and of greedy evaluation (eval metrics.json)
    over the cells' runs that recorded it: sampling k responses is what an alignment table costs."""
    import statistics

    found = {"sampling": [], "evaluation": []}
    for cell in cells:
        for path in sorted(Path(cell["folder"]).rglob("*.json")):
            if path.name not in ("sample_summary.json", "metrics.json") or "checkpoint-" in str(path):
                continue
            speed = json.loads(path.read_text()).get("tokens_per_second")
            if speed:
                found["sampling" if path.name == "sample_summary.json" else "evaluation"].append(speed)
    return {k: {"median": statistics.median(v), "runs": len(v)} for k, v in found.items() if v}


def _speed_note(speed: dict | None) -> str:
    if not speed:
        return ""
    return " Generation speed (median over the runs that recorded it): " + "; ".join(
        f"{k} {v['median']:.0f} tokens/s ({v['runs']} runs)" for k, v in speed.items()) + "."


def readme_block(readme: Path, block: str = "reproduce") -> str:
    """The README's text, checked to hold the generated block (before any cell runs, too)."""
    begin, end = markers(block)
    content = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if begin not in content or end not in content:
        raise UserError(f"{readme}: no {begin} ... {end} block to replace")
    return content


def update_readme(readme: Path, text: str, block: str = "reproduce", source: str = "runs/reproduce-cpu") -> None:
    begin, end = markers(block)
    head, rest = readme_block(readme, block).split(begin, 1)
    tail = rest.split(end, 1)[1]
    note = f"<!-- generated by `reasonalign reproduce` from {source}/results.json; edits here are overwritten -->"
    write_text(readme, f"{head}{begin}\n{note}\n{text}\n{end}{tail}", encoding="utf-8")
    print(f"updated {readme}")


def reproduce(path: Path, commands: Commands, *, output: str | None = None, seeds: str | None = None,
              settings: list[str] = (), dry_run: bool = False, readme: str | None = None) -> int:
    """Plan the cells, run the unfinished ones, then write the table, plots, report (and the README block)."""
    config = load_config(path, output, seeds, settings)
    for f in config.get("files") or []:
        if not Path(fill_vars(f, config["vars"])).is_file():
            raise UserError(f"{path}: files: {fill_vars(f, config['vars'])} not found")
    if readme:
        readme_block(Path(readme), config.get("readme_block", "reproduce"))
    cells = plan(path, config, commands)
    if dry_run:
        for c in cells:
            state = "finished" if (c["folder"] / "cell.json").is_file() else "to run"
            print(f"{c['name']} seed {c['seed']} ({c['key']}): {state} -> {c['folder']}")
        return 0
    done = run_cells(cells, commands)
    results = build_results(path, config, cells, done)
    out = Path(config["output"])
    from reasonalign.report.html import write_report
    from reasonalign.report.plots import write_plots
    from reasonalign.report.table import write_csv

    # `results: NAME` names the files, so two configs sharing one output folder (and its cells) keep their own
    name = config.get("results", "results")
    plots = out / ("plots" if name == "results" else f"{name}-plots")
    results["plots"] = write_plots(results, out, plots)
    write_text(out / f"{name}.json", json.dumps(results, indent=2))
    write_csv(results, out / f"{name}.csv")
    text = summary_markdown(results)
    write_text(out / f"{name}.md", text)
    report = write_report(results, out, results["plots"], "report.html" if name == "results" else f"{name}.html")
    print(text)
    print(f"saved {out / (name + '.md')}, {name}.csv, {name}.json, {plots}/ and {report}")
    if readme:
        update_readme(Path(readme), summary_markdown(results, heading="###"), config.get("readme_block", "reproduce"),
                      config["output"])
    return 0
