"""End to end with the real SmolLM2-135M-Instruct: 3 training steps, then evaluation (about a minute).

Reasons are truncated at 128 tokens to keep the steps short (the label always survives truncation).

Run with `pytest -m e2e`; needs the offline model package (converted once into the cache).
"""

import json
import math

import pytest
from safetensors.torch import load_file

from reasonalign.eval.labels import EvalConfig, evaluate
from reasonalign.train.sft import TrainConfig, train

pytestmark = pytest.mark.e2e


def test_smollm2_trains_and_evaluates(tmp_path):
    out = tmp_path / "lr"
    summary = train(TrainConfig(method="lr", train_rows=16, calibration_rows=16, batch_size=4, max_steps=3,
                                lr=1e-3, save_steps=0, logging_steps=1, max_length=128, output=str(out)))
    assert summary["steps"] == 3 and summary["train_rows"] == 16 and summary["real_tokens"] > 0
    assert summary["model"] == "smollm2-135m-instruct" and summary["data"]["rows"] == 4000
    assert math.isfinite(summary["final_loss"]) and 0 < summary["final_loss"] < 20
    for name in ("adapter_config.json", "adapter_model.safetensors", "calibration.json", "train_summary.json"):
        assert (out / name).is_file(), name
    adapter = load_file(str(out / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().max() > 0 for v in lora_b)  # LoRA B starts at 0: the weights moved
    assert json.loads((out / "calibration.json").read_text())["rows"] == 16

    m = evaluate(EvalConfig(adapter=str(out), data="dfar:test-clean", rows=32, output=str(tmp_path / "eval")))
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["n"] == 32 and 0 <= m["accuracy"] <= 1 and saved["accuracy"] == m["accuracy"]
    assert saved["threshold_source"] == str(out / "calibration.json") and saved["method"] == "lr"
    lo, hi = saved["ci95"]
    assert 0 <= lo <= saved["accuracy"] <= hi <= 1
    assert len((tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()) == 32
