"""CPU data-parallel training: 2 processes (DDP, gloo) vs 1 process, same global batch, real tokens/s.

Both runs are `reasonalign train --method lr --data dfar:train` (the library's SFT path) for one
epoch over the same `--rows` class-balanced rows:

  1 process    `python -m reasonalign train ... --batch-size 8`, OMP_NUM_THREADS = all cores;
  2 processes  `accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no
               --dynamo_backend no -m reasonalign train ... --batch-size 4`, OMP_NUM_THREADS = half
               the cores each (on a machine without CUDA our code makes accelerate use gloo).

The global batch is 8 sequences per optimizer step in both, so both take the same number of
steps. Threads are split so the two runs use the same cores: with 2 cores and 2 torch threads
in each of 2 processes, the processes would fight over the cores (oversubscription).
Even so, on a 2-core machine 2 processes can be slower than 1: each process does half the
work with half the threads, plus gradient all-reduce; DDP pays off with more cores (or GPUs).

Real tokens/s = train_summary.json `real_tokens` (the non-padding tokens of every batch, summed
over the processes) / the trainer's `seconds` (rank 0's, first-step warm-up included). One epoch
over the same rows trains on every row exactly once in both runs (`--rows` is a multiple of 8),
so both counts must be equal; a difference is printed as a warning. Steady-state seconds per step
(rank 0's per-step log, first step left out) are printed too. The 2-process / 1-process ratio of
real tokens/s is reported; there is no target on a 2-core machine.

Usage: python benchmarks/ddp_throughput.py [--rows 64] [--threads N] [--only one|two] [--json PATH]
"""

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

from scaling import train  # benchmarks/scaling.py: one `reasonalign train` subprocess and its numbers
from reasonalign.core.files import write_json

GLOBAL_BATCH, PROCESSES = 8, 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=64, help="training rows, one epoch (a multiple of 8)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="cores to use: all for the 1-process run, "
                                                                       "half each for the 2 processes")
    p.add_argument("--only", choices=["one", "two"], help="run only the 1-process or only the 2-process run")
    p.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    args = p.parse_args()
    if args.rows % GLOBAL_BATCH:
        raise SystemExit(f"--rows {args.rows}: must be a multiple of {GLOBAL_BATCH} (every row exactly once)")
    options = ["--train-rows", str(args.rows), "--epochs", "1"]
    threads = {"one": args.threads, "two": max(1, args.threads // PROCESSES)}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(PROCESSES),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(free_port()), "-m", "reasonalign"]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "two":
            runs["one"] = train([*options, "--batch-size", str(GLOBAL_BATCH)], Path(tmp) / "one",
                                env={"OMP_NUM_THREADS": str(threads["one"])})
        if args.only != "one":
            runs["two"] = train([*options, "--batch-size", str(GLOBAL_BATCH // PROCESSES)], Path(tmp) / "two",
                                launcher=launcher, env={"OMP_NUM_THREADS": str(threads["two"])})

    labels = {"one": f"1 process,   batch {GLOBAL_BATCH}, OMP_NUM_THREADS={threads['one']}",
              "two": f"{PROCESSES} processes, batch {GLOBAL_BATCH // PROCESSES} each, OMP_NUM_THREADS={threads['two']}"}
    print(f"one epoch over {args.rows} dfar:train L+R rows, global batch {GLOBAL_BATCH}, {os.cpu_count()} cores")
    for name, r in runs.items():
        r["threads"] = threads[name]
        steady = r["steady"] or {}
        print(f"{labels[name]:<48}: {r['steps']} steps, {r['real_tokens']} real tokens in {r['seconds']:.1f} s  "
              f"{r['tokens_per_s']:.1f} real tokens/s"
              + (f"  steady {steady['seconds_per_step']:.2f} s/step" if steady else "")
              + f"  ({r['processes']} process(es) ran; wall {r['wall_s']:.0f} s)")
        print(f"  {r['command']}")
    result = {"rows": args.rows, "global_batch": GLOBAL_BATCH, "processes": PROCESSES, "cpu_count": os.cpu_count(),
              "runs": runs, "headline": []}
    for name, r in runs.items():
        processes = 1 if name == "one" else PROCESSES
        result["headline"].append({"name": f"{processes}-process real tokens/s", "value": r["tokens_per_s"],
                                   "unit": "tokens/s", "target": None, "higher_is_better": True})
    if len(runs) == 2:
        one, two = runs["one"], runs["two"]
        if (two["steps"], two["real_tokens"]) != (one["steps"], one["real_tokens"]) or two["processes"] != PROCESSES:
            print(f"warning: not the same work: {two['processes']} process(es) ran {two['steps']} steps on "
                  f"{two['real_tokens']} real tokens vs {one['steps']} steps on {one['real_tokens']} in 1 process")
        ratio = two["tokens_per_s"] / one["tokens_per_s"]
        result["ratio_two_vs_one"] = round(ratio, 3)
        result["headline"].append({"name": f"{PROCESSES}-process / 1-process real tokens/s", "value": round(ratio, 3),
                                   "unit": "x", "target": None, "higher_is_better": True})
        print(f"{PROCESSES}-process / 1-process real tokens/s: {ratio:.2f}x (no target on {os.cpu_count()} cores)")
    if args.json:
        print(f"saved {write_json(args.json, result)}")


if __name__ == "__main__":
    main()
