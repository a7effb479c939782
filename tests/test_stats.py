"""The scipy-based intervals against the hand formulas they replaced (kept here as references)."""

import math
import warnings

import numpy as np
import pytest

from reasonalign.core.stats import bootstrap_ci, bootstrap_groups, paired_comparison, wilson_interval


def wilson_by_hand(k, n, z=1.96):
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def bootstrap_by_hand(values, seed, n_boot=2000):
    values = np.asarray(values, dtype=float)
    means = values[np.random.default_rng(seed).integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    return list(np.percentile(means, [2.5, 97.5]))


def groups_by_hand(ordered, pairs, seed, n_boot=2000):
    ordered, pairs = np.asarray(ordered, dtype=float), np.asarray(pairs, dtype=float)
    idx = np.random.default_rng(seed).integers(0, pairs.size, size=(n_boot, pairs.size))
    return list(np.percentile(ordered[idx].sum(1) / pairs[idx].sum(1), [2.5, 97.5]))


@pytest.mark.parametrize("n", [1, 2, 7, 10, 50, 263, 1000])
def test_wilson_matches_hand_formula(n):
    # scipy uses the exact normal quantile 1.959964 where the hand formula used 1.96: the bounds
    # move by under 1e-5 (largest seen 9e-6), far below the 4 decimals anything reports.
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        assert wilson_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=2e-5)


def test_wilson_edges():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert all(type(x) is float for x in wilson_interval(3, 10))


def test_bootstrap_ci_matches_numpy_reference():
    x = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1]
    # scipy (pinned 1.17.1) draws resamples as rng.integers(0, n, (n_boot, n)), like the old code, so the
    # intervals agree to rounding; a scipy that draws differently would differ by Monte Carlo error (~0.01).
    assert bootstrap_ci(x, seed=5) == pytest.approx(bootstrap_by_hand(x, 5), abs=1e-9)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    lo, hi = bootstrap_ci(x, seed=5)
    assert lo < np.mean(x) < hi
    wide, narrow = bootstrap_ci(x * 2, seed=1), bootstrap_ci(x * 20, seed=1)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert all(type(v) is float for v in (lo, hi))


@pytest.mark.filterwarnings("error")
def test_bootstrap_ci_degenerate_and_empty():
    assert bootstrap_ci([1, 1, 1]) == [1.0, 1.0] and bootstrap_ci([0] * 9) == [0.0, 0.0]
    assert bootstrap_ci([1]) == [1.0, 1.0]  # scipy refuses one observation; every resample is that value
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_bootstrap_groups_matches_numpy_reference():
    ordered, pairs = [3, 1, 0, 2, 4, 5, 1], [4, 2, 1, 2, 4, 6, 3]
    assert bootstrap_groups(ordered, pairs, seed=2) == pytest.approx(groups_by_hand(ordered, pairs, 2), abs=1e-9)
    # groups without pairs are dropped before resampling
    assert bootstrap_groups(ordered + [0, 0], pairs + [0, 0], seed=2) == bootstrap_groups(ordered, pairs, seed=2)
    lo, hi = bootstrap_groups(ordered, pairs, seed=2)
    assert lo < sum(ordered) / sum(pairs) < hi


@pytest.mark.filterwarnings("error")
def test_bootstrap_groups_degenerate_and_empty():
    assert all(math.isnan(v) for v in bootstrap_groups([], [], seed=0))
    assert all(math.isnan(v) for v in bootstrap_groups([0, 0], [0, 0], seed=0))
    assert bootstrap_groups([1, 0], [2, 0], seed=0) == [0.5, 0.5]  # one group left
    assert bootstrap_groups([1, 2, 3], [2, 4, 6], seed=0) == [0.5, 0.5]  # same share in every group


def test_no_warnings_on_ordinary_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bootstrap_ci([0, 1, 1], seed=0)
        bootstrap_groups([1, 2], [3, 3], seed=0)
        wilson_interval(3, 7)


def paired_by_hand(a, b, seed, n_boot=2000):
    """Resample item indices; both models' answers on an item travel together."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    return list(np.percentile(b[idx].mean(1) - a[idx].mean(1), [2.5, 97.5]))


def test_paired_comparison_by_hand():
    # 10 items: both right on 2, both wrong on 1, only A right on 1, only B right on 6
    a = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    b = [1, 1, 0, 0, 1, 1, 1, 1, 1, 1]
    c = paired_comparison(a, b, seed=3)
    assert c["n"] == 10 and c["a"] == 0.3 and c["b"] == 0.8 and c["difference"] == pytest.approx(0.5)
    assert c["discordant"] == {"a_only": 1, "b_only": 6}
    # exact two-sided McNemar: 2 * P(X <= 1), X ~ Binomial(7, 1/2)
    assert c["mcnemar_p"] == pytest.approx(2 * (math.comb(7, 0) + math.comb(7, 1)) / 2 ** 7)  # 0.125
    assert c["ci95"] == pytest.approx(paired_by_hand(a, b, 3), abs=1e-9)
    assert c["ci95"][0] < c["difference"] < c["ci95"][1]
    wide, narrow = paired_comparison(a * 3, b * 3)["ci95"], paired_comparison(a * 30, b * 30)["ci95"]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert paired_comparison(a * 30, b * 30)["mcnemar_p"] < c["mcnemar_p"]


def test_paired_comparison_edges():
    same = paired_comparison([1, 0, 1], [1, 0, 1])
    assert same["mcnemar_p"] == 1.0 and same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]
    assert paired_comparison([0, 0], [1, 1])["ci95"] == [1.0, 1.0]  # every resample differs by 1
    assert math.isnan(paired_comparison([], [])["difference"])
    with pytest.raises(ValueError, match="same items"):
        paired_comparison([1, 0], [1])
