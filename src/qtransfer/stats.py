"""Does one head beat another? Paired tests on per-image correctness, in plain words.

Every head is evaluated on the same images with the same seeds, so the honest
comparison is *paired*: image by image, seed by seed. This module needs only numpy
(no scipy at run time); the tests check every number against scipy.

* :func:`mean_ci` -- mean, standard deviation and Student-t confidence interval of
  per-seed accuracies.
* :func:`mcnemar_exact` -- the exact McNemar test (a two-sided binomial test on the
  images where exactly one head is right).
* :func:`paired_t` -- the paired Student-t test and interval of a per-seed difference
  (:class:`PairedT`), e.g. one model's accuracy with and without noise, seed by seed.
* :func:`paired_bootstrap` -- resample images (keeping all seeds of an image together)
  to get a confidence interval and a p-value for the accuracy difference.
* :func:`compare_heads` -- both tests for every head against a reference head, with a
  sentence a newcomer can read (:class:`Comparison`).

Formatting the numbers (tables, figures) is :mod:`qtransfer.report`'s job.

Example:
    >>> import numpy as np
    >>> q = np.ones((3, 50), bool)          # 3 seeds x 50 images, always right
    >>> lin = np.zeros((3, 50), bool)       # always wrong
    >>> r = compare_heads({"quantum": q, "linear": lin})
    >>> r[0].significant
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "McNemarResult",
    "BootstrapResult",
    "t_quantile",
    "t_sf_two_sided",
    "mean_ci",
    "PairedT",
    "paired_t",
    "mcnemar_exact",
    "paired_bootstrap",
    "Comparison",
    "compare_heads",
    "fmt_p",
]


# --------------------------------------------------------------------------- t quantile
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Inverts the exact CDF, ``P(T <= t) = 1 - I_x(df/2, 1/2) / 2`` with
    ``x = df / (df + t^2)`` for ``t >= 0``, by bisection on ``x`` to machine precision
    (agrees with ``scipy.stats.t.ppf`` to about 1e-10).

    Example:
        >>> round(t_quantile(0.975, 9), 4)
        2.2622
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level q must be strictly between 0 and 1, got {q!r}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    target = 2.0 * (1.0 - q)  # I_x(df/2, 1/2) at the answer; increasing in x
    a = df / 2.0
    lo, hi = 0.0, 1.0
    for _ in range(2000):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _betainc(a, 0.5, mid) < target:
            lo = mid
        else:
            hi = mid
    x = 0.5 * (lo + hi)
    return math.sqrt(df * (1.0 - x) / x)


def mean_ci(values: Sequence[float], level: float = 0.95, *,
            bounds: tuple[float, float] | None = None) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation (ddof=1) and Student-t confidence interval.

    Returns ``(mean, std, lo, hi)``. With a single value the spread is unknown, so
    ``std``, ``lo`` and ``hi`` are NaN (one run says nothing about run-to-run noise).
    ``bounds`` clips the interval to the quantity's range (an accuracy lies in [0, 1]; the
    t-interval, made for unbounded quantities, can reach past 1 when seeds are near 100%).

    Example:
        >>> m, s, lo, hi = mean_ci([0.94, 0.96, 0.95])
        >>> round(m, 3), round(s, 3), round(lo, 3), round(hi, 3)
        (0.95, 0.01, 0.925, 0.975)
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value (got an empty sequence)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"mean_ci got a non-finite value in {x.tolist()}; drop failed runs first")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be strictly between 0 and 1, got {level!r}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, x.size - 1) * std / math.sqrt(x.size)
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return mean, std, lo, hi


def t_sf_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom.

    Example:
        >>> round(t_sf_two_sided(2.262157, 9), 4)
        0.05
    """
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class PairedT:
    """Paired Student-t statistics of ``a - b`` over matched runs (seeds).

    ``diff``: mean of the per-seed differences; ``std``: their sample standard deviation;
    ``ci95``: Student-t interval of the mean difference at ``level``; ``t`` and the two-sided
    ``p_value`` test "no difference". One pair leaves the spread unknown: NaN throughout
    but ``diff``. Equal differences on every seed (``std == 0``): the interval is that
    value, ``p_value`` 0 (1 if the differences are all 0).
    """

    n: int
    diff: float
    std: float
    ci95: tuple[float, float]
    t: float
    p_value: float
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None
        return {"n": self.n, "diff": self.diff, "std": num(self.std), "ci95": [num(self.ci95[0]), num(self.ci95[1])],
                "t": num(self.t), "p_value": num(self.p_value), "level": self.level}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PairedT":
        def num(x: Any) -> float:
            return math.nan if x is None else float(x)
        return cls(int(d["n"]), float(d["diff"]), num(d["std"]), (num(d["ci95"][0]), num(d["ci95"][1])),
                   num(d["t"]), num(d["p_value"]), float(d.get("level", 0.95)))


def paired_t(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedT:
    """The paired t statistics of ``a - b`` (same length, matched element by element).

    Example:
        >>> r = paired_t([0.90, 0.92, 0.94], [0.80, 0.83, 0.83])
        >>> round(r.diff, 3), round(r.ci95[0], 3), round(r.ci95[1], 3), r.p_value < 0.05
        (0.1, 0.075, 0.125, True)
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_t needs matched values; got {x.size} and {y.size}")
    d = x - y
    mean, std, lo, hi = mean_ci(d, level)
    if d.size == 1:
        return PairedT(1, mean, math.nan, (math.nan, math.nan), math.nan, math.nan, level)
    if std == 0.0:
        return PairedT(int(d.size), mean, 0.0, (mean, mean), 0.0 if mean == 0 else math.copysign(math.inf, mean),
                       1.0 if mean == 0 else 0.0, level)
    t = mean / (std / math.sqrt(d.size))
    return PairedT(int(d.size), mean, std, (lo, hi), t, t_sf_two_sided(t, d.size - 1), level)


# --------------------------------------------------------------------------- McNemar
@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of two heads on the same images.

    ``n01``: images head *a* gets wrong and head *b* gets right; ``n10``: *a* right,
    *b* wrong; ``n_images``: images compared; ``p_value``: exact two-sided binomial
    p-value of ``n10`` among ``n01 + n10`` discordant images under p = 1/2;
    ``method``: how several seeds were reduced to one outcome per image.
    """

    n01: int
    n10: int
    n_images: int
    p_value: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"n01": self.n01, "n10": self.n10, "n_images": self.n_images,
                "p_value": self.p_value, "method": self.method}


def _as_seed_image(x: Any, name: str) -> np.ndarray:
    """Coerce per-image correctness to a bool array of shape (seeds, images)."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be shaped (images,) or (seeds, images), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); it needs at least one seed and one image")
    if a.dtype != bool:
        if not np.all(np.isin(a, (0, 1))):
            raise ValueError(f"{name} must hold booleans or 0/1 per image; found other values")
        a = a.astype(bool)
    return a


def _pair(correct_a: Any, correct_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = _as_seed_image(correct_a, "correct_a")
    b = _as_seed_image(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired tests need both heads on the same seeds and images: shapes {a.shape} and {b.shape} differ"
        )
    return a, b


def _binom_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials with p = 1/2 (exact integers)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    if 2 * k == n:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)  # int / int: correctly rounded, no overflow


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """Exact McNemar test: are the heads' per-image mistakes different beyond chance?

    ``correct_a``/``correct_b`` are booleans shaped ``(images,)`` or ``(seeds, images)``.
    Only discordant images count: ``n01`` (a wrong, b right) and ``n10`` (a right,
    b wrong). Under "no difference" each discordant image is a fair coin, so the
    p-value is the exact two-sided binomial test of ``n10`` out of ``n01 + n10``;
    ``p = 1`` when ``n01 == n10`` (including no discordant images at all).

    Several seeds: each image is first reduced to a **majority vote** over seeds
    (correct if right in more than half of the seeds; an exact tie counts as wrong,
    for both heads alike). McNemar's test assumes independent *images*; the seeds of
    one image are repeated measurements of the same image, so pooling seed x image
    pairs would treat correlated repeats as independent and overstate significance,
    and per-seed p-values cannot be validly combined (the seeds share the images).
    The majority vote keeps one paired outcome per image, and is exactly the
    single-run test when there is one seed. The paired bootstrap
    (:func:`paired_bootstrap`) uses every seed and is the primary test.

    Example:
        >>> a = np.array([1, 1, 1, 1, 0], bool); b = np.array([0, 0, 0, 1, 0], bool)
        >>> r = mcnemar_exact(a, b)
        >>> r.n10, r.n01, round(r.p_value, 3)
        (3, 0, 0.25)
    """
    a, b = _pair(correct_a, correct_b)
    n_seeds, n_images = a.shape
    if n_seeds > 1:
        a = a.sum(axis=0) * 2 > n_seeds
        b = b.sum(axis=0) * 2 > n_seeds
        method = f"majority vote over {n_seeds} seeds per image, then exact binomial"
    else:
        a, b = a[0], b[0]
        method = "exact binomial (single seed)"
    n01 = int(np.sum(~a & b))
    n10 = int(np.sum(a & ~b))
    return McNemarResult(n01=n01, n10=n10, n_images=n_images,
                         p_value=_binom_two_sided_half(n10, n01 + n10), method=method)


# --------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of the accuracy difference a - b (as a fraction, not points).

    ``diff``: observed mean accuracy of a minus b over all seeds and images;
    ``ci_lo``/``ci_hi``: 95% percentile interval; ``p_value``: two-sided, with the
    +1 correction, so it is never below ``1 / (n_boot + 1)``; ``n_boot``, ``seed``.
    """

    diff: float
    ci_lo: float
    ci_hi: float
    p_value: float
    n_boot: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"diff": self.diff, "ci95": [self.ci_lo, self.ci_hi], "p_value": self.p_value,
                "n_boot": self.n_boot, "seed": self.seed}


def paired_bootstrap(
    correct_a: np.ndarray, correct_b: np.ndarray, *, n_boot: int = 10000, seed: int = 0
) -> BootstrapResult:
    """Paired bootstrap over images of the accuracy difference between two heads.

    Arrays are booleans shaped ``(seeds, images)`` (or ``(images,)`` for one seed).
    Each replicate draws the images (columns) with replacement, keeping every seed of
    a drawn image, so both the image-sampling noise and the seed-to-seed noise stay in
    the statistic: mean accuracy of a minus b over seeds and drawn images.

    The p-value is two-sided: the share of centred replicates (replicate minus the
    observed difference) at least as far from 0 as the observed difference, computed
    as ``(count + 1) / (n_boot + 1)``; identical heads give exactly 1.

    Example:
        >>> a = np.ones((2, 40), bool); b = a.copy(); b[:, :10] = False
        >>> r = paired_bootstrap(a, b, n_boot=2000, seed=1)
        >>> round(r.diff, 2), r.p_value < 0.05
        (0.25, True)
    """
    a, b = _pair(correct_a, correct_b)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    per_image = a.mean(axis=0) - b.mean(axis=0)  # (images,), mean over seeds
    diff = float(per_image.mean())
    n_images = per_image.size
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    chunk = max(1, 4_000_000 // n_images)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n_images, size=(stop - start, n_images))
        stats[start:stop] = per_image[idx].mean(axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    # tiny tolerance: identical floats from different summation orders must tie
    extreme = np.abs(stats - diff) >= abs(diff) - 1e-12
    p = (int(extreme.sum()) + 1) / (n_boot + 1)
    return BootstrapResult(diff=diff, ci_lo=float(lo), ci_hi=float(hi), p_value=min(1.0, p),
                           n_boot=int(n_boot), seed=int(seed))


# --------------------------------------------------------------------------- comparisons
def fmt_p(p: float) -> str:
    if p < 1e-4:
        return f"{p:.1e}"
    if p < 0.01:
        return f"{p:.4f}"
    return f"{p:.2f}"


def _holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """One head against the reference head on paired per-image correctness.

    ``diff`` is the accuracy of ``head`` minus ``reference`` (a fraction; ``diff_points`` in
    percentage points) with its 95% paired-bootstrap interval ``ci95``; ``bootstrap_p`` the
    bootstrap p-value, ``p_adjusted`` the same Holm-adjusted over the comparisons made;
    ``significant`` is ``p_adjusted < alpha``; ``sentence`` says it in plain words.
    """

    head: str
    reference: str
    n_seeds: int
    n_images: int
    diff: float
    ci95: tuple[float, float]
    bootstrap_p: float
    n_boot: int
    mcnemar: McNemarResult
    alpha: float
    p_adjusted: float
    significant: bool
    sentence: str

    @property
    def diff_points(self) -> float:
        return 100.0 * self.diff

    def to_dict(self) -> dict[str, Any]:
        return {"head": self.head, "reference": self.reference, "n_seeds": self.n_seeds, "n_images": self.n_images,
                "diff": self.diff, "diff_points": self.diff_points, "ci95": list(self.ci95),
                "bootstrap_p": self.bootstrap_p, "n_boot": self.n_boot, "mcnemar": self.mcnemar.to_dict(),
                "alpha": self.alpha, "p_adjusted": self.p_adjusted, "significant": self.significant,
                "sentence": self.sentence}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Comparison":
        return cls(str(d["head"]), str(d["reference"]), int(d["n_seeds"]), int(d["n_images"]), float(d["diff"]),
                   (float(d["ci95"][0]), float(d["ci95"][1])), float(d["bootstrap_p"]), int(d["n_boot"]),
                   McNemarResult(**d["mcnemar"]), float(d["alpha"]), float(d["p_adjusted"]), bool(d["significant"]),
                   str(d["sentence"]))


def compare_heads(
    correct: Mapping[str, Any],
    reference: str = "quantum",
    alpha: float = 0.05,
    *,
    n_boot: int = 10000,
    seed: int = 0,
) -> list[Comparison]:
    """Compare every head with ``reference`` on paired per-image correctness.

    ``correct`` maps head name -> booleans shaped ``(seeds, images)`` (all heads on the
    same seeds and images). Returns one :class:`Comparison` per other head.

    The decision rule is fixed in advance: the paired bootstrap is the primary test
    (it uses every seed); with several comparisons its p-values are Holm-adjusted so
    the chance of any false "significant" stays at ``alpha``. The McNemar result is
    reported beside it, and the sentence says when the two tests disagree.

    Example:
        >>> q = np.ones((1, 50), bool); lin = np.zeros((1, 50), bool)
        >>> compare_heads({"quantum": q, "linear": lin})[0].sentence[:35]
        'linear vs quantum: -100.0 points (9'
    """
    if reference not in correct:
        raise ValueError(
            f"reference head {reference!r} is not among the heads {sorted(correct)}; "
            f"pass reference= one of them"
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    ref = _as_seed_image(correct[reference], f"correct[{reference!r}]")
    tests = []
    for head in (h for h in correct if h != reference):
        arr = _as_seed_image(correct[head], f"correct[{head!r}]")
        if arr.shape != ref.shape:
            raise ValueError(
                f"head {head!r} has correctness shaped {arr.shape} but {reference!r} has {ref.shape}; "
                f"every head must be evaluated on the same seeds and images"
            )
        tests.append((head, arr.shape, paired_bootstrap(arr, ref, n_boot=n_boot, seed=seed), mcnemar_exact(arr, ref)))
    adjusted = _holm([boot.p_value for _, _, boot, _ in tests])
    rows = []
    for (head, shape, boot, mc), p_adj in zip(tests, adjusted):
        significant = bool(p_adj < alpha)
        sentence = _sentence(head, reference, alpha, boot, mc, p_adj, significant, n_comparisons=len(tests))
        rows.append(Comparison(head, reference, int(shape[0]), int(shape[1]), boot.diff, (boot.ci_lo, boot.ci_hi),
                               boot.p_value, boot.n_boot, mc, alpha, p_adj, significant, sentence))
    return rows


def _sentence(head: str, ref: str, alpha: float, boot: BootstrapResult, mc: McNemarResult, p_adjusted: float,
              significant: bool, n_comparisons: int) -> str:
    lo, hi = 100.0 * boot.ci_lo, 100.0 * boot.ci_hi
    p_txt = f"p={fmt_p(p_adjusted)}" + (f" (Holm-adjusted for {n_comparisons} comparisons)" if n_comparisons > 1 else "")
    s = f"{head} vs {ref}: {100.0 * boot.diff:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f}), {p_txt}"
    if significant:
        better = head if boot.diff > 0 else ref
        s += f" — significant at {alpha:g}; {better} is more accurate on this data"
    else:
        s += f" — not significant at {alpha:g}; the data cannot tell them apart"
    if (mc.p_value < alpha) != significant:
        s += (f". The exact McNemar test on majority votes disagrees (p={fmt_p(mc.p_value)}), "
              f"so treat this as weak evidence either way")
    return s + "."
