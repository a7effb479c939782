"""--precision is applied where forward passes really run, `auto` follows a measurement, and the record is true.

These pass on any CPU: autocast to bf16 works everywhere (it is only slow where the CPU emulates it),
and a tiny model keeps that cost negligible.
"""

import json

import pytest
import torch

from reasonalign.core import precision
from reasonalign.core.errors import UserError


def _dtypes_seen(module) -> list:
    """The dtype a (linear) module computes in, at every call from now on: its output's (a forward hook)."""
    seen = []
    module.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen


def _q_proj(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder().layers[0].self_attn.q_proj


def test_autocast_runs_linear_layers_in_bf16_and_fp32_leaves_them(tiny_model):
    from reasonalign.models import load_model

    model = load_model(tiny_model)
    seen = _dtypes_seen(_q_proj(model))
    ids = torch.tensor([[1, 2, 3]])
    with precision.autocast("bf16", "cpu"):
        bf16 = model(input_ids=ids).logits
    with precision.autocast("fp32", "cpu"):
        fp32 = model(input_ids=ids).logits
    assert seen == [torch.bfloat16, torch.float32]
    assert not torch.equal(bf16.float(), fp32)


def test_resolve_checks_and_auto_follows_the_probe(monkeypatch):
    with pytest.raises(UserError, match="fp16 needs a GPU"):
        precision.resolve("fp16", "cpu")
    with pytest.raises(UserError, match="choose from"):
        precision.resolve("int8", "cpu")
    for choice in ("fp32", "bf16"):
        monkeypatch.setattr(precision, "probe", lambda device, choice=choice: {"auto": choice})
        assert precision.resolve("auto", "cpu") == choice
        assert precision.resolve("fp32", "cpu") == "fp32" and precision.resolve("bf16", "cpu") == "bf16"


@pytest.mark.parametrize("fp32_s, bf16_s, expected", [(1.0, 100.0, "fp32"), (1.0, 0.4, "bf16"), (1.0, 0.9, "fp32")])
def test_probe_picks_bf16_only_where_measured_faster_and_caches_it(monkeypatch, tmp_path, fp32_s, bf16_s, expected):
    """A CPU that emulates bf16 (100x slower) gets fp32; one where it is 2.5x faster gets bf16; a 10% gain is
    not worth bf16's rounding. The answer is measured once per machine, then read from the cache."""
    monkeypatch.setenv("REASONALIGN_CACHE", str(tmp_path))
    timings = iter([fp32_s, bf16_s])
    monkeypatch.setattr(precision, "_best_seconds", lambda step, budget: next(timings))
    first = precision.probe("cpu")
    assert first["auto"] == expected and first["speedup"] == pytest.approx(fp32_s / bf16_s)
    cached = json.loads((tmp_path / "precision-probe.json").read_text())
    assert list(cached.values()) == [first]
    monkeypatch.setattr(precision, "_best_seconds", lambda step, budget: pytest.fail("probe ran twice"))
    assert precision.probe("cpu") == first


def test_the_real_probe_times_both_precisions(monkeypatch, tmp_path):
    monkeypatch.setenv("REASONALIGN_CACHE", str(tmp_path))
    result = precision.probe("cpu", budget=0.01)
    assert result["fp32_s"] > 0 and result["bf16_s"] > 0 and result["auto"] in ("fp32", "bf16")


def _train_recipe(tiny_model, folder, prec, **kw):
    from conftest import write_rows
    from reasonalign.train.sft import SFTRecipe, TrainConfig

    config = TrainConfig(method="lr", model=tiny_model, data=str(write_rows(folder / "rows.csv")), calibration_rows=4,
                         batch_size=4, lr=1e-2, max_steps=3, logging_steps=1, save_steps=0, lora_r=8,
                         lora_dropout=0.0, precision=prec, output=str(folder / prec), **kw)
    recipe = SFTRecipe(config)
    recipe.setup()
    return recipe


@pytest.mark.parametrize("prec, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_training_runs_in_the_requested_precision_and_records_it(tiny_model, tmp_path, prec, dtype):
    """The trainer's forward passes (which call the decoder by hand) see the precision; the frozen
    weights are stored in it, the trained LoRA stays fp32, and run.json/train_summary.json say so."""
    recipe = _train_recipe(tiny_model, tmp_path, prec)
    q_proj = _q_proj(recipe.model)
    seen = _dtypes_seen(q_proj.base_layer)
    recipe.train()
    summary = recipe.save()
    assert seen and set(seen) == {dtype}
    assert q_proj.base_layer.weight.dtype == dtype
    assert all(p.dtype == torch.float32 for p in recipe.model.parameters() if p.requires_grad)
    assert summary["precision"] == prec
    assert json.loads((tmp_path / prec / "run.json").read_text())["precision"] == prec


def test_bf16_training_loss_differs_from_fp32(tiny_model, tmp_path):
    """If autocast were silently off (the old bug), both runs would give bit-identical losses."""
    losses = {}
    for prec in ("fp32", "bf16"):
        recipe = _train_recipe(tiny_model, tmp_path, prec)
        recipe.train()
        losses[prec] = [h["loss"] for h in recipe.hf_trainer.state.log_history if "loss" in h]
    assert len(losses["fp32"]) == 3 and losses["fp32"] != losses["bf16"]
    assert losses["fp32"] == pytest.approx(losses["bf16"], rel=0.1)  # the same training, rounded differently


def test_eval_scores_in_the_requested_precision(tiny_model, small_csv, tmp_path):
    from reasonalign.eval.labels import EvalConfig, evaluate
    from reasonalign.models import load_model, load_tokenizer

    model, tokenizer = load_model(tiny_model), load_tokenizer(tiny_model)
    seen = _dtypes_seen(_q_proj(model))
    metrics = evaluate(EvalConfig(model=tiny_model, data=small_csv, precision="bf16", output=str(tmp_path)),
                       model=model, tokenizer=tokenizer)
    assert metrics["precision"] == "bf16" and seen and set(seen) == {torch.bfloat16}
    assert json.loads((tmp_path / "metrics.json").read_text())["precision"] == "bf16"


def _fake_gpu(monkeypatch, capability, name):
    """A CUDA device of this compute capability, as far as `precision` can tell (no GPU needed)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(precision, "_best_seconds", lambda step, budget: pytest.fail("a GPU must not be timed"))


@pytest.mark.parametrize("capability, name, expected", [((9, 0), "NVIDIA H100 80GB HBM3", "bf16"),
                                                         ((8, 0), "NVIDIA A100-SXM4-80GB", "bf16"),
                                                         ((7, 5), "Tesla T4", "fp16"), ((7, 0), "Tesla V100", "fp16")])
def test_auto_on_a_gpu_is_bf16_from_ampere_on_and_fp16_before(monkeypatch, tmp_path, capability, name, expected):
    """The H100 that resolved `auto` to fp32 (its launch-bound probe saw no speedup) now gets bf16; a T4 or V100,
    whose bf16 is emulated, fp16. Nothing is timed or cached for a GPU."""
    monkeypatch.setenv("REASONALIGN_CACHE", str(tmp_path))
    _fake_gpu(monkeypatch, capability, name)
    assert precision.resolve("auto", "cuda:0") == expected
    found = precision.probe("cuda")
    assert found["auto"] == expected and found["capability"] == f"{capability[0]}.{capability[1]}"
    assert found["gpu"] == name
    assert not (tmp_path / "precision-probe.json").exists()
    assert precision.resolve("fp32", "cuda") == "fp32" and precision.resolve("fp16", "cuda") == "fp16"

