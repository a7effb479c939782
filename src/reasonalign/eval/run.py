"""`reasonalign eval` recipe: score a model (optionally with an adapter) and write metrics."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonalign.config import option, to_dict
from reasonalign.errors import UserError


def adapter_summary(adapter: str | None) -> dict:
    """The adapter's train_summary.json ({} without an adapter): its template and method."""
    path = Path(adapter or "") / "train_summary.json"
    return json.loads(path.read_text()) if adapter and path.is_file() else {}


@dataclass
class ScoringInputs:
    """Which model reads which rows: the options `eval` and `generate` share."""

    model: str = option("smollm2-135m-instruct", "short name, hub id or folder of the base model")
    adapter: str | None = option(None, "LoRA adapter folder from `reasonalign train`")
    data: str = option("dfar:test", "dfar:test (reported with its clean part side by side), dfar:test-clean, "
                                    "ethos:PATH, or a CSV/TSV/JSONL path")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    rows: int | None = option(None, "use a fixed part of the data with its label shares (default: all)")
    template: str | None = option(None, "prompt template (default: the adapter's, else dfar-llama)")
    trust_remote_code: bool = option(False, "allow model code from the hub (off unless you ask)")

    def adapter_summary(self) -> dict:
        return adapter_summary(self.adapter)

    def template_name(self) -> str:
        return self.template or self.adapter_summary().get("template", "dfar-llama")

    def load_rows(self, seed: int) -> tuple:
        """(dataset, the examples to use): all rows, or a fixed part with the label shares (`rows`)."""
        from reasonalign.data import load, parse_columns, parse_label_map, split_off

        dataset = load(self.data, columns=parse_columns(self.columns) if self.columns else None,
                       label_map=parse_label_map(self.label_map) if self.label_map else None)
        examples = dataset.examples
        if self.rows and self.rows < len(examples):
            examples = split_off(examples, self.rows, seed)[1]
        return dataset, examples


@dataclass
class EvalConfig(ScoringInputs):
    method: str | None = option(None, "prompt variant l or lr (default: the adapter's, else lr)", ["l", "lr"])
    scoring: str = option("loglik", "loglik = compare label log-likelihoods; generate = generate and parse",
                          ["loglik", "generate"])
    calibration: str = option("auto", "auto = the adapter's calibration.json if any; none; or a JSON file")
    calibrate_on: str | None = option(None, "fit the label-prior threshold on this (training) data instead")
    calibration_rows: int = option(200, "rows of --calibrate-on used to fit the threshold")
    batch_size: int = option(32, "sequences per forward pass")
    max_new_tokens: int = option(16, "generate: tokens to generate per item")
    output: str = option("runs/eval", "folder for metrics.json and predictions.jsonl")
    seed: int = option(0, "seed for row selection and the bootstrap")


def _threshold(config: EvalConfig, dataset, fit) -> tuple[float, str]:
    """The decision threshold on log P(unethical) - log P(ethical), and where it came from."""
    if config.calibrate_on:
        from reasonalign.data import load, split_off

        source = load(config.calibrate_on)
        if source.sha256 == dataset.sha256:
            raise UserError(f"{config.calibrate_on}: is the evaluation data itself; calibrate on training data only")
        _, rows = split_off(source.examples, min(config.calibration_rows, len(source)), config.seed)
        return fit(rows), f"fitted on {len(rows)} rows of {config.calibrate_on}"
    path = None
    if config.calibration == "auto" and config.adapter and (Path(config.adapter) / "calibration.json").is_file():
        path = Path(config.adapter) / "calibration.json"
    elif config.calibration not in ("auto", "none"):
        path = Path(config.calibration)
        if not path.is_file():
            raise UserError(f"{path}: calibration file not found")
    if path is None:
        return 0.0, "none (threshold 0)"
    try:
        return float(json.loads(path.read_text())["threshold"]), str(path)
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a calibration file (needs a numeric 'threshold')") from None


def evaluate(config: EvalConfig, model=None, tokenizer=None) -> dict:
    from reasonalign.eval import classify
    from reasonalign.eval.metrics import classification_metrics
    from reasonalign.models import load_model, load_tokenizer
    from reasonalign.prompts import get_template

    template = get_template(config.template_name())
    method = config.method or config.adapter_summary().get("method", "lr")
    dataset, examples = config.load_rows(config.seed)
    if tokenizer is None:
        tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if model is None:
        model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code)

    def fit(rows):
        return classify.fit_threshold(classify.score_labels(model, tokenizer, template, rows, method,
                                                            config.batch_size), [ex.label for ex in rows])

    started = time.time()
    gold = np.array([ex.label for ex in examples])
    extra: dict = {}
    if config.scoring == "loglik":
        threshold, source = _threshold(config, dataset, fit)
        scores = classify.score_labels(model, tokenizer, template, examples, method, config.batch_size)
        pred = classify.predict_from_scores(scores, threshold)
        per_item = [{"logp_ethical": float(s[0]), "logp_unethical": float(s[1])} for s in scores]
        extra = {"threshold": threshold, "threshold_source": source,
                 "accuracy_threshold_0": float((classify.predict_from_scores(scores, 0.0) == gold).mean())}
    else:
        texts = classify.generate_answers(model, tokenizer, template, examples, method,
                                          max_new_tokens=config.max_new_tokens, batch_size=config.batch_size)
        pred = classify.parse_predictions(texts)
        per_item = [{"output": t} for t in texts]
    seconds = time.time() - started

    metrics = classification_metrics(gold, pred, seed=config.seed)
    metrics["splits"] = leakage_splits(dataset.name, examples, gold, pred, config.seed)
    metrics.update(extra, data=dataset.name, data_sha256=dataset.sha256, model=config.model, adapter=config.adapter,
                   template=template.name, method=method, scoring=config.scoring, seconds=round(seconds, 1),
                   seed=config.seed, config=to_dict(config))
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as f:
        for ex, p, item in zip(examples, pred, per_item):
            f.write(json.dumps({"row": ex.row, "statement": ex.statement, "gold": int(ex.label), "pred": int(p),
                                "correct": bool(p == ex.label), **item}) + "\n")
    return metrics


def leakage_splits(name: str, examples, gold, pred, seed: int) -> dict:
    """Accuracy on the full DFAR test set and on its clean part, side by side ({} for other data)."""
    from reasonalign.data.tables import clean_rows
    from reasonalign.eval.metrics import classification_metrics

    clean = clean_rows(name)
    if clean is None:
        return {}
    keep = np.array([ex.row in clean for ex in examples])
    pick = ("accuracy", "n", "ci95", "majority_baseline")
    full = classification_metrics(gold, pred, seed=seed)
    part = classification_metrics(gold[keep], pred[keep], seed=seed)
    return {name: {k: full[k] for k in pick}, "dfar:test-clean": {k: part[k] for k in pick}}


def headline(m: dict, config: EvalConfig) -> str:
    lo, hi = m["ci95"]
    clean = m["splits"].get("dfar:test-clean") if m["data"] != "dfar:test-clean" else None
    side = f"; clean split {clean['accuracy']:.1%} (n={clean['n']})" if clean else ""
    return (f"accuracy {m['accuracy']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['n']}, seed {m['seed']}){side} "
            f"in {m['seconds']} s -> {config.output}/metrics.json")
