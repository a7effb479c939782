"""The real console script: train -> eval -> demo on a tiny model; bad input is one line, exit 2, nothing written."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = shutil.which("reasonalign", path=str(Path(sys.executable).parent)) or "reasonalign"
FAST = ["--batch-size", "4", "--lr", "1e-2", "--lora-r", "8", "--save-steps", "0", "--calibration-rows", "4"]


def cli(*args, cwd=None):
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_train_then_eval(tiny_model, small_csv, tmp_path):
    run = tmp_path / "run"
    r = cli("train", "--method", "l", "--model", tiny_model, "--data", small_csv, "--output", str(run),
            "--max-steps", "3", *FAST)
    assert r.returncode == 0, r.stderr
    assert "done: 3 steps" in r.stdout and (run / "adapter_model.safetensors").is_file()
    r = cli("eval", "--model", tiny_model, "--adapter", str(run), "--data", small_csv, "--output", str(tmp_path / "ev"))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 24 and metrics["method"] == "l" and metrics["threshold_source"].endswith("calibration.json")
    assert f"n={metrics['n']}" in r.stdout


def _bad_files(tmp_path):
    missing_col = tmp_path / "nocol.csv"
    missing_col.write_text("text,label\nI lied.,1\n")
    bad_label = tmp_path / "badlabel.csv"
    bad_label.write_text("statement,label,reason\nI lied.,1,Lying hurts.\nI helped.,maybe,Helping is kind.\n")
    return [(str(tmp_path / "absent.csv"), "no such file"), (str(missing_col), "statement"),
            (str(bad_label), "maybe")]


@pytest.mark.parametrize("case", range(3))
def test_bad_input_is_one_line_exit_2_nothing_written(tiny_model, tmp_path, case):
    path, problem = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    r = cli("train", "--model", tiny_model, "--data", path, "--output", str(out), "--max-steps", "1")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and Path(path).name in lines[0], r.stderr
    assert problem in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()


def test_debug_shows_the_traceback(tmp_path):
    r = cli("--debug", "data", "validate", str(tmp_path / "absent.csv"))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_demo_on_a_tiny_model(tiny_model, tmp_path):
    out = tmp_path / "demo"
    r = cli("demo", "--model", tiny_model, "--train-rows", "16", "--test-rows", "16", "--calibration-rows", "8",
            "--epochs", "1", "--output", str(out))
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())["results"]
    assert [x["model"] for x in results] == ["untuned", "L (labels)", "L+R (labels + reasons)"]
    assert all(x["n"] == 16 and 0 <= x["accuracy"] <= 1 for x in results)
    assert "| L+R (labels + reasons) |" in (out / "results.md").read_text()
    assert "95% CI" in r.stdout


def test_model_list():
    r = cli("model", "list")
    assert r.returncode == 0 and "smollm2-135m-instruct" in r.stdout and "gemma3-270m" in r.stdout
