"""The real console script: train -> eval (-> demo) on a tiny model; bad input is one line, exit 2, nothing written."""

import json
from pathlib import Path

import pytest

from conftest import cli
from reasonalign.cli import main

FAST = ["--batch-size", "4", "--lr", "1e-2", "--lora-r", "8", "--save-steps", "0", "--calibration-rows", "4"]


def test_train_then_eval(tiny_model, small_csv, tmp_path):
    run, ev = tmp_path / "run", tmp_path / "ev"
    r = cli("train", "--method", "l", "--model", tiny_model, "--data", small_csv, "--output", str(run),
            "--max-steps", "3", *FAST)
    assert r.returncode == 0, r.stderr
    assert "done: 3 steps" in r.stdout and str(run) in r.stdout
    for name in ("adapter_config.json", "adapter_model.safetensors", "calibration.json", "train_summary.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["config"]["lr"] == 1e-2 and summary["config"]["lora_r"] == 8

    r = cli("eval", "--model", tiny_model, "--adapter", str(run), "--data", small_csv, "--output", str(ev))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["n"] == 24 and 0 <= metrics["accuracy"] <= 1
    assert metrics["method"] == "l" and metrics["template"] == "dfar-llama"  # taken from the adapter's run
    assert metrics["threshold_source"] == str(run / "calibration.json")
    assert metrics["threshold"] == json.loads((run / "calibration.json").read_text())["threshold"]
    assert len((ev / "predictions.jsonl").read_text().splitlines()) == 24
    assert f"n={metrics['n']}" in r.stdout and f"{ev}/metrics.json" in r.stdout


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture
def bad_inputs(tmp_path):
    """(extra arguments, the file the message must name, what it must say) for each kind of bad input."""
    absent = str(tmp_path / "absent.csv")
    no_column = _write(tmp_path / "nocol.csv", "text,label,reason\nI lied.,1,Lying hurts.\n")
    bad_label = _write(tmp_path / "badlabel.csv",
                       "statement,label,reason\nI lied.,yes,Lying hurts.\nI helped.,maybe,Helping is kind.\n")
    return {
        "missing file": (["--data", absent], absent, f"{absent}: no such file"),
        "missing column": (["--data", no_column], no_column, f"{no_column}:1: no 'statement' column"),
        "label outside the map": (["--data", bad_label, "--label-map", "no=ethical,yes=unethical"], bad_label,
                                  f"{bad_label}:3: label 'maybe' is not one of no, yes"),
    }


CASES = ["missing file", "missing column", "label outside the map"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["train", "eval"])
def test_bad_input_is_one_line_exit_2_nothing_written(tiny_model, tmp_path, capsys, bad_inputs, command, case):
    args, path, problem = bad_inputs[case]
    out = tmp_path / "out"
    code = main([command, "--model", tiny_model, *args, "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {problem}"), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_the_console_script_reports_bad_input_in_one_line(tiny_model, tmp_path, bad_inputs):
    # the installed entry point, in a fresh process: no warning or traceback may reach stderr
    args, path, problem = bad_inputs["label outside the map"]
    out = tmp_path / "out"
    r = cli("train", "--model", tiny_model, *args, "--output", str(out), "--max-steps", "1")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"error: {problem} (map it with --label-map RAW=ethical,...)"]
    assert r.stdout == "" and not out.exists()


def test_bad_option_values_exit_2(tiny_model, tmp_path, capsys):
    recipe = _write(tmp_path / "r.yaml", "lora_rank: 8\n")
    assert main(["train", "--model", tiny_model, "--config", recipe, "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: {recipe}: unknown option(s) lora_rank\n"
    with pytest.raises(SystemExit) as exit_:  # argparse: usage + one error line, also status 2
        main(["train", "--method", "x"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_debug_shows_the_error_itself(tmp_path):
    from reasonalign.core.errors import UserError

    with pytest.raises(UserError, match="no such file"):
        main(["--debug", "data", "validate", str(tmp_path / "absent.csv")])


def test_demo_on_a_tiny_model(tiny_model, tmp_path):
    out = tmp_path / "demo"
    r = cli("demo", "--model", tiny_model, "--train-rows", "16", "--test-rows", "16", "--calibration-rows", "8",
            "--epochs", "1", "--mar-rows", "8", "--mar-max-new-tokens", "6", "--mar-min-new-tokens", "2", "--output", str(out))
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())["results"]
    assert [x["model"] for x in results] == ["untuned", "L (labels)", "L+R (labels + reasons)"]
    for x in results:
        # leakage-aware: the whole test sample and its clean part, side by side
        full, clean = x["accuracy"]["dfar:test"], x["accuracy"]["dfar:test-clean"]
        assert full["n"] == 16 and 0 < clean["n"] < 16 and 0 <= full["accuracy"] <= 1
        assert x["mar"]["dfar:test"]["n"] == 8 and 0 <= x["mar"]["dfar:test"]["mar"] <= 1
    assert (out / "l" / "adapter_model.safetensors").is_file() and (out / "lr" / "adapter_model.safetensors").is_file()
    assert (out / "lr" / "eval-reasons" / "judgements.jsonl").is_file()
    md = (out / "results.md").read_text()
    assert "| L+R (labels + reasons) |" in md and "MAR dfar:test-clean" in md


def test_model_list(capsys):
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "gemma3-270m" in out
