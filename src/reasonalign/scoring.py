"""Log-likelihood of answer tokens, computed only where there is an answer.

Training (cross-entropy on the answer), classification (log-likelihood of each label) and
alignment (score of each sampled response) all need the same thing: logits at the positions
that predict a label token. Projecting only those positions onto the vocabulary skips the
largest matrix product of a small model (SmolLM2: 576 x 49,152) for prompt and padding.
"""

import torch
import torch.nn.functional as F

from reasonalign.train.batching import IGNORE


def _parts(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base, base.get_decoder(), base.get_output_embeddings()


def _hidden(decoder, input_ids, attention_mask, shared_prefix: int):
    """Last hidden states. When every row starts with the same `shared_prefix` tokens (an
    instruction every prompt repeats), that prefix runs once and its KV cache is shared:
    the same numbers for less compute. Only for inference (no gradients through the cache)."""
    if shared_prefix < 1 or input_ids.shape[0] == 1:
        return decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    prefix = decoder(input_ids=input_ids[:1, :shared_prefix], use_cache=True)
    cache = prefix.past_key_values
    cache.batch_repeat_interleave(input_ids.shape[0])
    rest = decoder(input_ids=input_ids[:, shared_prefix:], attention_mask=attention_mask, past_key_values=cache,
                   use_cache=True).last_hidden_state
    return torch.cat([prefix.last_hidden_state.expand(input_ids.shape[0], -1, -1), rest], dim=1)


def label_logits(model, input_ids, attention_mask, labels, shared_prefix: int = 0):
    """(logits [M, V] in fp32, targets [M], keep [B, T-1]) for the M label positions."""
    base, decoder, head = _parts(model)
    hidden = _hidden(decoder, input_ids, attention_mask, shared_prefix)
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:  # Gemma-style soft-capping, as the model's own forward would apply it
        logits = torch.tanh(logits / cap) * cap
    return logits, targets[keep], keep


def answer_logprobs(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: summed log-prob of its label tokens, and how many there are."""
    logits, targets, keep = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    token_logp = -F.cross_entropy(logits, targets, reduction="none")
    rows = keep.nonzero()[:, 0]
    sums = torch.zeros(keep.shape[0], dtype=token_logp.dtype, device=token_logp.device)
    return sums.index_add(0, rows, token_logp), keep.sum(1)


def group_scores(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(scores, summed log-probs, token counts), each [G, K], for a batch from `GroupCollator`.

    The score of a response c is its length-normalised log-likelihood (1/|c|) Σ_j log P(c_j | c_<j, q)
    over its answer tokens (EOS included): one batched forward over the flat sequences, then
    scattered into the [G, K] slots of ``batch["mask"]``; padding slots hold 0. The trainer and
    `eval --task ranking` both call this, so training and evaluation score alike.
    """
    logps, counts = answer_logprobs(model, batch)
    mask = batch["mask"]
    summed = logps.new_zeros(mask.shape).masked_scatter(mask, logps)
    lengths = counts.new_zeros(mask.shape).masked_scatter(mask, counts)
    return summed / lengths.clamp(min=1).to(summed.dtype), summed, lengths
