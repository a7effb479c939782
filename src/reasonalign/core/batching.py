"""Tokenised examples and padded batches with exact answer masks.

Prompt and answer are tokenised separately and concatenated, so the boundary of the answer
is exact whatever the tokenizer does. Position 0 is never a target (nothing predicts it), so
its label is always -100: then the count of label tokens the Trainer hands to `compute_loss`
equals the number of predicted tokens.
"""

import torch

from reasonalign.core.errors import UserError

IGNORE = -100


def encode(tokenizer, prompt: str, answer: str, *, max_length: int, loss_on: str = "completion",
           where: str = "example", chat: bool = False) -> dict:
    """Token ids and labels for one prompt/answer pair; the answer keeps its EOS token."""
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
    return {"input_ids": ids, "labels": labels, "length": len(ids)}


class Collator:
    """Right-pad a list of encoded examples into tensors (labels padded with -100)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
            if "labels" in f:
                labels[i, :n] = torch.tensor(f["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
