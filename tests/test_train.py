"""The L/L+R trainer on a tiny model: loss falls, LoRA moves, the base stays frozen, outputs are complete."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reasonalign.errors import UserError
from reasonalign.train.sft import CompletionTrainer, TrainConfig, train


def _config(tiny_model, data, out, **kw):
    base = dict(method="lr", model=tiny_model, data=data, output=str(out), calibration_rows=4, batch_size=4,
                lr=1e-2, epochs=4, logging_steps=1, save_steps=0, warmup_ratio=0.0, lora_r=8, lora_alpha=16,
                lora_dropout=0.0)
    return TrainConfig(**{**base, **kw})


def _base_weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def test_training_learns_and_writes_a_complete_run(tiny_model, small_csv, tmp_path):
    out = tmp_path / "run"
    summary = train(_config(tiny_model, small_csv, out))
    assert summary["steps"] > 0 and summary["real_tokens"] > 0 and summary["seconds"] > 0
    assert summary["final_loss"] < summary["first_loss"], "loss did not fall"
    for name in ("adapter_config.json", "adapter_model.safetensors", "calibration.json", "train_summary.json",
                 "config.yaml", "tokenizer.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "train_summary.json").read_text())
    assert saved["seed"] == 0 and len(saved["data"]["sha256"]) == 64 and "torch" in saved["versions"]
    assert saved["train_rows"] == 20 and saved["calibration"]["rows"] == 4
    # LoRA B matrices start at zero; after training they moved
    adapter = load_file(str(out / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    assert not any("embed_tokens" in k or "mlp" in k for k in adapter), "base weights leaked into the adapter"


def test_base_weights_stay_frozen(tiny_model, small_csv, tmp_path, monkeypatch):
    import peft

    before, captured, real = _base_weights(tiny_model), {}, peft.get_peft_model

    def spy(model, config):  # keep a handle on the model train() builds
        captured["model"] = real(model, config)
        return captured["model"]

    monkeypatch.setattr(peft, "get_peft_model", spy)
    train(_config(tiny_model, small_csv, tmp_path / "run", epochs=1))
    model = captured["model"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    base = model.get_base_model().state_dict()
    for name, value in before.items():
        key = next(k for k in base if k.replace("base_layer.", "") == name)
        assert torch.equal(base[key], value), f"{name} changed"


def test_finished_run_is_not_overwritten(tiny_model, small_csv, tmp_path):
    out = tmp_path / "run"
    train(_config(tiny_model, small_csv, out, epochs=1))
    with pytest.raises(UserError, match="--overwrite"):
        train(_config(tiny_model, small_csv, out, epochs=1))
    train(_config(tiny_model, small_csv, out, epochs=1, overwrite=True))


def test_resume_continues_from_the_last_checkpoint(tiny_model, small_csv, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="no checkpoint"):
        train(_config(tiny_model, small_csv, out, resume=True))
    train(_config(tiny_model, small_csv, out, max_steps=2, save_steps=2))
    assert (out / "checkpoint-2").is_dir()
    summary = train(_config(tiny_model, small_csv, out, max_steps=4, save_steps=2, resume=True))
    assert summary["steps"] == 4 and (out / "checkpoint-4").is_dir()


def test_batch_without_label_tokens_stops_with_a_clear_error():
    trainer = CompletionTrainer.__new__(CompletionTrainer)

    class Tiny(torch.nn.Module):  # the guard fires before any vocabulary projection
        def get_decoder(self):
            return lambda input_ids, attention_mask: type("O", (), {"last_hidden_state": torch.zeros(1, 3, 4)})()

        def get_output_embeddings(self):
            return torch.nn.Linear(4, 5)

        config = type("C", (), {})()

    batch = {"input_ids": torch.ones(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3, dtype=torch.long),
             "labels": torch.full((1, 3), -100)}
    with pytest.raises(UserError, match="no trainable label tokens"):
        trainer.compute_loss(Tiny(), batch)


def test_qlora_and_fp16_need_a_gpu(tiny_model, small_csv, tmp_path):
    with pytest.raises(UserError, match="CUDA"):
        train(_config(tiny_model, small_csv, tmp_path / "a", qlora=True))
    with pytest.raises(UserError, match="fp16 needs a GPU"):
        train(_config(tiny_model, small_csv, tmp_path / "b", precision="fp16"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
