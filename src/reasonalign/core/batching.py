"""Tokenised examples and padded batches with exact answer masks.

Prompt and answer are tokenised separately and concatenated, so the boundary of the answer
is exact whatever the tokenizer does. Position 0 is never a target (nothing predicts it), so
its label is always -100: then the count of label tokens the Trainer hands to `compute_loss`
equals the number of predicted tokens.

With `label_text` (the answer's first words, " unethical"), each position also gets a segment:
LABEL for the answer tokens that spell it, REASON for the rest of the answer (EOS included),
0 elsewhere, so a loss can weigh the label and the reason as two tasks.
"""

import torch

from reasonalign.core.errors import UserError

IGNORE = -100
LABEL, REASON = 1, 2  # segments of an answer


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
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if "segments" in features[0]:
            batch["segments"] = torch.zeros((len(features), width), dtype=torch.long)
            for i, f in enumerate(features):
                batch["segments"][i, :len(f["segments"])] = torch.tensor(f["segments"])
        return batch
