"""Paired significance tests on hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evaluation.significance import paired_t_test, randomization_test


def test_randomization_exact_p_for_three_equal_wins_is_two_of_eight_patterns():
    result = randomization_test([1, 1, 1], [0, 0, 0])
    assert result.p_value == pytest.approx(2 / 8)
    assert result.delta == pytest.approx(1.0)


def test_randomization_exact_p_for_mixed_differences():
    # differences 0.5, -0.2, 0, 0.5: the zero never changes; of the 8 sign patterns of (0.5, -0.2, 0.5)
    # |sum| >= 0.8 for (+,+,+), (+,-,+), (-,+,-), (-,-,-) -> 4 / 8
    result = randomization_test([0.5, 0.2, 0.0, 1.0], [0.0, 0.4, 0.0, 0.5])
    assert result.p_value == pytest.approx(0.5)
    assert result.delta == pytest.approx(0.8 / 4)
    assert result.n == 4


def test_randomization_is_symmetric_in_system_and_baseline():
    a, b = [0.1, 0.9, 0.4, 0.7, 0.3], [0.2, 0.5, 0.1, 0.6, 0.3]
    forward, backward = randomization_test(a, b), randomization_test(b, a)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.delta == pytest.approx(-backward.delta)


def test_randomization_without_any_difference_gives_p_one():
    assert randomization_test([0.3, 0.5], [0.3, 0.5]).p_value == 1.0


def test_randomization_sampled_p_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(7)
    a, b = rng.random(14), rng.random(14)
    exact = randomization_test(a, b).p_value
    sampled = randomization_test(a, b, n_resamples=20_000, seed=3, exact_max_n=0)
    again = randomization_test(a, b, n_resamples=20_000, seed=3, exact_max_n=0)
    assert sampled.p_value == again.p_value
    assert sampled.p_value == pytest.approx(exact, abs=0.02)


def test_randomization_sampled_p_for_a_large_consistent_effect_is_at_its_floor():
    result = randomization_test([1.0] * 40, [0.0] * 40, n_resamples=999, seed=0)
    assert result.p_value == pytest.approx(1 / 1000)


def test_paired_t_matches_hand_computation_and_scipy():
    # differences 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2) = 3.873, df 3
    result = paired_t_test([1, 2, 3, 4], [0, 0, 0, 0])
    assert result.statistic == pytest.approx(2.5 / (math.sqrt(5 / 3) / 2))
    assert result.p_value == pytest.approx(0.03047, abs=5e-5)
    reference = stats.ttest_rel([1, 2, 3, 4], [0, 0, 0, 0])
    assert result.p_value == pytest.approx(reference.pvalue)


def test_paired_t_degenerate_cases():
    assert paired_t_test([0.2, 0.4], [0.2, 0.4]).p_value == 1.0
    assert paired_t_test([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]).p_value == 0.0
    assert paired_t_test([1.0], [0.0]).p_value == 1.0


def test_paired_tests_reject_unequal_lengths():
    with pytest.raises(ValueError):
        randomization_test([1, 2], [1])
    with pytest.raises(ValueError):
        paired_t_test([1, 2], [1])
