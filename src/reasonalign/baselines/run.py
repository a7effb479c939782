"""`reasonalign baselines`: the paper's non-generative baselines, scored like `eval --task labels`.

A generative model's accuracy means little without what a tuned bag-of-words model or a small
fine-tuned encoder gets on the same rows. DFAR: fit on dfar:train (`--train-rows N` = the first N
rows of the seeded order every command uses), score dfar:validation and dfar:test (the test also on
its clean part). Other data: one seeded, stratified train/test split, recorded in split.json.
Each model gets a folder shaped like an eval model folder (eval/, eval-validation/ for DFAR,
train_summary.json), so the results table reads it as it reads a fine-tuned model's.
"""

import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from reasonalign.baselines import classic, encoder
from reasonalign.baselines.config import MODELS, BaselinesConfig
from reasonalign.core.config import to_dict
from reasonalign.core.errors import UserError
from reasonalign.core.files import write_jsonl, write_text
from reasonalign.data import load
from reasonalign.tasks import task_for

class EvalSet(NamedTuple):
    folder: str  # "eval" or "eval-validation"
    name: str  # data name, e.g. "dfar:test"
    sha256: str
    examples: list


class Plan(NamedTuple):
    models: list[str]
    task: object
    train_name: str
    train: list
    evals: list[EvalSet]
    test_share: float | None  # None for dfar, which has its own test split


def plan(config: BaselinesConfig) -> Plan:
    """Every check that can fail, before anything is fitted or written."""
    from sklearn.model_selection import train_test_split  # heavy: the CLI imports this module for --help

    models = list(dict.fromkeys(m.strip() for m in config.models.split(",") if m.strip()))
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        what = f"unknown model {unknown[0]!r}" if unknown else "no model named"
        raise UserError(f"--models {config.models}: {what} (models: {', '.join(MODELS)})")
    if not 0 < config.test_share < 1:
        raise UserError(f"--test-share {config.test_share}: must be between 0 and 1")
    if config.cv_folds < 2:
        raise UserError(f"--cv-folds {config.cv_folds}: must be at least 2")
    if min(config.encoder_epochs, config.batch_size, config.max_length) < 1:
        raise UserError("--encoder-epochs, --batch-size and --max-length must be at least 1")
    task = task_for(config.data)
    if task.kind != "labels":
        raise UserError(f"--data {config.data}: {task.name} has no ethical/unethical labels")
    if config.data in ("dfar", "dfar:train"):
        train = load("dfar:train")
        evals = [EvalSet("eval-validation", *_named(load("dfar:validation"))),
                 EvalSet("eval", *_named(load("dfar:test")))]
        train_name, train, test_share = train.name, train.examples, None
    else:
        data = task.load(config.data, columns=config.columns, label_map=config.label_map)
        if len(set(data.labels())) < 2:
            raise UserError(f"{data.name}: every row has the same label; a classifier needs both")
        try:
            fit, test = train_test_split(np.arange(len(data)), test_size=config.test_share, stratify=data.labels(),
                                         random_state=config.seed)
        except ValueError as exc:
            raise UserError(f"--test-share {config.test_share}: cannot split the {len(data)} rows of {data.name} "
                            f"by label ({exc})") from None
        train_name, test_share = f"{data.name} (train part)", config.test_share
        train = [data[i] for i in sorted(fit)]
        evals = [EvalSet("eval", data.name, data.sha256, [data[i] for i in sorted(test)])]
    if config.train_rows is not None:
        if not 1 <= config.train_rows <= len(train):
            raise UserError(f"--train-rows {config.train_rows}: must be 1 to {len(train)} (the rows of {train_name})")
        train = task.rows(train, config.train_rows, config.seed)
    fewest = min(Counter(e.label for e in train).get(label, 0) for label in (0, 1))
    if fewest < config.cv_folds and set(models) - {"encoder"}:
        raise UserError(f"{train_name}: {fewest} training rows of the rarer label, too few for --cv-folds "
                        f"{config.cv_folds} (every fold needs both labels)")
    if "encoder" in models:
        if fewest < 2:
            raise UserError(f"{train_name}: {fewest} training rows of the rarer label; the encoder holds out "
                            f"rows of both labels to pick its epoch")
        encoder.check(config.encoder)
    return Plan(models, task, train_name, train, evals, test_share)


def _named(dataset) -> tuple:
    return dataset.name, dataset.sha256, dataset.examples


def describe(name: str, config: BaselinesConfig) -> str:
    return f"encoder (fine-tuned {config.encoder})" if name == "encoder" else f"{name} ({classic.MODELS[name]})"


def fit_one(name: str, config: BaselinesConfig, p: Plan) -> tuple[list, dict]:
    """(per eval set: (predictions, P(unethical), seconds), train summary) of one baseline."""
    if name == "encoder":
        with tempfile.TemporaryDirectory() as tmp:  # the Trainer wants an output_dir; nothing is saved
            outputs, summary = encoder.fit_predict(
                config.encoder, p.train, [s.examples for s in p.evals], epochs=config.encoder_epochs,
                lr=config.encoder_lr, batch_size=config.batch_size, max_length=config.max_length, seed=config.seed,
                workdir=Path(tmp))
        best = next(e for e in summary["per_epoch"] if e["epoch"] == summary["best_epoch"])
        return outputs, {**summary, "best_params": {"epochs": summary["best_epoch"]},
                         "cv_accuracy": best["heldout_accuracy"],
                         "selected_on": f"{summary['heldout_n']} held-out training rows (10 percent, stratified)"}
    started = time.time()
    model, best, cv_accuracy, table = classic.fit(name, [e.statement for e in p.train], [e.label for e in p.train],
                                                  config.cv_folds, config.seed)
    summary = {"seconds": time.time() - started, "best_params": best, "cv_accuracy": cv_accuracy,
               "selected_on": f"{config.cv_folds}-fold stratified cross-validation on the training rows",
               "cv_results": table}
    outputs = []
    for s in p.evals:
        started = time.time()
        outputs.append((*classic.predict(model, [e.statement for e in s.examples]), time.time() - started))
    return outputs, summary


def write_eval(folder: Path, s: EvalSet, output: tuple, name: str, summary: dict, config: BaselinesConfig,
               p: Plan) -> dict:
    """metrics.json + predictions.jsonl of one model on one eval set, shaped as `eval --task labels` writes them."""
    from reasonalign.core.stats import classification_metrics  # heavy (scipy, sklearn)

    pred, prob, seconds = output
    gold, pred = np.array([e.label for e in s.examples]), np.array(pred)
    metrics = classification_metrics(gold, pred, seed=config.seed)
    metrics["splits"] = p.task.split_metrics(s.name, s.examples, gold, pred, config.seed)
    metrics.update(data=s.name, data_sha256=s.sha256, train_data=p.train_name, train_rows=len(p.train),
                   model=describe(name, config), method="baseline", best_params=summary["best_params"],
                   cv_accuracy=summary["cv_accuracy"], selected_on=summary["selected_on"],
                   fit_seconds=round(summary["seconds"], 1), seconds=round(seconds, 1), seed=config.seed,
                   config=to_dict(config))
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "predictions.jsonl", [
        {"row": e.row, "statement": e.statement, "gold": int(e.label), "pred": int(y), "correct": bool(y == e.label),
         "p_unethical": q} for e, y, q in zip(s.examples, pred, prob)])
    write_text(folder / "metrics.json", json.dumps(metrics, indent=2))  # last: it marks the evaluation finished
    return metrics


def run_baselines(config: BaselinesConfig, log=print) -> dict:
    """Fit every baseline in `--models`, write its folder, and return (and write) baselines.json."""
    p = plan(config)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "split.json", json.dumps({
        "data": config.data, "train_data": p.train_name, "seed": config.seed,
        "test_share": p.test_share,
        "train_rows": [e.row for e in p.train],
        "eval": {s.folder: {"data": s.name, "rows": [e.row for e in s.examples]} for s in p.evals}}, indent=2))
    results = {}
    for name in p.models:
        log(f"{name}: fitting {describe(name, config)} on {len(p.train)} rows of {p.train_name}")
        outputs, summary = fit_one(name, config, p)
        folder = out / name
        splits = {}
        for s, output in zip(p.evals, outputs):
            m = write_eval(folder / s.folder, s, output, name, summary, config, p)
            splits.update(m["splits"] or {m["data"]: m})
        write_text(folder / "train_summary.json", json.dumps({
            "model": describe(name, config), "method": "baseline", "real_tokens": 0, "train_rows": len(p.train),
            "train_data": p.train_name, "seed": config.seed, **summary, "seconds": round(summary["seconds"], 1)},
            indent=2))
        results[name] = {"model": describe(name, config), "fit_seconds": round(summary["seconds"], 1),
                         "seconds": round(summary["seconds"] + sum(o[2] for o in outputs), 1),
                         "best_params": summary["best_params"], "cv_accuracy": round(summary["cv_accuracy"], 4),
                         "splits": {k: {f: v[f] for f in ("accuracy", "n", "ci95")} for k, v in splits.items()}}
    report = {"data": config.data, "train_data": p.train_name, "train_rows": len(p.train), "seed": config.seed,
              "models": results, "config": to_dict(config)}
    write_text(out / "baselines.json", json.dumps(report, indent=2))
    return report
