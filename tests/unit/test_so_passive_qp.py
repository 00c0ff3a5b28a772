"""The per-frame problem of pimsk.osim.so_passive (min sum |x|^p s.t. A x = b, bounds) on hand-solved cases."""

from __future__ import annotations

import numpy as np
import pytest

from pimsk.osim.so_passive import solve_frame

LO, HI = np.array([0.02, 0.02]), np.array([1.0, 1.0])


def test_interior_solution_is_the_minimum_norm_one():
    # p = 2, one joint: x = A^T b / |A|^2 when that lies inside the bounds
    x, violation, ok = solve_frame(np.array([[40.0, 10.0]]), np.array([8.0]), LO, HI)
    assert ok and violation < 1e-9
    np.testing.assert_allclose(x, np.array([40.0, 10.0]) * 8.0 / 1700.0, atol=1e-7)


def test_antagonist_rests_at_its_lower_bound():
    # the antagonist's unconstrained optimum is negative: it stays at 0.02, the agonist makes up the rest
    x, _, ok = solve_frame(np.array([[40.0, -10.0]]), np.array([8.0]), LO, HI)
    assert ok
    np.testing.assert_allclose(x, [(8.0 + 10.0 * 0.02) / 40.0, 0.02], atol=1e-7)


def test_saturated_muscle_hands_the_rest_to_the_other():
    # interior optimum 45/1700 * (40, 10) = (1.059, 0.265) breaks x1 <= 1: x1 = 1, x2 = (45 - 40) / 10
    x, _, ok = solve_frame(np.array([[40.0, 10.0]]), np.array([45.0]), LO, HI)
    assert ok
    np.testing.assert_allclose(x, [1.0, 0.5], atol=1e-7)


def test_cubic_cost_shares_by_square_root_of_strength():
    # min x1^3 + x2^3 s.t. a.x = b: 3 x_i^2 = lambda a_i -> x_i = b sqrt(a_i) / sum_j a_j sqrt(a_j)
    a = np.array([40.0, 10.0])
    x, _, ok = solve_frame(a[None, :], np.array([8.0]), LO, HI, exponent=3.0)
    assert ok
    np.testing.assert_allclose(x, 8.0 * np.sqrt(a) / np.sum(a * np.sqrt(a)), rtol=1e-5)


def test_two_joints_three_muscles():
    # x = A^T (A A^T)^-1 b = (0.1, 0.1, 0.2) for A = [[1, 0, 1], [0, 1, 1]], b = (0.3, 0.3)
    A = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    x, violation, ok = solve_frame(A, np.array([0.3, 0.3]), np.zeros(3), np.ones(3))
    assert ok and violation < 1e-9
    np.testing.assert_allclose(x, [0.1, 0.1, 0.2], atol=1e-7)


def test_unreachable_moment_gives_the_closest_bounded_answer_and_says_so():
    # at most 40 * 1 - 10 * 0.02 = 39.8 N m can be made; 100 is asked
    x, violation, ok = solve_frame(np.array([[40.0, -10.0]]), np.array([100.0]), LO, HI)
    assert not ok
    np.testing.assert_allclose(x, [1.0, 0.02], atol=1e-6)
    assert violation == pytest.approx(100.0 - 39.8, abs=1e-4)
