"""qtransfer.stats: known answers, and agreement with scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qtransfer.stats import (
    compare_heads,
    mcnemar_exact,
    mean_ci,
    paired_bootstrap,
    t_quantile,
)

scipy_stats = pytest.importorskip("scipy.stats")


# ----------------------------------------------------------------- t and mean_ci
@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 29, 100, 1000])
@pytest.mark.parametrize("q", [0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.01])
def test_t_quantile_matches_scipy(q, df):
    assert t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("values", [[0.94, 0.96], [0.95, 0.96, 0.93, 0.97, 0.91, 0.95, 0.94, 0.96, 0.92, 0.98]])
def test_mean_ci_matches_scipy_t_interval(values, level):
    m, s, lo, hi = mean_ci(values, level)
    x = np.asarray(values)
    assert m == pytest.approx(x.mean(), abs=1e-12)
    assert s == pytest.approx(x.std(ddof=1), abs=1e-12)
    ref_lo, ref_hi = scipy_stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=scipy_stats.sem(x))
    assert lo == pytest.approx(ref_lo, abs=1e-10)
    assert hi == pytest.approx(ref_hi, abs=1e-10)


def test_mean_ci_single_value_has_no_spread():
    m, s, lo, hi = mean_ci([0.9])
    assert m == 0.9 and math.isnan(s) and math.isnan(lo) and math.isnan(hi)


def test_mean_ci_bounds_clip_the_interval_to_the_range():
    values = [1.0, 1.0, 1.0, 0.96, 1.0]  # near 100%: the t-interval reaches past 1
    _, _, lo, hi = mean_ci(values)
    assert hi > 1.0
    m, s, lo_b, hi_b = mean_ci(values, bounds=(0.0, 1.0))
    assert hi_b == 1.0 and lo_b == lo and m == pytest.approx(0.992)


def test_mean_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        mean_ci([])
    with pytest.raises(ValueError, match="non-finite"):
        mean_ci([0.9, float("nan")])
    with pytest.raises(ValueError, match="level"):
        mean_ci([0.9, 0.8], level=1.5)


# ----------------------------------------------------------------- McNemar
def test_mcnemar_identical_heads_p_is_one():
    rng = np.random.default_rng(1)
    a = rng.random(60) < 0.8
    r = mcnemar_exact(a, a)
    assert (r.n01, r.n10, r.p_value) == (0, 0, 1.0)


def test_mcnemar_balanced_discordance_p_is_one():
    a = np.array([1, 0, 1, 0, 1], bool)
    b = np.array([0, 1, 0, 1, 1], bool)
    r = mcnemar_exact(a, b)
    assert r.n01 == r.n10 == 2 and r.p_value == 1.0


@pytest.mark.parametrize("n01,n10", [(0, 1), (0, 5), (3, 10), (12, 4), (7, 8), (40, 60), (0, 50)])
def test_mcnemar_matches_scipy_binomtest(n01, n10):
    n_concordant = 7
    a = np.array([False] * n01 + [True] * n10 + [True] * n_concordant)
    b = np.array([True] * n01 + [False] * n10 + [True] * n_concordant)
    r = mcnemar_exact(a, b)
    assert (r.n01, r.n10, r.n_images) == (n01, n10, n01 + n10 + n_concordant)
    ref = scipy_stats.binomtest(n10, n01 + n10, 0.5).pvalue
    assert r.p_value == pytest.approx(ref, rel=1e-12, abs=1e-300)


def test_mcnemar_always_right_vs_always_wrong():
    r = mcnemar_exact(np.ones(50, bool), np.zeros(50, bool))
    assert r.n10 == 50 and r.n01 == 0
    assert r.p_value < 1e-6
    assert r.p_value == pytest.approx(2 * 0.5**50)


def test_mcnemar_several_seeds_uses_majority_vote():
    # image 0: a right in 2/3 seeds -> right; b right in 1/3 -> wrong
    a = np.array([[1, 1], [1, 0], [0, 0]], bool)
    b = np.array([[0, 1], [1, 1], [0, 1]], bool)
    r = mcnemar_exact(a, b)
    # image 1: a right in 1/3 -> wrong; b right in 3/3 -> right
    assert (r.n10, r.n01) == (1, 1)
    assert "majority" in r.method


def test_mcnemar_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="same seeds and images"):
        mcnemar_exact(np.ones(5, bool), np.ones(6, bool))
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact(np.array([0, 2]), np.array([0, 1]))


# ----------------------------------------------------------------- bootstrap
def test_bootstrap_identical_heads():
    rng = np.random.default_rng(2)
    a = rng.random((5, 40)) < 0.7
    r = paired_bootstrap(a, a, n_boot=500)
    assert r.diff == 0.0 and r.ci_lo == 0.0 and r.ci_hi == 0.0
    assert r.p_value == 1.0


def test_bootstrap_always_right_vs_wrong_is_as_small_as_resolvable():
    r = paired_bootstrap(np.ones((3, 50), bool), np.zeros((3, 50), bool), n_boot=1000)
    assert r.diff == 1.0
    assert r.p_value == pytest.approx(1 / 1001)


def test_bootstrap_is_seeded_and_reproducible():
    rng = np.random.default_rng(3)
    a = rng.random((4, 300)) < 0.8
    b = rng.random((4, 300)) < 0.7
    r1 = paired_bootstrap(a, b, n_boot=800, seed=5)
    r2 = paired_bootstrap(a, b, n_boot=800, seed=5)
    r3 = paired_bootstrap(a, b, n_boot=800, seed=6)
    assert r1 == r2
    assert (r1.ci_lo, r1.ci_hi, r1.p_value) != (r3.ci_lo, r3.ci_hi, r3.p_value)
    assert r1.diff == pytest.approx(a.mean() - b.mean())
    assert r1.ci_lo <= r1.diff <= r1.ci_hi


def test_bootstrap_null_p_values_are_not_small():
    """Two heads with the same accuracy and independent errors: p mostly above 0.05."""
    rng = np.random.default_rng(4)
    ps = []
    for _ in range(40):
        a = rng.random((3, 60)) < 0.8
        b = rng.random((3, 60)) < 0.8
        ps.append(paired_bootstrap(a, b, n_boot=400, seed=0).p_value)
    assert np.mean(np.asarray(ps) < 0.05) <= 0.2


# ----------------------------------------------------------------- compare_heads
def test_compare_identical_heads_not_significant():
    rng = np.random.default_rng(5)
    q = rng.random((10, 49)) < 0.9
    (row,) = compare_heads({"quantum": q, "linear": q.copy()}, n_boot=500)
    assert row.head == "linear" and row.reference == "quantum"
    assert row.bootstrap_p == 1.0 and row.mcnemar.p_value == 1.0
    assert not row.significant
    assert "not significant at 0.05" in row.sentence
    assert "cannot tell them apart" in row.sentence


def test_compare_always_right_vs_always_wrong_is_significant():
    (row,) = compare_heads({"quantum": np.ones((1, 50), bool), "linear": np.zeros((1, 50), bool)}, n_boot=500)
    assert row.mcnemar.p_value < 1e-6
    assert row.significant
    assert row.diff_points == pytest.approx(-100.0)
    assert "— significant at 0.05; quantum is more accurate" in row.sentence


def test_compare_holm_adjusts_several_heads():
    rng = np.random.default_rng(6)
    q = rng.random((3, 80)) < 0.8
    heads = {"quantum": q, "linear": rng.random((3, 80)) < 0.8, "mlp": rng.random((3, 80)) < 0.8}
    rows = compare_heads(heads, n_boot=300)
    assert [r.head for r in rows] == ["linear", "mlp"]
    for r in rows:
        assert r.p_adjusted >= r.bootstrap_p
        assert "Holm-adjusted for 2 comparisons" in r.sentence


def test_compare_errors_name_the_problem():
    with pytest.raises(ValueError, match="reference head 'quantum'"):
        compare_heads({"linear": np.ones(3, bool)})
    with pytest.raises(ValueError, match="'linear'.*same seeds and images"):
        compare_heads({"quantum": np.ones((2, 3), bool), "linear": np.ones((2, 4), bool)})
