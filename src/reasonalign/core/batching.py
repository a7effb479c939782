"""Tokenised examples and padded batches with exact answer masks.

Prompt and answer are tokenised separately and concatenated, so the boundary of the answer
is exact whatever the tokenizer does. Position 0 is never a target (nothing predicts it), so
its label is always -100: then the count of label tokens the Trainer hands to `compute_loss`
equals the number of predicted tokens.

With `label_text` (the answer's first words, " unethical"), each position also gets a segment:
LABEL for the answer tokens that spell it, REASON for the rest of the answer (EOS included),
0 elsewhere, so a loss can weigh the label and the reason as two tasks.

Token-budget batches (`token_batches`) keep a GPU busy: instead of a fixed number of sequences, a
batch holds as many as fit in a budget of tokens, its width rounded up to a multiple of
`SHAPE_MULTIPLE` so that few distinct shapes (kernels, allocations) occur. `PackedCollator` puts a
batch's examples side by side in one row; `position_ids` restart at 0 for each example, which
transformers' attention mask builder (`masking_utils.find_packed_sequence_indices`, sdpa/eager;
flash-attention's varlen path likewise) turns into a block-diagonal causal mask: no attention
crosses examples. Each example's first label is -100 already, so no token predicts across either.
"""

import torch

from reasonalign.core.errors import UserError

IGNORE = -100
LABEL, REASON = 1, 2  # segments of an answer
SHAPE_MULTIPLE = 64  # token-budget batches are padded to a multiple of this many tokens


def encode(tokenizer, prompt: str, answer: str, *, max_length: int, loss_on: str = "completion",
           where: str = "example", chat: bool = False, label_text: str | None = None) -> dict:
    """Token ids and labels (and, with `label_text`, segments) for one prompt/answer pair; the
    answer keeps its EOS token."""
    prompt_ids = tokenizer(prompt, add_special_tokens=not chat).input_ids
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    ids = (prompt_ids + answer_ids)[:max_length]
    if len(ids) <= len(prompt_ids):
        raise UserError(
            f"{where}: the prompt alone has {len(prompt_ids)} tokens, so max_length={max_length} "
            "leaves no answer token to learn from; raise --max-length"
        )
    if loss_on == "completion":
        labels = [IGNORE] * len(prompt_ids) + ids[len(prompt_ids):]
    else:  # "full": the notebooks' recipe, loss on the prompt too
        labels = list(ids)
    labels[0] = IGNORE
    out = {"input_ids": ids, "labels": labels, "length": len(ids)}
    if label_text is not None:
        if not answer.startswith(label_text):
            raise UserError(f"{where}: the answer does not start with its label text {label_text!r}")
        n = next((n for n in range(1, len(answer_ids)) if len(tokenizer.decode(answer_ids[:n])) >= len(label_text)),
                 len(answer_ids))
        segments = [0] * len(prompt_ids) + [LABEL] * n + [REASON] * (len(answer_ids) - n)
        out["segments"] = segments[:len(ids)]
    return out


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def token_batches(lengths: list[int], budget: int, *, pack: bool, multiple: int = SHAPE_MULTIPLE) -> list[list[int]]:
    """Example indices grouped into batches of at most `budget` tokens, padding included.

    Padded rows (pack=False): longest first, a batch takes examples while rows x its width (rounded up
    to `multiple`) fits. Packed (pack=True): first-fit decreasing, a batch's lengths summed (rounded up).
    Both fill batches with similar lengths; the order of the batches is the Trainer's (seeded) shuffle."""
    longest = max(lengths)
    if padded(longest, multiple) > budget:
        raise UserError(f"--batch-tokens {budget}: smaller than the longest example ({longest} tokens, "
                        f"{padded(longest, multiple)} padded to a multiple of {multiple}); raise it or lower --max-length")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    if not pack:
        batches, width = [[]], 0
        for i in order:
            width = width or padded(lengths[i], multiple)  # the batch's first example is its longest
            if (len(batches[-1]) + 1) * width > budget:
                batches.append([])
                width = padded(lengths[i], multiple)
            batches[-1].append(i)
        return batches
    batches, used = [], []
    for i in order:
        fit = next((b for b, u in enumerate(used) if padded(u + lengths[i], multiple) <= budget), None)
        if fit is None:
            batches.append([i])
            used.append(lengths[i])
        else:
            batches[fit].append(i)
            used[fit] += lengths[i]
    return batches


class Collator:
    """Right-pad a list of encoded examples into tensors (labels padded with -100), the width rounded up
    to a multiple of `multiple` (1: the longest example's)."""

    def __init__(self, pad_id: int, multiple: int = 1):
        self.pad_id, self.multiple = pad_id, multiple

    def __call__(self, features: list[dict]) -> dict:
        width = padded(max(len(f["input_ids"]) for f in features), self.multiple)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
            if "labels" in f:
                labels[i, :n] = torch.tensor(f["labels"])
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if "segments" in features[0]:
            batch["segments"] = torch.zeros((len(features), width), dtype=torch.long)
            for i, f in enumerate(features):
                batch["segments"][i, :len(f["segments"])] = torch.tensor(f["segments"])
        return batch


class PackedCollator:
    """A batch of encoded examples as one row: ids side by side, `position_ids` restarting at 0 for each
    example (attention stays inside it), `example` = each token's example (-1 for padding), the row
    padded to a multiple of `multiple`. `attention_mask` marks the real tokens (for counting); the
    model is called without it, so that transformers builds the block-diagonal mask from `position_ids`."""

    def __init__(self, pad_id: int, multiple: int = SHAPE_MULTIPLE):
        self.pad_id, self.multiple = pad_id, multiple

    def __call__(self, features: list[dict]) -> dict:
        ids = [t for f in features for t in f["input_ids"]]
        width = padded(len(ids), self.multiple)
        pad = width - len(ids)
        positions = [p for f in features for p in range(len(f["input_ids"]))] + list(range(pad))
        example = [n for n, f in enumerate(features) for _ in f["input_ids"]] + [-1] * pad
        batch = {"input_ids": ids + [self.pad_id] * pad, "labels": [t for f in features for t in f["labels"]] + [IGNORE] * pad,
                 "attention_mask": [1] * len(ids) + [0] * pad, "position_ids": positions, "example": example}
        if "segments" in features[0]:
            batch["segments"] = [t for f in features for t in f["segments"]] + [0] * pad
        return {k: torch.tensor([v], dtype=torch.long) for k, v in batch.items()}


class BatchCollator:
    """For a dataset whose items are whole batches (lists of examples, `token_batches`) read one at a time:
    collates the one batch it is handed."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items: list[list[dict]]) -> dict:
        return self.collate(items[0])
