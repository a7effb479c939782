"""Classification metrics with honest uncertainty: n, bootstrap 95% CI, per-class scores, paired comparisons."""

import warnings

import numpy as np
from scipy.stats import binomtest, bootstrap
from sklearn.metrics import precision_recall_fscore_support

from reasonalign.core.verdict import LABELS

UNPARSEABLE = -1


def bootstrap_ci(correct, seed: int = 0, n_boot: int = 2000) -> list[float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector (or of per-item differences).

    Constant vectors (all right, all wrong, one item) get [value, value]: every resample has
    that mean, and scipy refuses a single observation.
    """
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        return [float("nan"), float("nan")]
    if np.ptp(correct) == 0:
        return [float(correct[0])] * 2
    ci = bootstrap((correct,), np.mean, n_resamples=n_boot, method="percentile", confidence_level=0.95,
                   vectorized=True, rng=np.random.default_rng(seed)).confidence_interval
    return [float(ci.low), float(ci.high)]


def seeds_bootstrap_ci(per_seed: list[dict], seed: int = 0, n_boot: int = 2000) -> list[float]:
    """Percentile CI of a mean over training seeds, resampling the test items.

    `per_seed` holds one {item: value} dict per seed (0/1 outcomes, or paired differences). Items
    are resampled jointly across seeds, so an item all seeds saw (the same test set) counts once,
    not once per seed, while items only one seed saw (a seeded subset) vary with that seed alone.
    The interval covers the items' noise; the spread between seeds is reported apart (their SD):
    three seeds are too few to resample. One seed = the plain percentile bootstrap."""
    items = list(dict.fromkeys(k for d in per_seed for k in d))
    if not items:
        return [float("nan"), float("nan")]
    table = np.array([[d.get(k, np.nan) for d in per_seed] for k in items], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(items), (n_boot, len(items)))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample may miss all of a small seed's items
        means = np.nanmean(np.nanmean(table[idx], axis=1), axis=1)
    lo, hi = np.nanpercentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def paired_comparison(correct_a, correct_b, seed: int = 0, resamples: int = 2000) -> dict:
    """B − A for two models judged on the same items (0/1 vectors in the same order).

    Paired because both models saw each item: their errors correlate, so resampling items whole
    (the bootstrap of the per-item difference) gives a narrower, honest interval than two
    independent CIs. McNemar (exact binomial on the discordant items) tests whether they differ;
    items both got right or both got wrong carry no evidence either way.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired_comparison: {a.size} items against {b.size}; pair the same items")
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    nan = float("nan")
    return {"n": int(a.size), "a": float(a.mean()) if a.size else nan, "b": float(b.mean()) if b.size else nan,
            "difference": float(b.mean() - a.mean()) if a.size else nan,
            "ci95": bootstrap_ci(b.astype(float) - a.astype(float), seed, resamples),
            "mcnemar_p": float(binomtest(b_only, a_only + b_only, 0.5).pvalue) if a_only + b_only else 1.0,
            "discordant": {"a_only": a_only, "b_only": b_only}}


def _pooled_share(ordered, pairs, axis=-1):
    return ordered.sum(axis) / pairs.sum(axis)


def bootstrap_groups(ordered, pairs, seed: int, n_boot: int = 2000) -> list[float]:
    """Percentile bootstrap over groups of the pooled share sum(ordered) / sum(pairs).

    Groups are resampled whole (`paired`: counts and pairs of one group stay together), since pairs
    of one group are not independent. Groups without pairs are dropped; NaNs when none is left.
    """
    ordered, pairs = np.asarray(ordered, dtype=float), np.asarray(pairs, dtype=float)
    keep = pairs > 0
    ordered, pairs = ordered[keep], pairs[keep]
    if not pairs.size:
        return [float("nan"), float("nan")]
    if np.ptp(ordered / pairs) == 0:  # every resample pools to the same share (one group included)
        return [float(_pooled_share(ordered, pairs))] * 2
    ci = bootstrap((ordered, pairs), _pooled_share, n_resamples=n_boot, method="percentile",
                   confidence_level=0.95, paired=True, vectorized=True,
                   rng=np.random.default_rng(seed)).confidence_interval
    return [float(ci.low), float(ci.high)]


def wilson_interval(k: int, n: int) -> list[float]:
    """95% Wilson score interval for k successes out of n (NaNs when n is 0).

    Wilson rather than the normal approximation because shares near 0 or 1 (MARs of 5-10%,
    accuracies near 0 on GSM8K) on a few hundred items make the normal interval leave [0, 1];
    and rather than a bootstrap because it is exact to reproduce and needs no seed.
    """
    if n == 0:
        return [float("nan"), float("nan")]
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return [max(0.0, float(ci.low)), min(1.0, float(ci.high))]


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
