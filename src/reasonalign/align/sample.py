"""`reasonalign sample`: k responses per prompt, each graded by the task's checker -> groups.jsonl.

Alignment fine-tuning (docs/methods.md §2) contrasts a model's own correct responses (G_P) with its
incorrect ones (G_N) to the same prompt. This module makes those groups; the alignment trainer
reads them. One JSON object per line (the trainer reads exactly these keys):

    {"id": "gsm8k:train:17", "task": "gsm8k" | "aqua" | "dfar", "prompt": "<exact prompt text>",
     "add_special_tokens": true, "gold": "72",
     "responses": [{"text": "<continuation, no EOS>", "correct": true, "rank": 0, "copies": 1}, ...],
     "n_positive": 1, "n_negative": 3, "seed": 0}

- `prompt` is the text the model saw; tokenise it with `add_special_tokens` (cot: true, as in
  training; DFAR chat templates: false, the chat template already holds them).
- `correct`: the task's checker (`reasonalign.tasks`): GSM8K/AQuA final answer; DFAR: `parse_verdict(text)`
  equals the gold label. `gold` is the answer (number, option letter, or "ethical"/"unethical").
- Identical responses are kept once, in first-drawn order; `copies` says how often each was drawn.
- `rank` (lower = better): with `--scorer none` 0 for correct, 1 for incorrect (binary
  feedback); with `--scorer length` correct responses are ranked by length, shortest first
  (0, 1, ...; equal lengths share a rank) and every incorrect one ranks after them all; with
  `--scorer steps` (arith data) by (answer right, gold intermediate results reached), best first; with
  `--scorer reason` (DFAR) label-correct responses by their reason's similarity to the human reason.
- Groups with no correct or no incorrect response are kept (the trainer decides what to do
  with them) and counted in sample_summary.json.

Train and held-out groups from disjoint rows: both runs use the same seed; the held-out run takes
`--rows M`, the training run `--rows N --skip-rows M` (it leaves out exactly the M rows the
other run took) and writes into another folder.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from reasonalign.align.config import SampleConfig
from reasonalign.core.config import to_dict
from reasonalign.core.errors import UserError
from reasonalign.core.distributed import is_main
from reasonalign.core.files import write_jsonl, write_text
from reasonalign.core.run_record import prompt_format, read_run
from reasonalign.core.verdict import split_reason
from reasonalign.data.arith import chain_score
from reasonalign.prompts import get_template
from reasonalign.tasks import TASKS, check, task_for


@dataclass
class Item:
    """One prompt to sample for: what the model sees and how to grade what it writes."""

    id: str
    task: str
    prompt: str
    add_special_tokens: bool
    gold: str
    chain: tuple[int, ...] = ()  # arith: the gold intermediate results, for --scorer steps
    gold_reason: str | None = None  # DFAR: the human reason, for --scorer reason


def make_group(item: Item, texts: list[str], seed: int, scorer: str = "none") -> dict:
    """The groups.jsonl record for one prompt and its sampled `texts` (deduplicated, graded, ranked)."""
    copies: dict[str, int] = {}
    for text in texts:  # dicts keep first-seen order
        copies[text] = copies.get(text, 0) + 1
    responses = [{"text": t, "correct": check(item.task, t, item.gold), "rank": 1, "copies": c}
                 for t, c in copies.items()]
    good = [r for r in responses if r["correct"]]
    if scorer == "steps":  # GSM8K-RANK-like: (right answer, gold intermediate results reached), best first
        dense_ranks(responses, lambda r: (r["correct"], chain_score(r["text"], list(item.chain))))
    elif scorer == "length":  # shorter right answers first
        dense_ranks(responses, lambda r: -len(r["text"]) if r["correct"] else None)
    else:
        for r in good:
            r["rank"] = 0
    return {"id": item.id, "task": item.task, "prompt": item.prompt, "add_special_tokens": item.add_special_tokens,
            "gold": item.gold, "responses": responses, "n_positive": len(good),
            "n_negative": len(responses) - len(good), "seed": seed}


def rank_by_reason(groups: list[dict], items: list[Item], encoder=None) -> None:
    """`--scorer reason` (DFAR): ranking feedback that also counts the reason. AFT on DFAR rewards only the
    label, so reasons drift; here label-correct responses are ranked by the MiniLM cosine of their reason with
    the human reason (the reference judge's similarity; `reason_similarity` in the record), best first, and
    every label-wrong response ranks after them all."""
    from reasonalign.judges.reference import embed, load_minilm  # heavy (sentence-transformers)

    good = [(r, item) for g, item in zip(groups, items) for r in g["responses"] if r["correct"]]
    if good:
        vecs = embed(encoder or load_minilm(), [split_reason(r["text"]) or "." for r, _ in good]
                     + [item.gold_reason for _, item in good])
        for (r, _), sim in zip(good, (vecs[: len(good)] * vecs[len(good):]).sum(axis=1)):
            r["reason_similarity"] = round(float(sim), 4)
    for g in groups:
        dense_ranks(g["responses"], lambda r: r["reason_similarity"] if r["correct"] else None)


def dense_ranks(responses: list[dict], key) -> None:
    """Set each response's `rank`: 0 for the largest key, equal keys share a rank, and a response whose key
    is None ranks after all the others."""
    keys = [key(r) for r in responses]
    ladder = sorted({k for k in keys if k is not None}, reverse=True)
    for r, k in zip(responses, keys):
        r["rank"] = len(ladder) if k is None else ladder.index(k)


def summarize(groups: list[dict], k: int) -> dict:
    """Counts for sample_summary.json; positive_share counts every draw (copies), so it is the pass rate."""
    drawn = len(groups) * k
    return {
        "n_groups": len(groups),
        "n_responses": sum(len(g["responses"]) for g in groups),
        "duplicates_removed": sum(r["copies"] - 1 for g in groups for r in g["responses"]),
        "groups_all_positive": sum(g["n_negative"] == 0 for g in groups),
        "groups_all_negative": sum(g["n_positive"] == 0 for g in groups),
        "groups_mixed": sum(g["n_positive"] > 0 and g["n_negative"] > 0 for g in groups),
        "n_positive": sum(g["n_positive"] for g in groups),
        "n_negative": sum(g["n_negative"] for g in groups),
        "positive_share": sum(r["copies"] for g in groups for r in g["responses"] if r["correct"]) / drawn
        if drawn else None,
    }


def _validate(config: SampleConfig) -> tuple[Path, Path]:
    if config.k < 1:
        raise UserError(f"--k {config.k}: must be at least 1")
    if config.temperature < 0 or (config.temperature == 0 and config.k > 1):
        raise UserError(f"--temperature {config.temperature}: must be above 0 to draw {config.k} different "
                        "responses (0 = greedy, only with --k 1)")
    from reasonalign.core.generation import check_decoding  # heavy (torch): see sample

    check_decoding(temperature=config.temperature, top_p=config.top_p, repetition_penalty=config.repetition_penalty,
                   no_repeat_ngram_size=config.no_repeat_ngram_size)
    if config.max_new_tokens < 1 or config.batch_size < 1:
        raise UserError("--max-new-tokens and --batch-size must be at least 1")
    if (config.rows is not None and config.rows < 1) or config.skip_rows < 0:
        raise UserError("--rows must be at least 1 and --skip-rows at least 0")
    out = Path(config.output)
    summary = out.parent / "sample_summary.json"
    if out.exists() and not config.overwrite:
        raise UserError(f"{out}: exists; pass --overwrite to replace it or choose another --output")
    return out, summary


def load_items(config: SampleConfig, tokenizer) -> tuple[list[Item], dict]:
    """The prompts to sample for (one task, one prompt format), and what the summary records about the data."""
    task = task_for(config.data, expect="answers")
    dataset = task.load(config.data)
    chosen = task.rows(dataset.examples, config.rows, config.seed, config.skip_rows)
    info = {"task": task.name, "data": dataset.name, "data_sha256": dataset.sha256, "data_rows": len(dataset)}
    if task.kind == "answers":
        if config.scorer == "steps" and not all(ex.chain for ex in chosen):
            raise UserError(f"--scorer steps: {config.data} has no gold intermediate results (`chain`); it is for "
                            f"arith data (arith:train, data/arith.py)")
        return [Item(f"{config.data}:{ex.row}", task.name, task.prompt(ex), True, task.gold(ex), ex.chain)
                for ex in chosen], info
    template_name, method = prompt_format(read_run(config.adapter), config.template, config.method)
    template = get_template(template_name)
    if method not in ("l", "lr"):
        raise UserError(f"{config.adapter}: trained with method {method!r}; pass --method l or lr for DFAR prompts")
    if config.scorer == "reason" and not all(ex.reason for ex in chosen):
        raise UserError(f"--scorer reason: {config.data} has rows without a human reason to compare with")
    items = [Item(f"{dataset.name}:{ex.row}", task.name, task.prompt(ex, template, method, tokenizer),
                  task.add_special_tokens(template), task.gold(ex), gold_reason=ex.reason) for ex in chosen]
    return items, {**info, "template": template.name, "method": method}


def sample(config: SampleConfig) -> dict:
    """Sample, grade and write groups.jsonl + sample_summary.json; returns the summary."""
    # heavy (torch, transformers): imported when the command runs, so `reasonalign --help` starts fast
    from reasonalign.core.generation import decoding, generate_texts, resolve_cache, throughput
    from reasonalign.core.precision import DTYPES, autocast, model_device, resolve
    from reasonalign.models import default_device, load_model, load_tokenizer

    out, summary_path = _validate(config)
    precision = resolve(config.precision, default_device())  # load_model puts the model on default_device()
    cache = resolve_cache(config.kv_cache, default_device())
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    items, data_info = load_items(config, tokenizer)
    # the static cache needs one dtype throughout (core.generation): the model in the compute dtype
    dtype = DTYPES.get(precision) if cache == "static" else None
    model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code, dtype=dtype)

    started = time.time()
    with autocast(precision, model_device(model)):
        texts = generate_texts(model, tokenizer, [item.prompt for item in items],
                               add_special_tokens=items[0].add_special_tokens,  # one task and template per run
                               max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                               num_return_sequences=config.k, temperature=config.temperature, top_p=config.top_p,
                               repetition_penalty=config.repetition_penalty,
                               no_repeat_ngram_size=config.no_repeat_ngram_size,
                               stop=TASKS[data_info["task"]].stop, seed=config.seed, cache=cache)
    speed = throughput(tokenizer, texts, time.time() - started)
    k = config.k
    groups = [make_group(item, texts[n * k:(n + 1) * k], config.seed, config.scorer) for n, item in enumerate(items)]
    if config.scorer == "reason":
        rank_by_reason(groups, items)
    seconds = time.time() - started

    summary = {**summarize(groups, config.k), "k": config.k, **data_info, "model": config.model,
               "adapter": config.adapter, "seed": config.seed, "seconds": round(seconds, 1), **speed,
               "decoding": decoding(config.temperature, config.top_p, config.repetition_penalty,
                                    config.no_repeat_ngram_size, config.max_new_tokens),
               "precision": precision, "kv_cache": cache, "groups_file": str(out), "config": to_dict(config)}
    if not is_main():  # under a launcher every process has all groups; one writes them
        return summary
    write_jsonl(out, groups)  # atomic: never a half-written groups file
    write_text(summary_path, json.dumps(summary, indent=2))
    return summary
