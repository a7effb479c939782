"""The L/L+R trainer on a tiny model: loss falls, LoRA moves, the base stays frozen, outputs are complete."""

import hashlib
import shutil
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from reasonalign.core.errors import UserError
from reasonalign.prompts import get_template
from reasonalign.core.batching import Collator, encode
from reasonalign.train.sft import CompletionTrainer, TrainConfig, select_rows, train


def _config(tiny_model, data, out, **kw):
    base = dict(method="lr", model=tiny_model, data=data, output=str(out), calibration_rows=4, batch_size=4,
                lr=1e-2, epochs=4, logging_steps=1, save_steps=0, warmup_ratio=0.0, lora_r=8, lora_alpha=16,
                lora_dropout=0.0)
    return TrainConfig(**{**base, **kw})


def _features(config, tokenizer):
    template = get_template(config.template)
    _, rows, _ = select_rows(config)
    return [encode(tokenizer, template.prompt(ex.statement, config.method), template.answer(ex.label, ex.reason,
                   config.method), max_length=config.max_length) for ex in rows]


@torch.no_grad()
def _answer_loss(model, features, pad_id):
    """Mean cross-entropy over the answer tokens, from the model's own full forward pass."""
    batch = Collator(pad_id)(features)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten()).item()


@pytest.fixture(scope="module")
def finished_run(tiny_model, tmp_path_factory):
    """One complete 4-epoch run on 24 balanced rows (20 trained, 4 held out for calibration), LoRA on
    every linear layer so that the tiny model visibly learns."""
    from conftest import write_rows

    folder = tmp_path_factory.mktemp("train")
    config = _config(tiny_model, str(write_rows(folder / "small.csv")), folder / "run", lora_targets="all-linear")
    return config, train(config)


def test_loss_on_the_training_rows_fell(finished_run, tiny_model):
    from reasonalign.models import load_model, load_tokenizer

    config, summary = finished_run
    tokenizer = load_tokenizer(tiny_model)
    features = _features(config, tokenizer)
    before = _answer_loss(load_model(tiny_model), features, tokenizer.pad_token_id)
    after = _answer_loss(load_model(tiny_model, config.output), features, tokenizer.pad_token_id)
    assert after < 0.8 * before, (before, after)
    # the logged losses tell the same story, and the summary reports the last one
    history = json.loads((Path(config.output) / "train_summary.json").read_text())
    assert math.isfinite(history["final_loss"]) and summary["final_loss"] == history["final_loss"]
    assert summary["final_loss"] < 0.8 * before


def test_a_finished_run_writes_everything(finished_run, tiny_model):
    config, summary = finished_run
    out = Path(config.output)
    for name in ("adapter_config.json", "adapter_model.safetensors", "calibration.json", "train_summary.json",
                 "config.yaml", "tokenizer.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "train_summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["steps"] == 4 * 20 // 4  # 4 epochs of 20 rows in batches of 4
    assert saved["train_rows"] == 20 and saved["seed"] == 0 and saved["seconds"] > 0
    assert saved["data"]["sha256"] == hashlib.sha256(Path(config.data).read_bytes()).hexdigest()
    assert saved["data"]["rows"] == 24
    assert {"torch", "transformers", "peft", "python", "reasonalign"} <= set(saved["versions"])
    assert saved["versions"]["torch"] == torch.__version__
    # every real (non-padding) token of every step, and no padding
    from reasonalign.models import load_tokenizer

    lengths = sum(f["length"] for f in _features(config, load_tokenizer(tiny_model)))
    assert saved["real_tokens"] == 4 * lengths
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["rows"] == 4 and math.isfinite(calibration["threshold"])
    assert saved["calibration"] == calibration
    assert yaml.safe_load((out / "config.yaml").read_text())["lr"] == config.lr
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16


def test_lora_weights_moved_and_only_lora_was_saved(finished_run):
    config, _ = finished_run
    adapter = load_file(str(Path(config.output) / "adapter_model.safetensors"))
    assert adapter and all("lora_A" in k or "lora_B" in k for k in adapter), list(adapter)
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]  # B starts at zero in peft
    assert len(lora_b) == 7 * 2  # q, k, v, o, gate, up, down in 2 layers ("all-linear", not the lm head)
    assert all(v.abs().max() > 1e-4 for v in lora_b)


def test_calibration_rows_are_held_out(tiny_model, small_csv, tmp_path):
    config = _config(tiny_model, small_csv, tmp_path / "run", calibration_rows=4, train_rows=10)
    dataset, rows, calibration = select_rows(config)
    assert len(rows) == 10 and sum(ex.label for ex in rows) == 5  # class-balanced subset
    assert len(calibration) == 4
    assert not {ex.row for ex in rows} & {ex.row for ex in calibration}


def test_base_weights_stay_frozen(tiny_model, small_csv, tmp_path, monkeypatch):
    import peft

    before, captured, real = load_file(str(Path(tiny_model) / "model.safetensors")), {}, peft.get_peft_model

    def spy(model, config):  # keep a handle on the model train() builds
        captured["model"] = real(model, config)
        return captured["model"]

    monkeypatch.setattr(peft, "get_peft_model", spy)
    train(_config(tiny_model, small_csv, tmp_path / "run", epochs=1, calibration_rows=0))
    model = captured["model"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == {"q_proj", "v_proj"}  # "auto": peft's default for Llama
    base = {k.replace("base_layer.", ""): v for k, v in model.get_base_model().state_dict().items() if "lora_" not in k}
    compared = 0
    for name, value in before.items():  # bf16 runs store frozen linears cast once: compare in their dtype
        assert torch.equal(base[name], value.to(base[name].dtype)), f"{name} changed"
        compared += 1
    assert compared == len(before) and compared > 10
    assert not (tmp_path / "run" / "calibration.json").exists()  # calibration_rows=0: off


def test_finished_run_is_not_overwritten(finished_run, tiny_model):
    config, _ = finished_run
    summary = Path(config.output) / "train_summary.json"
    written = summary.read_text()
    with pytest.raises(UserError, match="holds a finished run; pass --overwrite") as err:
        train(_config(tiny_model, config.data, config.output, epochs=1))
    assert config.output in str(err.value)
    assert summary.read_text() == written  # untouched


def test_overwrite_replaces_a_finished_run(tiny_model, small_csv, tmp_path):
    out = tmp_path / "run"
    first = train(_config(tiny_model, small_csv, out, max_steps=1, calibration_rows=0))
    second = train(_config(tiny_model, small_csv, out, max_steps=2, calibration_rows=0, overwrite=True))
    assert (first["steps"], second["steps"]) == (1, 2)
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 2


def test_resume_continues_from_the_last_checkpoint(tiny_model, small_csv, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="no complete checkpoint to resume from"):
        train(_config(tiny_model, small_csv, out, resume=True))
    assert not out.exists()
    first = train(_config(tiny_model, small_csv, out, max_steps=4, save_steps=2, calibration_rows=0))
    # interrupted after checkpoint-2: the later checkpoint and the final files never got written
    shutil.rmtree(out / "checkpoint-4")
    for name in ("train_summary.json", "run.json", "adapter_config.json", "adapter_model.safetensors"):
        (out / name).unlink()
    summary = train(_config(tiny_model, small_csv, out, max_steps=4, save_steps=2, calibration_rows=0, resume=True))
    assert summary["steps"] == 4 and (out / "checkpoint-4").is_dir()
    assert summary["resumed"] == {"from": "checkpoint-2", "segments": 2, "earlier_counted": True}
    assert summary["real_tokens"] == first["real_tokens"]  # both segments counted, not only the resumed one
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == [1, 2, 3, 4]  # steps 1-2 come from the first run: it continued, not restarted
    # and it continued exactly: the same adapter as 4 uninterrupted steps
    straight = train(_config(tiny_model, small_csv, tmp_path / "straight", max_steps=4, calibration_rows=0))
    assert summary["final_loss"] == pytest.approx(straight["final_loss"], rel=1e-5)
    resumed = load_file(str(out / "adapter_model.safetensors"))
    for name, value in load_file(str(tmp_path / "straight" / "adapter_model.safetensors")).items():
        assert torch.allclose(resumed[name], value, atol=1e-6), name


def test_batch_without_label_tokens_stops_with_a_clear_error(tiny_model):
    from reasonalign.models import load_model

    trainer = CompletionTrainer.__new__(CompletionTrainer)  # compute_loss needs no trainer state
    model = load_model(tiny_model)
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.full_like(ids, -100)}
    with pytest.raises(UserError, match="no trainable label tokens"):
        trainer.compute_loss(model, batch)
    # with one label token it is an ordinary loss
    batch["labels"][0, 3] = 9
    loss = trainer.compute_loss(model, batch)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    expected = torch.nn.functional.cross_entropy(model(input_ids=ids).logits[0, 2:3], torch.tensor([9]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_qlora_and_fp16_need_a_gpu(tiny_model, small_csv, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="--qlora needs a CUDA GPU"):
        train(_config(tiny_model, small_csv, tmp_path / "a", qlora=True))
    with pytest.raises(UserError, match="fp16 needs a GPU"):
        train(_config(tiny_model, small_csv, tmp_path / "b", precision="fp16"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_label_weight_loss_equals_the_hand_computed_two_task_loss(tiny_model, tmp_path):
    """`--label-weight a`: a x (per-sequence mean NLL of the label tokens) + (1 - a) x (that of the
    reason tokens), averaged over sequences: checked against the model's own full forward pass."""
    from conftest import write_rows
    from reasonalign.core.batching import LABEL, REASON
    from reasonalign.train.sft import SFTRecipe

    config = _config(tiny_model, str(write_rows(tmp_path / "rows.csv")), tmp_path / "run", label_weight=0.3,
                     precision="fp32")
    recipe = SFTRecipe(config)
    recipe.setup()
    batch = Collator(recipe.tokenizer.pad_token_id)(recipe.dataset[:4])
    loss = recipe.hf_trainer.compute_loss(recipe.model, batch)
    with torch.no_grad():
        logits = recipe.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), batch["labels"][:, 1:], reduction="none")
    seg = batch["segments"][:, 1:]
    per_seq = [0.3 * nll[i][seg[i] == LABEL].mean() + 0.7 * nll[i][seg[i] == REASON].mean() for i in range(4)]
    assert loss.item() == pytest.approx(torch.stack(per_seq).mean().item(), rel=1e-5)


def test_label_weight_training_learns_and_records_it(tiny_model, tmp_path):
    from conftest import write_rows

    config = _config(tiny_model, str(write_rows(tmp_path / "rows.csv")), tmp_path / "run", label_weight=0.5,
                     lora_targets="all-linear", epochs=3)
    summary = train(config)
    assert summary["label_weight"] == 0.5 and summary["final_loss"] < 0.8 * summary["first_loss"]
    lora_b = [v for k, v in load_file(str(tmp_path / "run" / "adapter_model.safetensors")).items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it moved


@pytest.mark.parametrize("kw, message", [({"method": "l", "label_weight": 0.5}, "needs --method lr"),
                                         ({"label_weight": 1.5}, "between 0 and 1")])
def test_label_weight_is_checked_before_anything_loads(tmp_path, kw, message):
    with pytest.raises(UserError, match=message):
        train(TrainConfig(model=str(tmp_path / "no-model"), output=str(tmp_path / "run"), **kw))
