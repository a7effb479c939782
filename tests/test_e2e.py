"""End to end with the real SmolLM2-135M: a few training steps, then evaluation (about a minute)."""

import json

import pytest
from safetensors.torch import load_file

from reasonalign.eval.run import EvalConfig, evaluate
from reasonalign.train.sft import TrainConfig, train

pytestmark = pytest.mark.e2e


def test_smollm2_trains_and_evaluates(tmp_path):
    out = tmp_path / "lr"
    summary = train(TrainConfig(method="lr", train_rows=8, calibration_rows=16, batch_size=4, max_steps=2,
                                lr=1e-3, save_steps=0, output=str(out), max_length=96))
    assert summary["steps"] == 2 and summary["real_tokens"] > 0
    assert summary["first_loss"] == summary["first_loss"] and summary["final_loss"] < 10  # finite
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # LoRA B starts at 0: it moved
    m = evaluate(EvalConfig(adapter=str(out), data="dfar:test-clean", rows=32, output=str(tmp_path / "eval")))
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["n"] == 32 and 0 <= m["accuracy"] <= 1 and saved["threshold_source"].endswith("calibration.json")
    assert saved["config"]["adapter"] == str(out)
