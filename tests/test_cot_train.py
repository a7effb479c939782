"""`reasonalign train --method cot`: LoRA SFT on GSM8K/AQuA rationales (loss on the rationale only)."""

import json
from pathlib import Path

import pytest

from conftest import cli
from reasonalign.cli import main
from reasonalign.data import take_rows as pick_rows
from reasonalign.data.cot import format_prompt, format_target, load_cot
from reasonalign.core.errors import UserError
from reasonalign.train.config import TrainConfig
from reasonalign.train.sft import select_rows

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K, AQUA = str(FIXTURES / "gsm8k_tiny.jsonl"), str(FIXTURES / "aqua_tiny.jsonl")
FAST = ["--batch-size", "4", "--lr", "1e-2", "--lora-r", "8", "--save-steps", "0", "--logging-steps", "1"]


def test_cot_rows_are_a_seeded_first_n_without_calibration():
    dataset, rows, calibration = select_rows(TrainConfig(method="cot", data=GSM8K, train_rows=5, seed=2))
    assert rows == pick_rows(load_cot(GSM8K), 5, 2) and len(rows) == 5 and calibration == []
    assert len(dataset) == 8 and len(dataset.sha256) == 64 and dataset.path == GSM8K
    _, all_rows, _ = select_rows(TrainConfig(method="cot", data=AQUA))
    assert [ex.row for ex in all_rows] == list(range(1, 9))


def test_cot_refuses_label_data():
    with pytest.raises(UserError, match="method cot needs gsm8k:train"):
        select_rows(TrainConfig(method="cot"))  # the default data is dfar:train


def test_console_script_train_cot(tiny_model, tmp_path):
    run = tmp_path / "run"
    r = cli("train", "--method", "cot", "--model", tiny_model, "--data", GSM8K, "--output", str(run),
            "--max-steps", "8", *FAST)
    assert r.returncode == 0, r.stderr
    assert "done: 8 steps" in r.stdout
    for name in ("adapter_config.json", "adapter_model.safetensors", "train_summary.json"):
        assert (run / name).is_file(), name
    assert not (run / "calibration.json").exists()  # no labels, nothing to calibrate
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["task"] == "gsm8k" and summary["method"] == "cot" and summary["template"] == "cot"
    assert summary["train_rows"] == 8 and summary["calibration"] is None
    assert summary["final_loss"] < summary["first_loss"]


def test_cot_trains_on_the_rationale_only(tiny_model, tmp_path, monkeypatch):
    """The features the trainer sees: prompt = format_prompt (plain text), labels = format_target + EOS."""
    import reasonalign.train.sft as sft
    from reasonalign.models import load_tokenizer

    seen = {}

    class Stop(Exception):
        pass

    def capture(model, args, train_dataset, data_collator, **options):
        seen["features"] = train_dataset
        raise Stop

    monkeypatch.setattr(sft, "CompletionTrainer", capture)
    with pytest.raises(Stop):
        sft.train(TrainConfig(method="cot", model=tiny_model, data=AQUA, train_rows=2, output=str(tmp_path / "o")))
    tok = load_tokenizer(tiny_model)
    rows = pick_rows(load_cot(AQUA), 2, 0)
    for ex, f in zip(rows, seen["features"]):
        prompt = tok(format_prompt(ex)).input_ids
        assert f["input_ids"][:len(prompt)] == prompt
        answer = [t for t in f["labels"] if t != -100]
        assert answer[-1] == tok.eos_token_id and tok.decode(answer[:-1]) == format_target(ex)


def test_malformed_row_is_one_line_exit_2_nothing_written(tiny_model, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "How many?", "answer": "2 + 2 = 4\\n#### 4"}\n{"question": "And now?"}\n')
    out = tmp_path / "out"
    assert main(["train", "--method", "cot", "--model", tiny_model, "--data", str(bad), "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {bad}:2: missing field 'answer'\n"
    assert not out.exists()
