"""Log-likelihood of answer tokens, computed only where there is an answer.

Training (cross-entropy on the answer), classification (log-likelihood of each label) and
alignment (score of each sampled response) all need the same thing: logits at the positions
that predict an answer token. Projecting only those positions onto the vocabulary skips the
largest matrix product of a small model (SmolLM2: 576 x 49,152) for prompt and padding.

That fast path calls the decoder and the output head by hand, so it would silently miss any
logit scaling a model's own forward applies (Cohere's `logit_scale`, Granite's divisor, ...).
It is therefore checked once per model against `model(...).logits` on a probe input; a model
whose own forward differs is scored through that forward instead (`logits_to_keep` limits the
projection to the answer positions), so the numbers are always the model's own.
"""

import weakref

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from reasonalign.core.batching import IGNORE, Collator
from reasonalign.core.distributed import is_main, map_chunks
from reasonalign.data.groups import GroupCollator, batches
from reasonalign.losses import ordering_stats, pairs_from_ranks

# base model -> whether decoder + head (+ Gemma soft-capping) reproduce its own logits
_FAST_PATH_OK: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
PROBE_IDS = [1, 17, 230, 1024, 77, 5, 912, 42]


def _parts(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base, base.get_decoder(), base.get_output_embeddings()


def _head(base, head, hidden):
    logits = head(hidden).float()
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:  # Gemma-style soft-capping, as the model's own forward applies it
        logits = torch.tanh(logits / cap) * cap
    return logits


@torch.no_grad()
def fast_path_ok(model) -> bool:
    """Whether decoder + head reproduce `model(...).logits` (checked once per model, eval mode)."""
    base, decoder, head = _parts(model)
    if base not in _FAST_PATH_OK:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        ids = torch.tensor([[i % base.config.vocab_size for i in PROBE_IDS]], device=device)
        # both sides in the caller's precision, through the class's forward: not an instance forward
        # a trainer may have wrapped in its own autocast, so a precision difference is never
        # mistaken for a different computation
        own = type(model).forward(model, input_ids=ids).logits.float()
        fast = _head(base, head, decoder(input_ids=ids).last_hidden_state)
        model.train(was_training)
        scale = own.abs().max().clamp(min=1.0)
        _FAST_PATH_OK[base] = own.shape == fast.shape and bool(((own - fast).abs().max() / scale) < 1e-4)
    return _FAST_PATH_OK[base]


def _hidden(decoder, input_ids, attention_mask, shared_prefix: int, position_ids=None):
    """Last hidden states. When every row starts with the same `shared_prefix` tokens (an
    instruction every prompt repeats), that prefix runs once and its KV cache is shared:
    the same numbers for less compute. Only for inference (no gradients through the cache).
    `position_ids` (packed rows, `core.batching.PackedCollator`): no attention mask and no cache,
    so that transformers masks attention block-diagonally from the restarting positions."""
    if position_ids is not None:
        return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state
    if shared_prefix < 1 or input_ids.shape[0] == 1:
        return decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    prefix = decoder(input_ids=input_ids[:1, :shared_prefix], use_cache=True)
    cache = prefix.past_key_values
    cache.batch_repeat_interleave(input_ids.shape[0])
    rest = decoder(input_ids=input_ids[:, shared_prefix:], attention_mask=attention_mask, past_key_values=cache,
                   use_cache=True).last_hidden_state
    return torch.cat([prefix.last_hidden_state.expand(input_ids.shape[0], -1, -1), rest], dim=1)


def label_logits(model, input_ids, attention_mask, labels, shared_prefix: int = 0, position_ids=None):
    """(logits [M, V] in fp32, targets [M], keep [B, T-1]) for the M label positions.

    `position_ids`: packed rows (`core.batching.PackedCollator`), attention kept inside each example.
    A model wrapped for distributed training (DDP, FSDP, DeepSpeed: the wrapped model is
    `.module`) is called through its wrapper, whose forward sets up the gradient sync."""
    inner = getattr(model, "module", None)
    if inner is None:
        return _label_logits(model, input_ids, attention_mask, labels, shared_prefix, position_ids)
    saved = inner.__dict__.get("forward")  # accelerate may have put its own forward on the instance
    inner.forward = lambda *args: _label_logits(inner, *args)
    try:
        return model(input_ids, attention_mask, labels, shared_prefix, position_ids)
    finally:
        if saved is None:
            del inner.forward
        else:
            inner.forward = saved


def _label_logits(model, input_ids, attention_mask, labels, shared_prefix: int, position_ids=None):
    targets = labels[:, 1:]
    keep = targets != IGNORE
    if fast_path_ok(model):
        base, decoder, head = _parts(model)
        hidden = _hidden(decoder, input_ids, attention_mask, shared_prefix, position_ids)
        return _head(base, head, hidden[:, :-1][keep]), targets[keep], keep
    # the model's own forward, projecting only the positions where some row has a label
    positions = keep.any(0).nonzero()[:, 0]
    rows = dict(attention_mask=attention_mask) if position_ids is None else dict(position_ids=position_ids,
                                                                                  use_cache=False)
    logits = model(input_ids=input_ids, logits_to_keep=positions, **rows).logits
    return logits[keep[:, positions]].float(), targets[keep], keep


def answer_logprobs(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: summed log-prob of its label tokens, and how many there are."""
    logits, targets, keep = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    token_logp = -F.cross_entropy(logits, targets, reduction="none")
    rows = keep.nonzero()[:, 0]
    sums = torch.zeros(keep.shape[0], dtype=token_logp.dtype, device=token_logp.device)
    return sums.index_add(0, rows, token_logp), keep.sum(1)


# ---------------------------------------------------------------- labels (classification)


def _shared_prefix(sequences: list[list[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least its last token to score from."""
    shortest = min(len(s) for s in sequences) - 1
    first = sequences[0]
    n = next((i for i in range(shortest) if any(s[i] != first[i] for s in sequences)), shortest)
    return n if n >= 8 else 0  # a short prefix is not worth a second forward pass


@torch.no_grad()
def score_labels(model, tokenizer, prompts: list[str], continuations: list[str], *, add_special_tokens: bool,
                 batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """[N, C] log P(continuation | prompt) for every prompt and each label continuation, batched.

    Log-likelihood scoring is what lm-evaluation-harness does for multiple choice."""
    model.eval()
    device = next(model.parameters()).device
    collate = Collator(tokenizer.pad_token_id)
    conts = [tokenizer(c, add_special_tokens=False).input_ids for c in continuations]
    ids = [tokenizer(p, add_special_tokens=add_special_tokens).input_ids for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding per batch
    out = np.zeros((len(ids), len(conts)))
    single_token = all(len(c) == 1 for c in conts)
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def run(chunk: list[int]) -> np.ndarray:
        if single_token:  # one pass per prompt: the next-token distribution holds every label
            feats = [{"input_ids": ids[i] + conts[0], "labels": [IGNORE] * len(ids[i]) + conts[0]} for i in chunk]
            batch = {k: v.to(device) for k, v in collate(feats).items()}
            logits, _, _ = label_logits(model, **batch, shared_prefix=_shared_prefix([ids[i] for i in chunk]))
            return torch.log_softmax(logits, -1)[:, [c[0] for c in conts]].float().cpu().numpy()
        # general case: one sequence per (prompt, continuation)
        feats = [{"input_ids": ids[i] + c, "labels": [IGNORE] * len(ids[i]) + c} for i in chunk for c in conts]
        batch = {k: v.to(device) for k, v in collate(feats).items()}
        sums, _ = answer_logprobs(model, batch)
        return sums.view(len(chunk), len(conts)).float().cpu().numpy()

    # batches shared among processes under a launcher (core.distributed), results back in order
    for chunk, scores in zip(chunks, map_chunks(run, tqdm(chunks, desc="scoring", unit="batch",
                                                          disable=not (progress and is_main()), leave=False))):
        out[chunk] = scores
    return out


def predict_from_scores(scores: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Unethical when log P(unethical) - log P(ethical) exceeds the threshold."""
    return ((scores[:, 1] - scores[:, 0]) > threshold).astype(int)


def fit_threshold(scores: np.ndarray, labels) -> float:
    """The log-odds threshold with the best accuracy on (training) rows; ties go nearest to 0.

    A small model's raw scores carry a strong label prior (the untuned SmolLM2 says "ethical"
    to everything); fitting the threshold on *training* rows is the label-prior calibration
    the naive recipe lacks. The test split is never used to fit it."""
    margins = np.sort(scores[:, 1] - scores[:, 0])
    candidates = np.concatenate([[margins[0] - 1.0], (margins[:-1] + margins[1:]) / 2, [margins[-1] + 1.0]])
    labels = np.asarray(labels)
    accuracy = [(predict_from_scores(scores, t) == labels).mean() for t in candidates]
    best = max(accuracy)
    return float(min((t for t, a in zip(candidates, accuracy) if a == best), key=abs))


# ---------------------------------------------------------------- groups (alignment)


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


@torch.no_grad()
def score_groups(model, encoded: list[dict], pad_id: int, max_sequences: int = 32) -> list[list[float]]:
    """Length-normalised log-likelihood of every response of every group (inference, model.eval())."""
    was_training = model.training
    model.eval()
    collate, out = GroupCollator(pad_id), []
    device = next(model.parameters()).device

    def run(chunk: list[dict]) -> list[list[float]]:
        batch = {k: v.to(device) for k, v in collate(chunk).items()}
        scores = group_scores(model, batch)[0].float().cpu()
        return [scores[i, :len(g["input_ids"])].tolist() for i, g in enumerate(chunk)]

    for found in map_chunks(run, list(batches(encoded, max_sequences))):  # shared among processes, in order
        out += found
    model.train(was_training)
    return out


def ordering(scores: list[list[float]], rank: list[list[int]]) -> dict:
    """`losses.ordering_stats` over whole lists of groups (scores and ranks per group)."""
    k = max(len(s) for s in scores)
    s = torch.zeros(len(scores), k, dtype=torch.float64)
    r = torch.zeros(len(scores), k, dtype=torch.long)
    mask = torch.zeros(len(scores), k, dtype=torch.bool)
    for i, (si, ri) in enumerate(zip(scores, rank)):
        s[i, :len(si)], r[i, :len(ri)], mask[i, :len(si)] = torch.tensor(si, dtype=torch.float64), torch.tensor(ri), True
    return ordering_stats(s, pairs_from_ranks(r, mask), mask)
