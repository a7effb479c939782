"""What is in a train/test pair before anyone trains on it: balance, duplicates, leakage.

DFAR's test set repeats 189 training statements (174 with the very same reason), so test
accuracy on it partly measures memorisation; the audit makes such facts visible up front.
"""

import statistics

from reasonalign.data.tables import Dataset, normalize_statement
from reasonalign.core.verdict import LABELS


def audit(train: Dataset, test: Dataset) -> dict:
    """Per-split statistics plus leakage of test statements into train (JSON-ready dict)."""
    first_in_train = {}
    for e in train:
        first_in_train.setdefault(normalize_statement(e.statement), e)
    leaked = [(e, first_in_train[key]) for e in test if (key := normalize_statement(e.statement)) in first_in_train]
    both_have_reasons = train.has_reasons and test.has_reasons
    return {
        "train": split_stats(train),
        "test": split_stats(test),
        "leaked_test_rows": len(leaked),
        "leaked_same_label": sum(t.label == tr.label for t, tr in leaked),
        "leaked_same_reason": sum(t.reason == tr.reason for t, tr in leaked) if both_have_reasons else None,
        "clean_test_rows": len(test) - len(leaked),
    }


def split_stats(ds: Dataset) -> dict:
    counts = [ds.labels().count(i) for i in range(len(LABELS))]
    first_label, duplicates, conflicts = {}, 0, 0
    for e in ds:
        key = normalize_statement(e.statement)
        if key in first_label:
            duplicates += 1
            conflicts += e.label != first_label[key]
        else:
            first_label[key] = e.label
    reasons = [e.reason for e in ds if e.reason is not None]
    return {
        "name": ds.name,
        "sha256": ds.sha256,
        "n": len(ds),
        "labels": {word: {"count": c, "share": round(c / len(ds), 4)} for word, c in zip(LABELS, counts)},
        "duplicate_rows": duplicates,  # rows whose statement appeared earlier in the split
        "duplicate_label_conflicts": conflicts,  # ... with a label different from the first one
        "statement_words": word_stats([e.statement for e in ds]),
        "reason_words": word_stats(reasons) if reasons else None,
        "rows_with_reason": len(reasons),
    }


def word_stats(texts: list[str]) -> dict:
    n = sorted(len(t.split()) for t in texts)
    pos = 0.95 * (len(n) - 1)  # linear interpolation, as numpy.percentile does by default
    lo = int(pos)
    p95 = n[lo] + (n[min(lo + 1, len(n) - 1)] - n[lo]) * (pos - lo)
    return {"mean": round(statistics.fmean(n), 2), "median": statistics.median(n),
            "min": n[0], "max": n[-1], "p95": round(p95, 2)}


def render(report: dict) -> str:
    """Plain-text summary for people; `--json` gives the full dict."""
    lines = []
    for split in ("train", "test"):
        s = report[split]
        labels = ", ".join(f"{v['count']} {w} ({v['share']:.1%})" for w, v in s["labels"].items())
        lines.append(f"{split}: {s['name']}: {s['n']} rows ({labels})")
        lines.append(f"  duplicates: {s['duplicate_rows']} rows repeat an earlier statement "
                     f"({s['duplicate_label_conflicts']} with a different label)")
        for what in ("statement", "reason"):
            w = s[f"{what}_words"]
            if w:
                lines.append(f"  {what} words: mean {w['mean']}, median {w['median']}, "
                             f"min {w['min']}, max {w['max']}, p95 {w['p95']}")
    same_reason = report["leaked_same_reason"]
    reason_note = f", {same_reason} with the identical reason" if same_reason is not None else ""
    lines.append(f"leakage: {report['leaked_test_rows']} of {report['test']['n']} test statements are in train "
                 f"({report['leaked_same_label']} with the same label{reason_note}); "
                 f"{report['clean_test_rows']} clean test rows")
    return "\n".join(lines)
