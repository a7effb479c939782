"""Two CPU processes under `accelerate launch` (gloo) give what one process gives, and only rank 0 writes.

Each test runs the real console commands twice: in one process, and launched as 2 processes with
the same global batch (`--batch-size` halved per process for training). Training must log the
same loss at every step (float tolerance); eval, generate-and-judge and sampling must write the
very same files. Rank 1 runs with an audit hook (sitecustomize, Python's `sys.addaudithook`)
that logs every file it opens for writing or renames inside the run folder: that log must stay
empty. A rank killed mid-run must make the launch fail, with nothing written.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SRC, cli, write_rows

ACCELERATE = Path(sys.executable).parent / "accelerate"
# the shipped DDP config (2 processes); on this CPU-only machine it runs them over gloo
LAUNCH = [str(ACCELERATE), "launch", "--config_file", str(Path(__file__).parents[1] / "configs" / "accelerate" /
                                                          "ddp.yaml"), "-m", "reasonalign"]
AUDIT = '''
import os, sys
if os.environ.get("RANK", "0") != "0" and os.environ.get("WRITE_LOG"):
    _log = open(os.environ["WRITE_LOG"] + "." + os.environ["RANK"], "a")
    _watched = os.environ["WATCH_DIR"]

    def _inside(path):
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(_watched)
        except TypeError:  # a file descriptor
            return False

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if path is not None and writing and _inside(path):
                _log.write(f"open {path}\\n")
                _log.flush()
        elif event in ("os.rename", "os.replace") and _inside(args[1]):
            _log.write(f"{event} {args[1]}\\n")
            _log.flush()

    sys.addaudithook(_hook)
'''


def launch(tmp_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`reasonalign ARGS` as 2 CPU processes; rank 1's writes inside tmp_path go to tmp_path/writes.1."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(AUDIT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "WRITE_LOG": str(tmp_path / "writes"), "WATCH_DIR": str(tmp_path / "runs"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*LAUNCH, *args], capture_output=True, text=True, env=env, timeout=timeout)


def rank1_writes(tmp_path: Path) -> list[str]:
    log = tmp_path / "writes.1"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def data(tmp_path) -> str:
    return str(write_rows(tmp_path / "rows.csv"))


@pytest.mark.parametrize("loss", ["token-mean", "label-weight", "token-budget"])
def test_two_process_training_logs_the_one_process_losses(tiny_model, data, tmp_path, loss):
    """token-budget: --max-tokens stops both runs at the same step (the processes add up their tokens;
    a process stopping alone would leave the other waiting for its gradients)."""
    steps = ["--max-steps", "50", "--max-tokens", "600"] if loss == "token-budget" else ["--max-steps", "5"]
    common = ["train", "--model", tiny_model, "--data", data, "--method", "lr", *steps,
              "--logging-steps", "1", "--lora-dropout", "0", "--lr", "1e-2", "--precision", "fp32", "--seed", "0",
              *(["--label-weight", "0.5"] if loss == "label-weight" else [])]
    one = cli(*common, "--batch-size", "4", "--output", str(tmp_path / "runs" / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = launch(tmp_path, *common, "--batch-size", "2", "--output", str(tmp_path / "runs" / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads((tmp_path / "runs" / n / "train_summary.json").read_text()) for n in ("one", "two"))
    assert b["processes"] == 2 and a["processes"] == 1
    losses_a, losses_b = [x["loss"] for x in a["loss_log"]], [x["loss"] for x in b["loss_log"]]
    assert len(losses_a) == len(losses_b) == (a["steps"] if loss == "token-budget" else 5)
    assert b["steps"] == a["steps"] and (loss != "token-budget" or a["steps"] < 50)
    assert losses_b == pytest.approx(losses_a, rel=1e-5)
    assert losses_a[-1] < losses_a[0]  # it learns (lr 1e-2 on the tiny model)
    assert b["real_tokens"] == a["real_tokens"]  # summed over the processes: the same rows were seen
    assert b["calibration"]["threshold"] == pytest.approx(a["calibration"]["threshold"], abs=1e-4)
    assert sorted(p.name for p in (tmp_path / "runs" / "two").iterdir()) == \
        sorted(p.name for p in (tmp_path / "runs" / "one").iterdir())
    assert rank1_writes(tmp_path) == []


def test_two_process_eval_generation_and_sampling_equal_one_process(tiny_model, data, tmp_path):
    runs = tmp_path / "runs"
    commands = {
        "labels": ["eval", "--task", "labels", "--model", tiny_model, "--data", data, "--batch-size", "4"],
        "labels-generate": ["eval", "--task", "labels", "--scoring", "generate", "--model", tiny_model, "--data", data,
                            "--batch-size", "4", "--max-new-tokens", "6"],
        "reasons": ["eval", "--task", "reasons", "--model", tiny_model, "--data", data, "--batch-size", "4",
                    "--max-new-tokens", "8"],
    }
    for name, args in commands.items():
        one = cli(*args, "--output", str(runs / "one" / name))
        assert one.returncode == 0, one.stderr[-2000:]
        two = launch(tmp_path, *args, "--output", str(runs / "two" / name))
        assert two.returncode == 0, two.stderr[-3000:]
        assert two.stdout.count("-> ") == 1  # one process speaks
    sample = ["sample", "--model", tiny_model, "--data", data, "--k", "3", "--batch-size", "4",
              "--max-new-tokens", "8", "--temperature", "1.0", "--seed", "3"]
    assert cli(*sample, "--output", str(runs / "one" / "sample" / "groups.jsonl")).returncode == 0
    two = launch(tmp_path, *sample, "--output", str(runs / "two" / "sample" / "groups.jsonl"))
    assert two.returncode == 0, two.stderr[-3000:]

    for path in ("labels/predictions.jsonl", "labels-generate/predictions.jsonl", "reasons/generations.jsonl",
                 "reasons/judgements.jsonl", "sample/groups.jsonl"):
        assert (runs / "two" / path).read_text() == (runs / "one" / path).read_text(), path
    m1, m2 = (json.loads((runs / n / "labels" / "metrics.json").read_text()) for n in ("one", "two"))
    assert (m2["accuracy"], m2["n"], m2["ci95"]) == (m1["accuracy"], m1["n"], m1["ci95"])
    groups = [json.loads(line) for line in (runs / "two" / "sample" / "groups.jsonl").read_text().splitlines()]
    assert len(groups) == 24 and len({r["text"] for g in groups for r in g["responses"]}) > 24  # really sampled
    assert rank1_writes(tmp_path) == []


def test_a_killed_rank_fails_the_run_and_nothing_is_written(tiny_model, data, tmp_path):
    out = tmp_path / "runs" / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    launcher = subprocess.Popen([*LAUNCH, "generate", "--model", tiny_model, "--data", data, "--batch-size", "1",
                                 "--max-new-tokens", "200", "--no-repeat-ngram-size", "0", "--output", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        workers, started = [], time.monotonic()
        while len(workers) < 2 and time.monotonic() - started < 120:  # the launcher's two children
            time.sleep(0.5)
            children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
            workers = children.read_text().split() if children.exists() else []
        assert len(workers) == 2, "the launcher did not start two processes"
        time.sleep(3)  # both are starting (a rank killed at any point before the gather stops the run)
        os.kill(int(workers[1]), signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=180)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert "FAILED" in stderr and "Signal 9 (SIGKILL)" in stderr, stderr[-3000:]
    assert not (out / "generations.jsonl").exists()


def test_single_process_never_starts_a_process_group():
    """Without a launcher: rank 0 of 1, and map_chunks is a plain loop (no accelerate import)."""
    code = ("import sys; from reasonalign.core import distributed as d; "
            "print(d.world_size(), d.rank(), d.is_main(), d.map_chunks(lambda c: c * 2, [1, 2, 3]), "
            "'accelerate' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.split() == ["1", "0", "True", "[2,", "4,", "6]", "False"], r.stderr
