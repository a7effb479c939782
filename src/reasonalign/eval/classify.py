"""Label prediction: log-likelihood of the two label continuations, or generate-and-parse.

Log-likelihood scoring is what lm-evaluation-harness does for multiple choice. A small model's
raw scores carry a strong label prior (the untuned SmolLM2 says "ethical" to everything), so a
decision threshold on the log-odds can be fitted on *training* rows (`fit_threshold`): the
label-prior calibration that the naive recipe lacks. The test split is never used to fit it.
"""

import numpy as np
import torch
from tqdm.auto import tqdm

from reasonalign.eval.metrics import UNPARSEABLE
from reasonalign.generation import generate_texts
from reasonalign.scoring import answer_logprobs, label_logits
from reasonalign.train.batching import IGNORE, Collator
from reasonalign.verdict import parse_verdict


def _prompt_ids(tokenizer, template, examples, method):
    return [tokenizer(template.prompt(ex.statement, method, tokenizer), add_special_tokens=not template.chat).input_ids
            for ex in examples]


def _shared_prefix(sequences: list[list[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least its last token to score from."""
    shortest = min(len(s) for s in sequences) - 1
    first = sequences[0]
    n = next((i for i in range(shortest) if any(s[i] != first[i] for s in sequences)), shortest)
    return n if n >= 8 else 0  # a short prefix is not worth a second forward pass


def _batches(order, size, desc, progress):
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    return tqdm(chunks, desc=desc, unit="batch", disable=not progress, leave=False)


@torch.no_grad()
def score_labels(model, tokenizer, template, examples, method: str, batch_size: int = 32,
                 progress: bool = True) -> np.ndarray:
    """[N, 2] log P(label continuation | prompt) for ethical and unethical, in batched passes."""
    model.eval()
    device = next(model.parameters()).device
    collate = Collator(tokenizer.pad_token_id)
    conts = [tokenizer(c, add_special_tokens=False).input_ids for c in template.label_continuations()]
    prompts = _prompt_ids(tokenizer, template, examples, method)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # little padding per batch
    out = np.zeros((len(prompts), len(conts)))
    single_token = all(len(c) == 1 for c in conts)
    for chunk in _batches(order, batch_size, "scoring", progress):
        if single_token:  # one pass per prompt: the next-token distribution holds every label
            feats = [{"input_ids": prompts[i] + conts[0], "labels": [IGNORE] * len(prompts[i]) + conts[0]}
                     for i in chunk]
            batch = {k: v.to(device) for k, v in collate(feats).items()}
            logits, _, _ = label_logits(model, **batch, shared_prefix=_shared_prefix([prompts[i] for i in chunk]))
            logp = torch.log_softmax(logits, -1)[:, [c[0] for c in conts]]
            out[chunk] = logp.cpu().numpy()
        else:  # general case: one sequence per (prompt, label)
            feats = [{"input_ids": prompts[i] + c, "labels": [IGNORE] * len(prompts[i]) + c}
                     for i in chunk for c in conts]
            batch = {k: v.to(device) for k, v in collate(feats).items()}
            sums, _ = answer_logprobs(model, batch)
            out[chunk] = sums.view(len(chunk), len(conts)).cpu().numpy()
    return out


def predict_from_scores(scores: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Unethical when log P(unethical) - log P(ethical) exceeds the threshold."""
    return ((scores[:, 1] - scores[:, 0]) > threshold).astype(int)


def fit_threshold(scores: np.ndarray, labels) -> float:
    """The log-odds threshold with the best accuracy on (training) rows; ties go nearest to 0."""
    margins = np.sort(scores[:, 1] - scores[:, 0])
    candidates = np.concatenate([[margins[0] - 1.0], (margins[:-1] + margins[1:]) / 2, [margins[-1] + 1.0]])
    labels = np.asarray(labels)
    accuracy = [(predict_from_scores(scores, t) == labels).mean() for t in candidates]
    best = max(accuracy)
    return float(min((t for t, a in zip(candidates, accuracy) if a == best), key=abs))


def generate_answers(model, tokenizer, template, examples, method: str, *, max_new_tokens: int = 16,
                     batch_size: int = 16, progress: bool = True, **sampling) -> list[str]:
    """Greedy (or sampled: `temperature`, `top_p`) continuations of each prompt; see `generate_texts`."""
    prompts = [template.prompt(ex.statement, method, tokenizer) for ex in examples]
    return generate_texts(model, tokenizer, prompts, add_special_tokens=not template.chat,
                          max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress, **sampling)


def parse_predictions(texts: list[str]) -> np.ndarray:
    return np.array([UNPARSEABLE if (v := parse_verdict(t)) is None else v for t in texts])
