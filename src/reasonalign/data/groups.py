"""groups.jsonl (written by `reasonalign sample`): reading, checking, tokenising, batching.

One line = one prompt and its sampled responses, each with ``correct`` (bool) and ``rank`` (int,
lower = better). Everything the trainer and `eval --task ranking` need about a group is decided
here, once: its feedback (``ranks``), its positives, and how its responses become tensors.

- feedback ``binary``: rank 0 for correct responses, 1 for the others (``rank`` is not read);
  feedback ``rank``: the file's ``rank``. Equal ranks are ties and form no pair.
- positives (the optional SFT term) are the ``correct`` responses under both feedbacks.
- ``copies`` (how many identical samples a response stands for) is ignored: each distinct
  response counts once, so a response the model repeats is not weighted up.
"""

import random

import torch

from reasonalign.core.errors import UserError, at
from reasonalign.core.files import read_jsonl
from reasonalign.core.batching import Collator, encode

FEEDBACK = ["binary", "rank"]


def read_groups(path: str) -> list[dict]:
    """Checked groups, each with its file row (``row``); any problem is one `file:row: ...` error."""
    groups = [_check(g, path, row) for row, g in read_jsonl(path)]
    if not groups:
        raise at(path, None, "holds no groups")
    return groups


def _check(g, path: str, row: int) -> dict:
    if not isinstance(g, dict):
        raise at(path, row, "a group must be a JSON object")
    if not isinstance(g.get("prompt"), str) or not g["prompt"]:
        raise at(path, row, "'prompt' must be a non-empty string")
    if not isinstance(g.get("add_special_tokens", True), bool):
        raise at(path, row, "'add_special_tokens' must be true or false")
    responses = g.get("responses")
    if not isinstance(responses, list) or not responses:
        raise at(path, row, "the group has no responses")
    for i, r in enumerate(responses):
        if not isinstance(r, dict) or not isinstance(r.get("text"), str):
            raise at(path, row, f"responses[{i}] needs a 'text' string")
        if not isinstance(r.get("rank"), int) or isinstance(r["rank"], bool):
            raise at(path, row, f"responses[{i}].rank must be an integer, got {r.get('rank')!r}")
        if not isinstance(r.get("correct"), bool):
            raise at(path, row, f"responses[{i}].correct must be true or false, got {r.get('correct')!r}")
    return {**g, "id": str(g.get("id", f"{path}:{row}")), "row": row, "path": str(path)}


def ranks(group: dict, feedback: str) -> list[int]:
    """The feedback as ranks (lower = better): binary = 0 correct / 1 incorrect, rank = the file's."""
    if feedback == "binary":
        return [0 if r["correct"] else 1 for r in group["responses"]]
    return [r["rank"] for r in group["responses"]]


def has_pair(group: dict, feedback: str) -> bool:
    return len(set(ranks(group, feedback))) > 1


def cap(group: dict, k: int | None, feedback: str, seed: int) -> dict:
    """At most k responses, taken round-robin over rank levels (random within a level, by seed), so a
    capped group keeps both better and worse responses whenever it had them."""
    responses = group["responses"]
    if not k or len(responses) <= k:
        return group
    rng = random.Random(f"{seed}:{group['id']}")
    levels: dict[int, list] = {}
    for r, rk in zip(responses, ranks(group, feedback)):
        levels.setdefault(rk, []).append(r)
    queues = [rng.sample(v, len(v)) for _, v in sorted(levels.items())]
    kept = []
    while len(kept) < k:
        for q in queues:
            if q and len(kept) < k:
                kept.append(q.pop(0))
    return {**group, "responses": kept}


def encode_group(tokenizer, group: dict, feedback: str, max_length: int) -> dict:
    """Token ids + labels of every response (prompt + response + EOS), with its rank and positivity."""
    where = f"{group['path']}:{group['row']}"
    chat = not group.get("add_special_tokens", True)
    seqs = [encode(tokenizer, group["prompt"], r["text"], max_length=max_length, where=where, chat=chat)
            for r in group["responses"]]
    return {"input_ids": [s["input_ids"] for s in seqs], "labels": [s["labels"] for s in seqs],
            "rank": ranks(group, feedback), "positive": [r["correct"] for r in group["responses"]]}


class GroupCollator:
    """G encoded groups -> their responses flattened and right-padded into one batch of sum(n_g)
    sequences (no compute on padding slots), plus [G, K] ``mask``, ``rank`` and ``positive``
    (K = the largest group; row-major order of ``mask`` = order of the flat sequences)."""

    def __init__(self, pad_id: int):
        self.flat = Collator(pad_id)

    def __call__(self, groups: list[dict]) -> dict:
        k = max(len(g["input_ids"]) for g in groups)
        batch = self.flat([{"input_ids": ids, "labels": lab} for g in groups
                           for ids, lab in zip(g["input_ids"], g["labels"])])
        mask = torch.zeros(len(groups), k, dtype=torch.bool)
        rank = torch.zeros(len(groups), k, dtype=torch.long)
        positive = torch.zeros(len(groups), k, dtype=torch.bool)
        for i, g in enumerate(groups):
            n = len(g["input_ids"])
            mask[i, :n] = True
            rank[i, :n] = torch.tensor(g["rank"])
            positive[i, :n] = torch.tensor(g["positive"])
        return {**batch, "mask": mask, "rank": rank, "positive": positive}


def batches(encoded: list[dict], max_sequences: int):
    """Consecutive groups, as many per batch as fit in `max_sequences` sequences (at least one)."""
    batch, size = [], 0
    for g in encoded:
        n = len(g["input_ids"])
        if batch and size + n > max_sequences:
            yield batch
            batch, size = [], 0
        batch.append(g)
        size += n
    if batch:
        yield batch
