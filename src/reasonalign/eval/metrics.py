"""Classification metrics with honest uncertainty: n, bootstrap 95% CI, per-class scores."""

from math import sqrt

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from reasonalign.verdict import LABELS

UNPARSEABLE = -1


def bootstrap_ci(correct, seed: int = 0, n_boot: int = 2000) -> list[float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector."""
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, size=(n_boot, correct.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def wilson_interval(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval for k successes out of n (NaNs when n is 0).

    Wilson rather than the normal approximation because shares near 0 or 1 (MARs of 5-10%,
    accuracies near 0 on GSM8K) on a few hundred items make the normal interval leave [0, 1];
    and rather than a bootstrap because it is exact to reproduce and needs no seed.
    """
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def classification_metrics(y_true, y_pred, seed: int = 0) -> dict:
    """`y_pred` may hold UNPARSEABLE (-1): such an item counts as wrong and is reported."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct = y_true == y_pred
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1], zero_division=0)
    confusion = [[int(((y_true == t) & (y_pred == q)).sum()) for q in (0, 1, UNPARSEABLE)] for t in (0, 1)]
    return {
        "accuracy": float(correct.mean()) if correct.size else float("nan"),
        "n": int(correct.size),
        "ci95": bootstrap_ci(correct, seed),
        "ci_method": f"percentile bootstrap, 2000 resamples, seed {seed}",
        "majority_baseline": float(max((y_true == 0).mean(), (y_true == 1).mean())) if correct.size else None,
        "per_class": {
            LABELS[k]: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k])}
            for k in (0, 1)
        },
        "confusion_matrix": {"rows": "gold " + "/".join(LABELS), "cols": "predicted ethical/unethical/unparseable",
                             "values": confusion},
        "unparseable": int((y_pred == UNPARSEABLE).sum()),
    }
