"""Paired significance tests on per-query metric values (system vs baseline on the same queries).

Both tests are two-sided and take two equal-length sequences of per-query values in the same query order.

- :func:`randomization_test` — paired randomisation (sign-flip permutation) test on the mean difference. Under
  the null hypothesis the system and baseline labels are exchangeable within each query, so every difference
  d_i = a_i − b_i is equally likely to have either sign. p = P(|mean(s ⊙ d)| ≥ |mean(d)|) over random signs s.
  With at most ``exact_max_n`` non-zero differences all 2^n sign patterns are enumerated (exact p); otherwise
  ``n_resamples`` seeded random patterns are drawn and p = (hits + 1) / (n_resamples + 1).
- :func:`paired_t_test` — t = mean(d) / (sd(d) / √n) with n − 1 degrees of freedom (sd with ddof = 1).

Example:
    >>> randomization_test([1, 1, 1], [0, 0, 0]).p_value
    0.25
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SignificanceResult:
    """Outcome of one paired test: mean difference (system − baseline), p-value, test name and sample size."""

    test: str
    delta: float
    p_value: float
    n: int
    statistic: float | None = None


def _differences(system: Sequence[float], baseline: Sequence[float]) -> np.ndarray:
    a = np.asarray(system, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired tests need two 1-D sequences of equal length; received {a.shape} and {b.shape}"
        )
    return a - b


def randomization_test(
    system: Sequence[float],
    baseline: Sequence[float],
    n_resamples: int = 10_000,
    seed: int = 0,
    exact_max_n: int = 16,
) -> SignificanceResult:
    """Two-sided paired randomisation test of mean(system − baseline) = 0.

    Args:
        system: per-query values of the system.
        baseline: per-query values of the baseline, same queries in the same order.
        n_resamples: random sign patterns when the test is not exact.
        seed: seed of the sign patterns (results are reproducible).
        exact_max_n: enumerate all sign patterns when there are at most this many non-zero differences.

    Returns:
        Mean difference and p-value (1.0 when every difference is zero).
    """
    d = _differences(system, baseline)
    n = len(d)
    delta = float(d.mean()) if n else 0.0
    nz = d[d != 0]  # zero differences do not change under a sign flip
    if nz.size == 0:
        return SignificanceResult("randomization", delta, 1.0, n, 0.0)
    observed = abs(nz.sum())
    tol = 1e-12 * max(1.0, observed)
    if nz.size <= exact_max_n:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=nz.size)))
        sums = np.abs(signs @ nz)
        p = float(np.mean(sums >= observed - tol))
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        done = 0
        while done < n_resamples:
            batch = min(4096, n_resamples - done)
            signs = rng.choice((1.0, -1.0), size=(batch, nz.size))
            hits += int(np.sum(np.abs(signs @ nz) >= observed - tol))
            done += batch
        p = (hits + 1) / (n_resamples + 1)
    return SignificanceResult("randomization", delta, min(p, 1.0), n, float(d.mean()))


def paired_t_test(system: Sequence[float], baseline: Sequence[float]) -> SignificanceResult:
    """Two-sided paired t-test of mean(system − baseline) = 0.

    Degenerate cases: fewer than two queries or all differences zero give p = 1; identical
    non-zero differences (zero variance) give p = 0.
    """
    d = _differences(system, baseline)
    n = len(d)
    delta = float(d.mean()) if n else 0.0
    if n < 2 or np.all(d == 0):
        return SignificanceResult("paired_t", delta, 1.0, n, 0.0 if n else None)
    sd = float(d.std(ddof=1))
    if sd == 0:
        return SignificanceResult("paired_t", delta, 0.0, n, math.copysign(math.inf, delta))
    t = delta / (sd / math.sqrt(n))
    p = float(2 * stats.t.sf(abs(t), df=n - 1))
    return SignificanceResult("paired_t", delta, p, n, t)
