"""Training scaling: time vs dataset size and vs sequence length, peak memory vs dataset size.

Every run is the library's own training path, `reasonalign train --method lr --data dfar:train`
(LoRA, L+R, batch 8, default precision), in a fresh subprocess, so that each has its own peak
memory (max RSS, from `os.wait4`) and nothing carries over. No calibration, no checkpoints, a log
line every step. Three parts, each against its own 1x run in the same process:

  steps    --max-steps S at 1x / 2x / 4x dataset size (default 500 / 1000 / 2000 rows):
           seconds per real token must not depend on the dataset size (4x / 1x <= 1.1; seconds
           per step are printed too, but they also follow the rows' lengths, see below),
           and neither may the peak memory (max RSS 4x / 1x <= 1.1: "flat"): the rows are
           tokenised up front, but a few thousand rows of token ids are small next to the model.
           (Batches are grouped by length and the longest comes first, so the activation peak
           may grow a little with the longest row of the larger set.)
  epochs   one epoch at 1x / 2x / 4x (default 16 / 32 / 64 rows, 2 / 4 / 8 steps): training time
           should grow linearly; reported as time(4x) / (4 x time(1x)), 1.0 = exactly linear (the
           first step's one-off warm-up makes small runs look sub-linear).
  length   --max-steps S at --max-length 128 / 192 / 256 (DFAR L+R rows have about 130 tokens at
           the median, so 256 truncates almost nothing): seconds per step and real tokens/s.

Seconds per step and tokens/s are steady-state numbers: from the trainer's per-step log
(TensorBoard events: wall time and real tokens at every step), from the end of the first step
to the end of the last, so the first step's warm-up is left out. Epoch time is the trainer's own
`seconds` (train_summary.json), warm-up included.

Usage: python benchmarks/scaling.py [--steps 3] [--memory-rows 500] [--epoch-rows 16]
                                    [--lengths 128,192,256] [--parts steps,epochs,length] [--quick] [--json PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from reasonalign.core.files import write_json

SCALES = (1, 2, 4)
TARGET_FLAT = 1.1  # 4x / 1x seconds per step and peak memory


def steady_state(out: Path) -> dict | None:
    """Seconds per step and real tokens/s from the end of step 1 to the end of the last step
    (the trainer logs `real_tokens` every step; TensorBoard stamps each log with its wall time)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(out.glob("**/events.out.tfevents.*"))
    if not events:
        return None
    accumulator = EventAccumulator(str(events[-1].parent))
    accumulator.Reload()
    if "train/real_tokens" not in accumulator.Tags()["scalars"]:
        return None
    logged = accumulator.Scalars("train/real_tokens")
    if len(logged) < 2:
        return None
    first, last = logged[0], logged[-1]
    seconds = last.wall_time - first.wall_time
    return {"seconds_per_step": round(seconds / (last.step - first.step), 3),
            "tokens_per_s": round((last.value - first.value) / seconds, 1), "first_step": first.step,
            "last_step": last.step, "rank0_real_tokens": int(last.value)}


def train(options: list[str], out: Path, *, launcher: list[str] | None = None, env: dict | None = None) -> dict:
    """`reasonalign train OPTIONS --output OUT` in a subprocess (under `launcher`, e.g. accelerate
    launch, if given): its train_summary.json numbers, steady-state speed, wall time and max RSS."""
    command = [*(launcher or [sys.executable, "-m", "reasonalign"]), "train", "--method", "lr", "--data", "dfar:train",
               "--calibration-rows", "0", "--save-steps", "0", "--logging-steps", "1", *options, "--output", str(out)]
    log = out.with_name(out.name + ".log")
    start = time.perf_counter()
    with log.open("w") as f:
        process = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN would be the max of all)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"failed (exit {process.returncode}): {' '.join(command)}\n{tail}")
    summary = json.loads((out / "train_summary.json").read_text())
    return {"command": " ".join(command), "steps": summary["steps"], "seconds": summary["seconds"],
            "real_tokens": summary["real_tokens"], "tokens_per_s": summary["tokens_per_s"],
            "train_rows": summary["train_rows"], "processes": summary.get("processes", 1),
            "precision": summary["precision"], "wall_s": round(wall, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "steady": steady_state(out)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3, help="optimizer steps of the steps and length runs (>= 2)")
    p.add_argument("--memory-rows", type=int, default=500, help="1x dataset size of the steps part")
    p.add_argument("--epoch-rows", type=int, default=16, help="1x dataset size of the epochs part")
    p.add_argument("--length-rows", type=int, default=64, help="training rows of the length part")
    p.add_argument("--lengths", default="128,192,256",
                   help="--max-length values of the length part (DFAR train prompts reach 96 tokens)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--parts", default="steps,epochs,length", help="which parts to run")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check that it runs (numbers mean little)")
    p.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    args = p.parse_args()
    if args.quick:
        args.steps, args.memory_rows, args.epoch_rows, args.length_rows = 2, 8, 2, 4
        args.lengths, args.batch_size = "128,192", 2
    if args.steps < 2:
        raise SystemExit("--steps must be at least 2 (the first step's warm-up is left out of the steady state)")
    parts = set(args.parts.split(","))
    lengths = [int(n) for n in args.lengths.split(",")]
    batch = ["--batch-size", str(args.batch_size)]
    result: dict = {"batch_size": args.batch_size, "steps": args.steps, "parts": sorted(parts), "headline": []}
    headline = result["headline"]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "steps" in parts:
            runs = {}
            for scale in SCALES:
                rows = args.memory_rows * scale
                runs[scale] = train(["--train-rows", str(rows), "--max-steps", str(args.steps), *batch],
                                    tmp / f"steps-{rows}")
                r = runs[scale]
                print(f"steps  {rows:>5} rows ({scale}x): {r['steps']} steps, "
                      f"{r['steady']['seconds_per_step']:.2f} s/step, {r['steady']['tokens_per_s']:.1f} tokens/s "
                      f"(steady), peak RSS {r['peak_rss_mb']:.0f} MB, wall {r['wall_s']:.0f} s", flush=True)
            step_ratio = runs[4]["steady"]["seconds_per_step"] / runs[1]["steady"]["seconds_per_step"]
            # time per real token: a step's time also depends on how long its rows are, and with length-grouped
            # batches (longest first) the first steps of a larger set hold longer rows
            token_ratio = runs[1]["steady"]["tokens_per_s"] / runs[4]["steady"]["tokens_per_s"]
            memory_ratio = runs[4]["peak_rss_mb"] / runs[1]["peak_rss_mb"]
            result["steps_part"] = {"runs": {f"{s}x": r for s, r in runs.items()},
                                    "seconds_per_step_4x_vs_1x": round(step_ratio, 3),
                                    "seconds_per_token_4x_vs_1x": round(token_ratio, 3),
                                    "peak_rss_4x_vs_1x": round(memory_ratio, 3)}
            headline += [
                {"name": "s/real token 4x rows / 1x rows", "value": round(token_ratio, 3), "unit": "x",
                 "target": TARGET_FLAT, "higher_is_better": False},
                {"name": "s/step 4x rows / 1x rows", "value": round(step_ratio, 3), "unit": "x",
                 "target": None, "higher_is_better": False},
                {"name": "peak RSS 4x rows / 1x rows", "value": round(memory_ratio, 3), "unit": "x",
                 "target": TARGET_FLAT, "higher_is_better": False},
                {"name": f"peak RSS at {args.memory_rows * 4} rows", "value": runs[4]["peak_rss_mb"], "unit": "MB",
                 "target": None, "higher_is_better": False}]
            print(f"s/real token 4x / 1x = {token_ratio:.2f} (target <= {TARGET_FLAT}) "
                  f"{'PASS' if token_ratio <= TARGET_FLAT else 'MISS'} (s/step {step_ratio:.2f}); "
                  f"peak RSS 4x / 1x = {memory_ratio:.3f} "
                  f"(target <= {TARGET_FLAT}) {'PASS' if memory_ratio <= TARGET_FLAT else 'MISS'}", flush=True)

        if "epochs" in parts:
            runs = {}
            for scale in SCALES:
                rows = args.epoch_rows * scale
                runs[scale] = train(["--train-rows", str(rows), "--epochs", "1", *batch], tmp / f"epochs-{rows}")
                r = runs[scale]
                print(f"epochs {rows:>5} rows ({scale}x): 1 epoch = {r['steps']} steps in {r['seconds']:.1f} s "
                      f"({r['tokens_per_s']:.1f} tokens/s), wall {r['wall_s']:.0f} s", flush=True)
            vs_linear = runs[4]["seconds"] / (4 * runs[1]["seconds"])
            result["epochs_part"] = {"runs": {f"{s}x": r for s, r in runs.items()},
                                     "epoch_time_4x_vs_4_times_1x": round(vs_linear, 3)}
            headline.append({"name": "epoch time 4x rows / (4 x 1x rows)", "value": round(vs_linear, 3), "unit": "x",
                             "target": TARGET_FLAT, "higher_is_better": False})
            print(f"epoch time 4x / (4 x 1x) = {vs_linear:.2f} (1.0 = linear; target <= {TARGET_FLAT}) "
                  f"{'PASS' if vs_linear <= TARGET_FLAT else 'MISS'}", flush=True)

        if "length" in parts:
            runs = {}
            for length in lengths:
                runs[length] = train(["--train-rows", str(args.length_rows), "--max-steps", str(args.steps),
                                      "--max-length", str(length), *batch], tmp / f"length-{length}")
                r = runs[length]
                print(f"length {length:>5} tokens: {r['real_tokens'] / (r['steps'] * args.batch_size):.0f} real "
                      f"tokens/row, {r['steady']['seconds_per_step']:.2f} s/step, "
                      f"{r['steady']['tokens_per_s']:.1f} tokens/s (steady)", flush=True)
                headline.append({"name": f"tokens/s at max length {length}", "value": r["steady"]["tokens_per_s"],
                                 "unit": "tokens/s", "target": None, "higher_is_better": True})
            short, long = lengths[0], lengths[-1]
            step_ratio = runs[long]["steady"]["seconds_per_step"] / runs[short]["steady"]["seconds_per_step"]
            result["length_part"] = {"runs": {str(n): r for n, r in runs.items()},
                                     f"seconds_per_step_{long}_vs_{short}": round(step_ratio, 3)}
            headline.append({"name": f"s/step length {long} / {short}", "value": round(step_ratio, 3), "unit": "x",
                             "target": None, "higher_is_better": False})
            print(f"s/step at max length {long} / {short} = {step_ratio:.2f}", flush=True)

    if args.json:
        print(f"saved {write_json(args.json, result)}")


if __name__ == "__main__":
    main()
