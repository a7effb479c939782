"""`reasonalign eval --task labels`: classification accuracy of a model (optionally with an adapter).

`--scoring loglik` compares log P(" ethical") and log P(" unethical") after the prompt
(`scoring.score_labels`), with the decision threshold from the adapter's run record (fitted on
held-out training rows), `--calibrate-on TRAIN_DATA` or `--calibration FILE`; `--scoring
generate` generates and parses the verdict. Writes metrics.json and predictions.jsonl.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from reasonalign.core.config import to_dict
from reasonalign.core.errors import UserError
from reasonalign.core.distributed import is_main
from reasonalign.core.files import write_jsonl, write_text
from reasonalign.core.run_record import RunRecord, read_run
from reasonalign.data import load, split_off
from reasonalign.core.verdict import parse_verdict
from reasonalign.eval.config import EvalConfig
from reasonalign.tasks import TASKS


def _threshold(config: EvalConfig, dataset, fit, record: RunRecord | None) -> tuple[float, str]:
    """The decision threshold on log P(unethical) - log P(ethical), and where it came from (`record`: the
    adapter's run record)."""
    if config.calibrate_on:
        source = load(config.calibrate_on)
        _, rows = split_off(source.examples, min(config.calibration_rows, len(source)), config.seed)
        if source.sha256 == dataset.sha256 and {e.row for e in rows} & {e.row for e in dataset.examples}:
            raise UserError(f"{config.calibrate_on}: shares rows with the evaluation data; calibrate on training "
                            f"data only")
        return fit(rows), f"fitted on {len(rows)} rows of {config.calibrate_on}"
    if config.calibration == "none":
        return 0.0, "none (threshold 0)"
    if config.calibration == "auto":
        if record and record.calibration:  # fitted by `train`, saved as the file the record names
            return float(record.calibration["threshold"]), str(Path(config.adapter) / record.calibration["file"])
        return 0.0, "none (threshold 0)"
    path = Path(config.calibration)
    if not path.is_file():
        raise UserError(f"{path}: calibration file not found")
    try:
        return float(json.loads(path.read_text())["threshold"]), str(path)
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a calibration file (needs a numeric 'threshold')") from None


MAX_STATEMENT_WORDS = 512  # DFAR's longest statement has 64 words; a 20,000-word one took minutes to score


def bounded(example):
    """The example with its statement cut to MAX_STATEMENT_WORDS words: the prompt stays bounded, and
    the answer (label continuation or generated verdict) comes after it, never cut."""
    words = example.statement.split()
    if len(words) <= MAX_STATEMENT_WORDS:
        return example
    return dataclasses.replace(example, statement=" ".join(words[:MAX_STATEMENT_WORDS]))


def prompts_for(task, template, examples, method: str, tokenizer) -> list[str]:
    cut = sum(len(ex.statement.split()) > MAX_STATEMENT_WORDS for ex in examples)
    if cut:
        print(f"warning: {cut} statement(s) longer than {MAX_STATEMENT_WORDS} words cut to their first "
              f"{MAX_STATEMENT_WORDS} for the prompt", file=sys.stderr)
    return [task.prompt(bounded(ex), template, method, tokenizer) for ex in examples]


def score_examples(model, tokenizer, template, examples, method: str, batch_size: int = 32,
                   progress: bool = True) -> np.ndarray:
    """[N, 2] log P(" ethical"), log P(" unethical") after each statement's prompt."""
    from reasonalign.scoring import score_labels  # heavy: see evaluate

    task = TASKS["dfar"]
    return score_labels(model, tokenizer, prompts_for(task, template, examples, method, tokenizer),
                        template.label_continuations(), add_special_tokens=task.add_special_tokens(template),
                        batch_size=batch_size, progress=progress)


def generate_answers(model, tokenizer, template, examples, method: str, *, max_new_tokens: int = 16,
                     batch_size: int = 16, progress: bool = True, **sampling) -> list[str]:
    """Greedy (or sampled: `temperature`, `top_p`, `seed`) continuation of each statement's prompt."""
    from reasonalign.core.generation import generate_texts  # heavy: see evaluate

    task = TASKS["dfar"]
    return generate_texts(model, tokenizer, prompts_for(task, template, examples, method, tokenizer),
                          add_special_tokens=task.add_special_tokens(template), max_new_tokens=max_new_tokens,
                          batch_size=batch_size, progress=progress, **sampling)


def parse_predictions(texts: list[str]) -> np.ndarray:
    from reasonalign.core.stats import UNPARSEABLE  # heavy (scipy, sklearn): see evaluate

    return np.array([UNPARSEABLE if (v := parse_verdict(t)) is None else v for t in texts])


def evaluate(config: EvalConfig, model=None, tokenizer=None) -> dict:
    # heavy (torch, transformers, scipy, sklearn): imported when the command runs, not when the CLI
    # imports this module for EvalConfig, so `reasonalign --help` starts in a fraction of a second
    from reasonalign.core.precision import autocast, model_device, resolve
    from reasonalign.core.stats import classification_metrics
    from reasonalign.models import default_device, load_model, load_tokenizer
    from reasonalign.prompts import get_template
    from reasonalign.scoring import fit_threshold, predict_from_scores

    record = read_run(config.adapter)  # once: prompt format, threshold and model loading all need it
    template = get_template(config.template_name(record))
    method = config.method_name(config.method, record)
    task, dataset, examples = config.load_rows(config.seed)
    device = model_device(model) if model is not None else default_device()
    precision = resolve(config.precision, device)
    if tokenizer is None:
        tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if model is None:
        model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code, record=record)

    def score(rows):
        with autocast(precision, device):
            return score_examples(model, tokenizer, template, rows, method, config.batch_size)

    started = time.time()
    gold = np.array([ex.label for ex in examples])
    extra: dict = {}
    if config.scoring == "loglik":
        def fit(rows):
            return fit_threshold(score(rows), [ex.label for ex in rows])

        threshold, source = _threshold(config, dataset, fit, record)
        scores = score(examples)
        pred = predict_from_scores(scores, threshold)
        per_item = [{"logp_ethical": float(s[0]), "logp_unethical": float(s[1])} for s in scores]
        extra = {"threshold": threshold, "threshold_source": source,
                 "accuracy_threshold_0": float((predict_from_scores(scores, 0.0) == gold).mean())}
    else:
        with autocast(precision, device):
            texts = generate_answers(model, tokenizer, template, examples, method,
                                     max_new_tokens=config.max_new_tokens, batch_size=config.batch_size)
        pred = parse_predictions(texts)
        per_item = [{"output": t} for t in texts]
    seconds = time.time() - started

    metrics = classification_metrics(gold, pred, seed=config.seed)
    metrics["splits"] = task.split_metrics(dataset.name, examples, gold, pred, config.seed)
    metrics.update(extra, data=dataset.name, data_sha256=dataset.sha256, model=config.model, adapter=config.adapter,
                   template=template.name, method=method, scoring=config.scoring, precision=precision,
                   seconds=round(seconds, 1),
                   seed=config.seed, config=to_dict(config))
    if not is_main():  # under a launcher every process has all results; one writes them
        return metrics
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "predictions.jsonl", [
        {"row": ex.row, "statement": ex.statement, "gold": int(ex.label), "pred": int(p),
         "correct": bool(p == ex.label), **item} for ex, p, item in zip(examples, pred, per_item)])
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))  # last: it marks the evaluation finished
    return metrics


def headline(m: dict, config: EvalConfig) -> str:
    lo, hi = m["ci95"]
    clean = m["splits"].get("dfar:test-clean") if m["data"] != "dfar:test-clean" else None
    side = f"; clean split {clean['accuracy']:.1%} (n={clean['n']})" if clean else ""
    return (f"accuracy {m['accuracy']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['n']}, seed {m['seed']}){side} "
            f"in {m['seconds']} s -> {config.output}/metrics.json")
