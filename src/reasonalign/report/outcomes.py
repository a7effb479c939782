"""The one reader of finished runs for every results table, and the one aggregation over seeds.

Tables are read back from per-item files, not from the runs' summary numbers: `predictions.jsonl`
(correct or not) for accuracy, `judgements.jsonl` (the headline judge's verdict) for MAR,
`group_scores.jsonl` for the ordering of sampled responses. Per-item outcomes are what make paired
differences between two models possible, and a mean over seeds with a CI over the items.
Used by the recipe and demo tables (report/recipe_table.py) and by reproduce's (report/table.py).
"""

import json
from pathlib import Path

import numpy as np

from reasonalign.core.files import read_jsonl


def read_metrics(path: Path) -> dict | None:
    """A finished run's metrics.json (or summary), None when the run did not write it."""
    return json.loads(path.read_text()) if path.is_file() else None


def split_records(data: str | None, records: list[dict]) -> dict[str, list[dict]]:
    """The records of each reported split, decided as eval decided them (the task's `splits`, e.g.
    dfar:test and dfar:test-clean); a task without splits reports all of its records under its data spec."""
    from reasonalign.tasks import task_for  # loads DFAR test-clean only when a table reads a split

    keep = (task_for(data).splits(data, [r["row"] for r in records]) if data else None) or {
        data: [True] * len(records)}
    return {split: [r for r, k in zip(records, mask) if k] for split, mask in keep.items()}


def read_outcomes(run: Path, metric: str) -> tuple[dict, list[dict], dict] | None:
    """(metrics.json, its per-item records, item -> outcome) of one eval folder; None if it did not finish.

    Outcomes: accuracy -> correct; mar -> misaligned by the run's headline judge (items it did not judge are
    left out); empty -> no reason at all; ordering (eval --task ranking) -> a better response scored above a
    worse one, each (better, worse) pair of a group an item."""
    metrics = read_metrics(run / "metrics.json")
    if metrics is None:
        return None
    if metric == "ordering":
        records = [r for _, r in read_jsonl(run / "group_scores.jsonl")]
        return metrics, records, {f"{g['id']}:{i}>{j}": s_i > s_j for g in records
                                  for i, (s_i, r_i) in enumerate(zip(g["scores"], g["ranks"]))
                                  for j, (s_j, r_j) in enumerate(zip(g["scores"], g["ranks"])) if r_i < r_j}
    if metric in ("mar", "empty"):
        records = [r for _, r in read_jsonl(run / "judgements.jsonl")]
        judge = metrics.get("judge")
        outcome = ({r["row"]: not r["judges"][judge]["aligned"] for r in records if judge in r["judges"]}
                   if metric == "mar" else {r["row"]: not (r["reason"] or "").strip() for r in records})
    else:
        records = [r for _, r in read_jsonl(run / "predictions.jsonl")]
        outcome = {r["row"]: bool(r["correct"]) for r in records}
    return metrics, records, outcome


def by_split(metrics: dict, records: list[dict], outcome: dict) -> dict[str, dict]:
    """The outcomes of each split the run reports (`split_records`)."""
    return {split: {r["row"]: outcome[r["row"]] for r in kept if r["row"] in outcome}
            for split, kept in split_records(metrics["data"], records).items()}


def item_outcomes(folder: Path, column: dict) -> dict | None:
    """item -> outcome of one model on one table column: {run: the sub-folder eval wrote, metric, part: one
    reported split (optional)}; None if not run."""
    found = read_outcomes(folder / column["run"], column["metric"])
    if found is None:
        return None
    return by_split(*found).get(column["part"]) if column.get("part") else found[2]


def over_seeds(values: list[float]) -> dict:
    """Mean, sample SD (None for one seed: no spread to estimate) and range of one number over seeds.

    A CI over the items says how much the test set moves a number; this spread says how much the training
    run does, which a single seed cannot show."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None,
            "min": float(v.min()), "max": float(v.max()), "n_seeds": int(v.size)}
