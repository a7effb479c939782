"""Token-budget batches and packed rows train on exactly what plain batches train on.

Per example: the same answer-token losses and the same LoRA gradients as a plain right-padded batch of
the same examples (fp32, both attention implementations the trainer uses), with and without the
label/reason two-task loss; and a packed row whose positions did not restart would differ, so these
comparisons can fail. The frozen base is loaded in the compute dtype on a GPU only.
"""

import pytest
import torch

from reasonalign.core.batching import SHAPE_MULTIPLE, Collator, PackedCollator, token_batches
from reasonalign.core.errors import UserError
from reasonalign.finetune.recipe import base_dtype
from reasonalign.train.sft import SFTRecipe, TrainConfig, train


def _config(tiny_model, data, out, **kw):
    base = dict(method="lr", model=tiny_model, data=data, output=str(out), calibration_rows=4, batch_size=4,
                lr=1e-2, epochs=1, logging_steps=1, save_steps=0, warmup_ratio=0.0, lora_r=8, lora_alpha=16,
                lora_dropout=0.0, lora_targets="all-linear", precision="fp32", report_to="none")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def recipe(tiny_model, tmp_path_factory):
    """A set-up fp32 L+R recipe with the two-task loss (its dataset holds `segments`)."""
    from conftest import write_rows

    folder = tmp_path_factory.mktemp("packing")
    r = SFTRecipe(_config(tiny_model, str(write_rows(folder / "rows.csv")), folder / "run", label_weight=0.3))
    r.setup()
    return r


def _loss_and_grads(recipe, batch, label_weight):
    trainer, model = recipe.hf_trainer, recipe.model
    trainer.label_weight = label_weight
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _token_nll(recipe, batch):
    from reasonalign.scoring import label_logits

    with torch.no_grad():
        logits, targets, _ = label_logits(recipe.model, batch["input_ids"], batch["attention_mask"], batch["labels"],
                                          position_ids=batch.get("position_ids"))
    return torch.nn.functional.cross_entropy(logits, targets, reduction="none")


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("label_weight", [None, 0.3])
def test_packed_and_budget_batches_give_the_plain_batch_losses_and_gradients(recipe, attention, label_weight):
    recipe.model.set_attn_implementation(attention)
    examples, pad = recipe.dataset[:5], recipe.tokenizer.pad_token_id
    plain = Collator(pad)(examples)
    packed = PackedCollator(pad)(examples)
    budget = Collator(pad, SHAPE_MULTIPLE)(examples)
    total = sum(len(e["input_ids"]) for e in examples)
    assert packed["input_ids"].shape == (1, -(-total // SHAPE_MULTIPLE) * SHAPE_MULTIPLE)
    assert budget["input_ids"].shape[1] % SHAPE_MULTIPLE == 0 and int(packed["attention_mask"].sum()) == total
    # every answer token's loss, in the same order (example by example)
    reference = _token_nll(recipe, plain)
    for other in (packed, budget):
        torch.testing.assert_close(_token_nll(recipe, other), reference, rtol=1e-5, atol=1e-5)
    loss, grads = _loss_and_grads(recipe, plain, label_weight)
    for other in (packed, budget):
        other_loss, other_grads = _loss_and_grads(recipe, other, label_weight)
        torch.testing.assert_close(other_loss, loss, rtol=1e-5, atol=1e-6)
        for name, grad in grads.items():
            torch.testing.assert_close(other_grads[name], grad, rtol=1e-4, atol=1e-6)
    # the check can fail: positions that do not restart let each example attend to the ones before it
    crossing = {**packed, "position_ids": torch.arange(packed["input_ids"].shape[1])[None]}
    assert (_token_nll(recipe, crossing) - reference).abs().max() > 1e-3


def test_token_batches_fill_the_budget_and_take_every_example_once():
    lengths = [150, 30, 64, 65, 200, 10, 128, 90, 33, 47]
    for pack in (False, True):
        batches = token_batches(lengths, 256, pack=pack)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            cost = (sum(lengths[i] for i in b) if pack else len(b) * max(lengths[i] for i in b))
            assert -(-cost // 64) * 64 <= 256
    assert len(token_batches(lengths, 256, pack=True)) < len(token_batches(lengths, 256, pack=False))
    assert token_batches([64, 64, 64, 64], 256, pack=False) == [[0, 1, 2, 3]]  # exactly full
    with pytest.raises(UserError, match=r"--batch-tokens 128: smaller than the longest example \(200 tokens"):
        token_batches(lengths, 128, pack=True)


def test_a_packed_run_trains_on_every_token_of_a_plain_run_and_reports_steady_tokens_per_s(tiny_model, tmp_path):
    from conftest import write_rows

    data = str(write_rows(tmp_path / "rows.csv"))
    plain = train(_config(tiny_model, data, tmp_path / "plain"))
    packed = train(_config(tiny_model, data, tmp_path / "packed", batch_tokens=512, pack=True, label_weight=0.5))
    budget = train(_config(tiny_model, data, tmp_path / "budget", batch_tokens=256))
    # one epoch each: every real token once, in fewer (fuller) steps than 5 plain batches of 4
    assert packed["real_tokens"] == budget["real_tokens"] == plain["real_tokens"]
    assert packed["steps"] < plain["steps"] == 5
    for summary in (plain, packed, budget):
        assert summary["tokens_per_s"] > 0 and summary["warmup_steps"] >= 1
        assert summary["steady_tokens_per_s"] > 0
    assert packed["config"]["pack"] is True and packed["config"]["batch_tokens"] == 512


@pytest.mark.parametrize("kw, message", [({"pack": True}, "--pack puts a token-budget batch in one row: it needs "
                                                          "--batch-tokens N"),
                                         ({"batch_tokens": 32}, "--batch-tokens 32: smaller than the longest")])
def test_bad_token_budgets_are_one_line_errors(tiny_model, tmp_path, kw, message):
    from conftest import write_rows

    with pytest.raises(UserError, match=message):
        train(_config(tiny_model, str(write_rows(tmp_path / "rows.csv")), tmp_path / "run", **kw))
    assert not (tmp_path / "run" / "adapter_config.json").exists()


def test_the_frozen_base_loads_in_the_compute_dtype_on_a_gpu_only(tiny_model):
    """On a GPU the base is read straight into bf16/fp16 (never fp32 then cast); peft keeps LoRA in fp32 there,
    which is what fp16's gradient scaler and bf16's optimizer need."""
    import peft

    from reasonalign.models import load_model

    assert base_dtype("cuda:0", "bf16", False) is torch.bfloat16 and base_dtype("cuda", "fp16", False) is torch.float16
    assert base_dtype("cuda:0", "fp32", False) is None and base_dtype("cuda:0", "bf16", True) is None
    assert base_dtype("cpu", "bf16", False) is None  # CPU: fp32 load, frozen Linears cast afterwards (unchanged)
    model = peft.get_peft_model(load_model(tiny_model, dtype=torch.bfloat16, device="cpu"),
                                peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert {d for n, d in dtypes.items() if "lora_" in n} == {torch.float32}
    assert {d for n, d in dtypes.items() if "lora_" not in n} == {torch.bfloat16}
