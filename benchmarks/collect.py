"""Run every benchmark a few times and write BENCHMARKS.md and benchmarks/results/latest.json (`make bench`).

Each benchmark is a script in this folder that measures something and its reference in the same
run and saves a JSON file whose `headline` list holds its numbers (name, value, unit, target or
null, higher_is_better). This runs each one `--repeats` times (default 3), one after another,
and reports for every headline number the median over the repeats, the min-max, the target and
PASS/MISS (judged on the median), together with the machine (CPU model, cores, AVX512-BF16 /
AMX, GPU), the library versions, the date and the exact command of each benchmark.

`--only NAME[,NAME]` runs a subset; the results of the others are kept from the previous
latest.json (each benchmark's entry says when it ran). `--args NAME="..."` replaces a
benchmark's arguments (e.g. `--args label_scoring="--rows 8"` for a quick check). A benchmark
that fails is reported as failed (with the end of its stderr) and the exit status is 1.

Expected time of `make bench` (3 repeats) on 2 idle CPU cores (AMD EPYC, AVX512-BF16), estimated
from the step and generation speeds measured here, not from a full run (per repeat):
train_throughput ~2.5 min, label_scoring ~0.7, generation_speed ~0.8, sampling_speed ~0.8,
scaling ~2.5 (9 training subprocesses), ddp_throughput ~1.3, annotate_load ~0.3: about 9 min a
repeat, 25-30 min in all. BENCHMARKS.md records the real time of every run.

Usage: python benchmarks/collect.py [--repeats 3] [--only NAME[,NAME]] [--args NAME="ARGS"]
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (name, arguments chosen so that 3 repeats of all of them take about 30 min on 2 cores, JSON option, what it measures)
BENCHMARKS = [
    ("train_throughput", ["--steps", "6", "--rows", "96"], "--json",
     "real tokens/s of our trainer (fp32, bf16) vs TRL's SFTTrainer (authors' recipe, best settings) on the same "
     "token budget, and the held-out loss each reaches"),
    ("label_scoring", ["--adapter", "runs/demo/lr"] if (ROOT / "runs/demo/lr/adapter_config.json").is_file() else [],
     "--json",
     "classifying the 500 DFAR test statements: log-likelihood scoring vs generate-and-parse (items/s), and the "
     "share of identical verdicts; with `make demo`'s L+R adapter when there is one (an untuned model often "
     "writes no verdict at all)"),
    ("generation_speed", ["--rows", "16"], "--json",
     "reason generation: batched (left padding, KV cache) vs a per-example generate loop; greedy outputs must be "
     "identical"),
    ("sampling_speed", [], "--json",
     "AFT sampling (k=4, T=0.8, top-p 0.95) vs plain batched greedy generation: generated tokens/s"),
    ("scaling", [], "--json",
     "training time per step and peak memory vs dataset size (1x/2x/4x), epoch time vs dataset size (linear), "
     "tokens/s vs max length"),
    ("ddp_throughput", [], "--json",
     "CPU data-parallel training, 2 processes (gloo) vs 1, same global batch: real tokens/s"),
    ("annotate_load", [], "--json",
     "rating server: 20 raters at once vs 1 rater alone (latency), and every rating stored exactly once"),
]
NAMES = [b[0] for b in BENCHMARKS]


def machine() -> dict:
    """What the numbers depend on: CPU, cores, bf16 instructions, GPU, library versions, commit."""
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        first = ""
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    flags = set(fields.get("flags", "").split())
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        gpus = []
    versions = {"python": platform.python_version()}
    for package in ("torch", "transformers", "trl", "peft", "accelerate", "reasonalign"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"cpu": fields.get("model name", platform.processor() or platform.machine()), "cores": os.cpu_count(),
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags, "gpus": gpus,
            "os": platform.platform(), "versions": versions, "commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no"))}


def run_once(name: str, args: list[str], json_option: str, folder: Path, repeat: int) -> dict:
    """One run of benchmarks/NAME.py: its stdout (echoed), JSON, headline and wall time, or why it failed."""
    out, err = folder / f"{name}-{repeat}.json", folder / f"{name}-{repeat}.stderr"
    command = [sys.executable, str(HERE / f"{name}.py"), *args, json_option, str(out)]
    start = time.perf_counter()
    with err.open("w") as stderr:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    print(done.stdout.rstrip(), flush=True)
    record = {"seconds": round(seconds, 1), "exit_status": done.returncode, "stdout": done.stdout}
    if out.is_file():
        record["result"] = json.loads(out.read_text())
        record["headline"] = record["result"].get("headline", [])
    if done.returncode or not out.is_file():
        record["error"] = "\n".join(err.read_text(errors="replace").splitlines()[-20:])
        print(f"[{name}] FAILED (exit {done.returncode}); end of stderr:\n{record['error']}", flush=True)
    return record


def summarize(runs: list[dict]) -> list[dict]:
    """Median and min-max over the repeats of every headline number, PASS/MISS on the median."""
    names = list(dict.fromkeys(h["name"] for r in runs for h in r.get("headline", [])))
    rows = []
    for number in names:
        items = [h for r in runs for h in r.get("headline", []) if h["name"] == number]
        values = [h["value"] for h in items if h["value"] is not None]
        first, median = items[0], statistics.median(values) if values else None
        if median is not None and all(isinstance(x, int) for x in values) and float(median).is_integer():
            median = int(median)  # counts stay counts
        row = {"name": number, "unit": first["unit"], "target": first["target"],
               "higher_is_better": first["higher_is_better"], "values": values, "median": median,
               "min": min(values) if values else None, "max": max(values) if values else None}
        if row["target"] is None or row["median"] is None:
            row["status"] = ""
        else:
            met = row["median"] >= row["target"] if row["higher_is_better"] else row["median"] <= row["target"]
            row["status"] = "PASS" if met else "MISS"
        rows.append(row)
    return rows


def fmt(value, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "x":
        return f"{value:.2f}×"
    if isinstance(value, float) and unit not in ("MB",):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{value:.0f}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    m, v = report["machine"], report["machine"]["versions"]
    lines = [
        "# Benchmarks", "",
        f"Written by `python benchmarks/collect.py` (`make bench`) on {report['date']} (this run: "
        f"{report['repeats']} repeat(s), {report['seconds'] / 60:.1f} min). Every number is the median of the repeats "
        "(min–max in brackets); every ratio compares two things measured in the same run on the same machine. "
        "PASS/MISS is judged on the median.",
        "",
        "## Machine", "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; AVX512-BF16: {'yes' if m['avx512_bf16'] else 'no'}; "
        f"AMX-BF16: {'yes' if m['amx_bf16'] else 'no'}",
        f"- GPU: {', '.join(m['gpus']) if m['gpus'] else 'none'}",
        f"- {m['os']}; Python {v['python']}, torch {v['torch']}, transformers {v['transformers']}, trl {v['trl']}, "
        f"peft {v['peft']}, accelerate {v['accelerate']}, reasonalign {v['reasonalign']} at commit {m['commit']}"
        + (" (with uncommitted changes)" if m["uncommitted_changes"] else ""), "",
        "## Targets", "", "| benchmark | number | median [min–max] | target | status |", "|---|---|---|---|---|"]
    for name, b in report["benchmarks"].items():
        for row in b["summary"]:
            if row["target"] is not None:
                sign = "≥" if row["higher_is_better"] else "≤"
                lines.append(f"| {name} | {row['name']} | {fmt(row['median'], row['unit'])} "
                             f"[{fmt(row['min'], row['unit'])}–{fmt(row['max'], row['unit'])}] | "
                             f"{sign} {fmt(row['target'], row['unit'])} | {row['status']} |")
    for name, b in report["benchmarks"].items():
        ok = [r for r in b["runs"] if "error" not in r]
        seconds = statistics.median(r["seconds"] for r in b["runs"])
        lines += ["", f"## {name}", "", f"What: {b['what']}.", "", f"Command: `{b['command']}`", "",
                  f"{len(ok)} of {len(b['runs'])} runs succeeded on {b['date']}; median wall time "
                  f"{seconds:.0f} s a run.", ""]
        for r in b["runs"]:
            if "error" in r:
                lines += ["Failed run (end of stderr):", "", "```", r["error"], "```", ""]
        if b["summary"]:
            lines += ["| number | median | min–max | target | status |", "|---|---|---|---|---|"]
            for row in b["summary"]:
                sign = "≥ " if row["higher_is_better"] else "≤ "
                target = "–" if row["target"] is None else sign + fmt(row["target"], row["unit"])
                unit = "" if row["unit"] in ("x", "share") else f" {row['unit']}"
                lines.append(f"| {row['name']} | {fmt(row['median'], row['unit'])}{unit} | "
                             f"{fmt(row['min'], row['unit'])}–{fmt(row['max'], row['unit'])} | {target} | "
                             f"{row['status']} |")
    lines += ["", f"All numbers of every run: `{report['results_file']}`.", ""]
    profiling = HERE / "PROFILING.md"  # the hand-written profiling pass (before/after, with its commands)
    if profiling.is_file():
        lines += [profiling.read_text().rstrip(), ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", help=f"comma-separated subset of {','.join(NAMES)}")
    p.add_argument("--args", action="append", default=[], metavar='NAME="ARGS"',
                   help="replace a benchmark's arguments, e.g. label_scoring=\"--rows 8\" (repeatable)")
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--results", default=str(HERE / "results" / "latest.json"))
    p.add_argument("--markdown-only", action="store_true", help="rewrite the markdown from --results, run nothing")
    args = p.parse_args()
    if args.markdown_only:
        Path(args.markdown).write_text(markdown(json.loads(Path(args.results).read_text())))
        return 0
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    chosen = args.only.split(",") if args.only else NAMES
    unknown = [n for n in chosen if n not in NAMES]
    overrides = dict(a.split("=", 1) for a in args.args)
    unknown += [n for n in overrides if n not in NAMES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(NAMES)}")

    results = Path(args.results)
    previous = json.loads(results.read_text()).get("benchmarks", {}) if results.is_file() else {}
    report = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine(), "repeats": args.repeats, "results_file": os.path.relpath(results, ROOT),
              "benchmarks": {}}
    started, failed = time.perf_counter(), False
    with tempfile.TemporaryDirectory() as tmp:
        for name, default_args, json_option, what in BENCHMARKS:
            if name not in chosen:
                if name in previous:  # kept from the last run that measured it
                    report["benchmarks"][name] = previous[name]
                continue
            bench_args = shlex.split(overrides[name]) if name in overrides else default_args
            command = " ".join(["python", f"benchmarks/{name}.py", *map(shlex.quote, bench_args), json_option, "FILE"])
            runs = []
            for repeat in range(1, args.repeats + 1):
                print(f"\n[{name}] run {repeat}/{args.repeats}: {command}", flush=True)
                runs.append(run_once(name, bench_args, json_option, Path(tmp), repeat))
            failed |= any("error" in r for r in runs)
            report["benchmarks"][name] = {"what": what, "command": command, "date": report["date"],
                                          "summary": summarize(runs), "runs": runs}
    report["seconds"] = round(time.perf_counter() - started, 1)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(report))
    print(f"\n{len(chosen)} benchmark(s) x {args.repeats} in {report['seconds'] / 60:.1f} min; wrote {args.markdown} "
          f"and {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
