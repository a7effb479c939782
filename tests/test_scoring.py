"""Logits you can trust: scoring equals the model's own forward, also for a model that scales its logits."""

import pytest
import torch

from reasonalign.core.batching import IGNORE, Collator
from reasonalign.scoring import answer_logprobs, fast_path_ok, label_logits


def _cohere(tokenizer_dir, scale: float):
    """A 2-layer random Cohere model: its forward multiplies the logits by `logit_scale`."""
    from transformers import AutoTokenizer, CohereConfig, CohereForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = CohereConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, logit_scale=scale, initializer_range=0.2,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return CohereForCausalLM(config).eval(), tok


def _batch(tok):
    feats = []
    for prompt, answer in [("Is lying wrong? Answer:", " unethical. It hurts trust."), ("Hi", " ethical")]:
        p, a = tok(prompt).input_ids, tok(answer, add_special_tokens=False).input_ids
        feats.append({"input_ids": p + a, "labels": [IGNORE] * len(p) + a})
    return Collator(tok.pad_token_id)(feats)


def test_fast_path_is_used_where_it_equals_the_model(tiny_model):
    from reasonalign.models import load_model, load_tokenizer

    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    assert fast_path_ok(model)
    batch = _batch(tok)
    logits, targets, keep = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        own = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1][keep]
    assert torch.allclose(logits, own, atol=1e-5)


@pytest.mark.parametrize("scale", [0.0625, 4.0])
def test_a_model_that_scales_its_logits_is_scored_by_its_own_forward(tokenizer_dir, scale):
    model, tok = _cohere(tokenizer_dir, scale)
    assert not fast_path_ok(model)  # decoder + head alone would miss the scale
    batch = _batch(tok)
    logits, targets, keep = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        own = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    assert torch.allclose(logits, own[:, :-1][keep], atol=1e-5)
    # hand-computed: summed log-prob of each row's answer tokens from the full forward
    sums, counts = answer_logprobs(model, batch)
    logp = torch.log_softmax(own[:, :-1], -1).gather(-1, batch["labels"][:, 1:].clamp(min=0)[..., None])[..., 0]
    assert torch.allclose(sums, (logp * keep).sum(1), atol=1e-4)
    assert counts.tolist() == keep.sum(1).tolist()


def test_gradients_flow_through_the_fallback(tokenizer_dir):
    model, tok = _cohere(tokenizer_dir, 4.0)
    batch = _batch(tok)
    logits, targets, _ = label_logits(model.train(), batch["input_ids"], batch["attention_mask"], batch["labels"])
    torch.nn.functional.cross_entropy(logits, targets).backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


def test_a_trainer_wrapping_forward_in_autocast_does_not_switch_paths(tiny_model):
    """accelerate wraps an instance's forward in bf16 autocast under `bf16=True`: the check compares the
    computation, not the precision, so the fast path stays on (and training numbers stay the same)."""
    from types import MethodType

    from reasonalign.models import load_model

    model = load_model(tiny_model)
    model.forward = MethodType(torch.autocast("cpu", dtype=torch.bfloat16)(type(model).forward), model)
    assert fast_path_ok(model)
