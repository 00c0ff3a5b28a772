"""Polynomial path fit and torch surrogate on hand-made functions (no OpenSim)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pimsk.core.path_surrogate import (
    MusclePath,
    PathSurrogate,
    PolyFit,
    PolynomialPiece,
    evaluate_surrogate,
    fit_polynomial,
    fit_surrogate,
    monomial_exponents,
    select_degree,
    write_report_csv,
)


def test_monomials_graded_prefix_and_count() -> None:
    for d in (1, 2, 3, 4):
        for deg in (0, 1, 3, 5):
            e = monomial_exponents(d, deg)
            assert len(e) == math.comb(d + deg, deg)
            assert len({tuple(r) for r in e}) == len(e)
            assert e.sum(1).max() == deg
            assert np.array_equal(monomial_exponents(d, deg + 1)[: len(e)], e)


# a hand-written cubic in two coordinates: l = 0.30 + 0.02 a - 0.01 b + 0.005 a^2 - 0.003 a b + 0.002 b^3 (m)
def _cubic(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = q[:, 0], q[:, 1]
    length = 0.30 + 0.02 * a - 0.01 * b + 0.005 * a**2 - 0.003 * a * b + 0.002 * b**3
    dl_da = 0.02 + 0.010 * a - 0.003 * b
    dl_db = -0.01 - 0.003 * a + 0.006 * b**2
    return length, -np.stack([dl_da, dl_db], 1)  # moment arm r = -dl/dq


def test_exact_recovery_of_a_cubic() -> None:
    rng = np.random.default_rng(0)
    q = rng.uniform(-1.0, 1.0, (40, 2))
    length, arm = _cubic(q)
    fit = fit_polynomial(q, length, arm, degree=3, center=np.zeros(2), half_range=np.ones(2))
    q_test = rng.uniform(-1.0, 1.0, (200, 2))
    l_test, r_test = _cubic(q_test)
    assert np.abs(fit.length(q_test) - l_test).max() < 1e-12
    assert np.abs(fit.moment_arm(q_test) - r_test).max() < 1e-12


def test_moment_arm_rows_determine_the_fit_where_lengths_alone_cannot() -> None:
    # 10 unknown coefficients (cubic in 2 variables), only 4 poses: 4 length rows are not enough,
    # 4 + 8 moment-arm rows are.
    q = np.array([[-0.9, -0.7], [0.8, -0.3], [0.1, 0.9], [-0.4, 0.2]])
    length, arm = _cubic(q)
    both = fit_polynomial(q, length, arm, 3, np.zeros(2), np.ones(2))
    only_length = fit_polynomial(q, length, None, 3, np.zeros(2), np.ones(2))
    q_test = np.random.default_rng(1).uniform(-1, 1, (100, 2))
    l_test, _ = _cubic(q_test)
    assert np.abs(both.length(q_test) - l_test).max() < 1e-10
    assert np.abs(only_length.length(q_test) - l_test).max() > 1e-4


def test_scaling_of_coordinates_is_respected() -> None:
    # same cubic, but the coordinates live on [10, 30] and [-2, 0]
    rng = np.random.default_rng(2)
    center, half = np.array([20.0, -1.0]), np.array([10.0, 1.0])
    x = rng.uniform(-1, 1, (60, 2))
    q = center + half * x
    length, arm_x = _cubic(x)
    arm_q = arm_x / half  # chain rule: dl/dq = dl/dx / half
    fit = fit_polynomial(q, length, arm_q, 3, center, half)
    assert np.abs(fit.moment_arm(q) - arm_q).max() < 1e-12


def _smooth(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A path-like analytic function (m): l = 0.25 + 0.03 sin(q0) cos(0.5 q1) + 0.01 q1, r = -dl/dq."""
    length = 0.25 + 0.03 * np.sin(q[:, 0]) * np.cos(0.5 * q[:, 1]) + 0.01 * q[:, 1]
    dl0 = 0.03 * np.cos(q[:, 0]) * np.cos(0.5 * q[:, 1])
    dl1 = -0.015 * np.sin(q[:, 0]) * np.sin(0.5 * q[:, 1]) + 0.01
    return length, -np.stack([dl0, dl1], 1)


def test_degree_selection_on_a_smooth_function() -> None:
    rng = np.random.default_rng(3)
    lo, hi = np.array([-1.2, -0.5]), np.array([1.2, 0.6])
    q = rng.uniform(lo, hi, (300, 2))
    length, arm = _smooth(q)
    fit, scores = select_degree(q, length, arm, (lo + hi) / 2, (hi - lo) / 2)
    assert fit.degree >= 5  # a cubic cannot follow sin over 2.4 rad to micrometres
    assert scores[fit.degree] == min(scores.values())
    q_test = rng.uniform(lo, hi, (500, 2))
    l_test, r_test = _smooth(q_test)
    assert np.abs(fit.length(q_test) - l_test).max() < 1e-6  # < 1 um
    assert np.abs(fit.moment_arm(q_test) - r_test).max() < 1e-5  # < 10 um


def _piecewise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A path that switches via points at x = 0.2: length jumps by 0.5 mm, moment arm by 4 mm."""
    below = 0.20 + 0.010 * x + 0.002 * x**2
    above = 0.2005 + 0.006 * x + 0.002 * x**2 + 0.001 * x**3
    length = np.where(x < 0.2, below, above)
    arm = -np.where(x < 0.2, 0.010 + 0.004 * x, 0.006 + 0.004 * x + 0.003 * x**2)
    return length, arm


def test_pieces_reproduce_a_switching_path() -> None:
    x = np.linspace(-1.0, 1.0, 81)[:, None]
    length, arm = _piecewise(x[:, 0])
    surrogate = fit_surrogate(["x"], [-1.0], [1.0], {"m": ["x"]}, x, length[:, None], arm[:, None, None],
                              ["m"], breaks={"m": {"x": [0.2]}})
    assert len(surrogate.paths[0].pieces) == 2
    xt = torch.linspace(-1.0, 1.0, 1001, dtype=torch.float64)[:, None]
    lt, rt = surrogate.lengths_and_moment_arms(xt)
    l_ref, r_ref = _piecewise(xt[:, 0].numpy())
    assert np.abs(lt[:, 0].numpy() - l_ref).max() < 1e-12
    assert np.abs(rt[:, 0, 0].numpy() - r_ref).max() < 1e-12
    # each piece is scaled to its own interval, so float32 stays accurate; moment arm = -autograd
    assert surrogate.pieces[0].n_cells == 2
    l32 = surrogate.to(torch.float32).lengths(xt.float())
    surrogate.to(torch.float64)
    away = (xt[:, 0] - 0.2).abs() > 1e-6  # float32 rounding may move a point across the switch
    assert (l32.double() - lt)[away].abs().max() < 1e-7
    xg = xt[::50].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(surrogate(xg).sum(), xg)
    assert torch.allclose(surrogate.moment_arms(xg)[:, 0, 0], -grad[:, 0], atol=1e-14)
    # without the break the best smooth polynomial cannot follow the 4 mm jump of the moment arm
    smooth = fit_surrogate(["x"], [-1.0], [1.0], {"m": ["x"]}, x, length[:, None], arm[:, None, None], ["m"])
    assert np.abs(smooth.moment_arms(xt)[:, 0, 0].numpy() - r_ref).max() > 1e-3


def _hand_surrogate() -> PathSurrogate:
    # muscle A crosses (q0, q1): l = 0.3 + 0.02 x0 - 0.01 x0 x1 + 0.004 x1^3
    # muscle B crosses q1 only:   l = 0.2 - 0.03 x1 + 0.005 x1^2, with x = (q - center) / half_range
    a = MusclePath("A", ["q0", "q1"], [PolynomialPiece([[0, 0], [1, 0], [1, 1], [0, 3]], [0.3, 0.02, -0.01, 0.004],
                                                       [0.5, -0.2], [1.5, 0.8])])
    b = MusclePath("B", ["q1"], [PolynomialPiece([[0], [1], [2]], [0.2, -0.03, 0.005], [-0.2], [0.8])])
    return PathSurrogate(["q0", "q1"], [0.5, -0.2], [1.5, 0.8], [a, b])


def test_torch_surrogate_matches_the_hand_formula_and_autograd() -> None:
    s = _hand_surrogate()
    q = torch.randn(3, 7, 2, dtype=torch.float64, requires_grad=True)
    lengths = s(q)
    assert lengths.shape == (3, 7, 2)
    x0, x1 = (q[..., 0] - 0.5) / 1.5, (q[..., 1] + 0.2) / 0.8
    la = 0.3 + 0.02 * x0 - 0.01 * x0 * x1 + 0.004 * x1**3
    lb = 0.2 - 0.03 * x1 + 0.005 * x1**2
    assert torch.allclose(lengths, torch.stack([la, lb], -1), atol=1e-15)
    arms = s.moment_arms(q)
    assert arms.shape == (3, 7, 2, 2)
    for m in range(2):
        (grad,) = torch.autograd.grad(lengths[..., m].sum(), q, retain_graph=True)
        assert torch.allclose(arms[..., m, :], -grad, atol=1e-14)
    assert torch.all(arms[..., 1, 0] == 0)  # B does not cross q0
    # differentiable: second derivatives exist and gradcheck passes
    qs = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: s.moment_arms(z), (qs,))


def test_float32_json_roundtrip_and_report(tmp_path) -> None:
    s = _hand_surrogate()
    path = tmp_path / "s.json"
    s.save_json(path)
    back = PathSurrogate.load_json(path)
    q = torch.randn(50, 2, dtype=torch.float64)
    assert torch.equal(back(q), s(q))
    s32 = PathSurrogate.load_json(path, dtype=torch.float32)
    l32 = s32(q.float())
    assert l32.dtype == torch.float32
    assert torch.allclose(l32.double(), s(q), atol=1e-6)
    rows = evaluate_surrogate(s, q.numpy(), s(q).numpy(), s.moment_arms(q).numpy(), ["q0", "q1"])
    assert [r["muscle"] for r in rows] == ["A", "B"]
    assert all(r["length_err_max_mm"] < 1e-9 and r["moment_arm_err_max_mm"] < 1e-9 for r in rows)
    write_report_csv(rows, tmp_path / "r.csv")
    header = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert "moment_arm_err_max_mm" in header


def test_bad_json_is_a_pimsk_error(tmp_path) -> None:
    from pimsk.errors import FileFormatError

    p = tmp_path / "x.json"
    p.write_text('{"format": "other"}')
    with pytest.raises(FileFormatError, match="not a path surrogate"):
        PathSurrogate.load_json(p)


# ------------------------------------------------------------------------------------------ pieces on a grid
def test_additive_exponents_have_no_cross_terms_and_keep_the_graded_prefix() -> None:
    from pimsk.core.path_surrogate import additive_exponents

    groups = [[0, 1, 2], [3]]
    for degree in (1, 4, 7):
        e = additive_exponents(groups, 4, degree)
        assert len(e) == 1 + (math.comb(3 + degree, degree) - 1) + degree
        assert len({tuple(r) for r in e}) == len(e)
        assert not np.any((e[:, :3].sum(1) > 0) & (e[:, 3] > 0))  # no hip x knee products
        assert np.array_equal(additive_exponents(groups, 4, degree + 1)[: len(e)], e)


def _separable(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """l = 0.3 + 0.02 sin(2 q0) cos(q1) + 0.01 exp(0.8 q2): a 'hip' part (q0, q1) plus a 'knee' part (q2)."""
    length = 0.3 + 0.02 * np.sin(2 * q[:, 0]) * np.cos(q[:, 1]) + 0.01 * np.exp(0.8 * q[:, 2])
    dl = np.stack([0.04 * np.cos(2 * q[:, 0]) * np.cos(q[:, 1]), -0.02 * np.sin(2 * q[:, 0]) * np.sin(q[:, 1]),
                   0.008 * np.exp(0.8 * q[:, 2])], 1)
    return length, -dl


def test_select_basis_prefers_the_additive_basis_for_a_separable_path() -> None:
    from pimsk.core.path_surrogate import select_basis

    rng = np.random.default_rng(4)
    lo, hi = np.array([-1.5, -1.5, -1.5]), np.array([1.5, 1.5, 1.5])
    q = rng.uniform(lo, hi, (120, 3))
    length, arm = _separable(q)
    center, half = (lo + hi) / 2, (hi - lo) / 2
    fit, scores, basis = select_basis(q, length, arm, center, half, groups=[[0, 1], [2]])
    assert basis == "additive" and scores[f"additive{fit.degree}"] == min(scores.values())
    assert not np.any((fit.exponents[:, :2].sum(1) > 0) & (fit.exponents[:, 2] > 0))
    q_test = rng.uniform(lo, hi, (500, 3))
    l_test, r_test = _separable(q_test)
    err_additive = np.abs(fit.moment_arm(q_test) - r_test).max()
    full, _, _ = select_basis(q, length, arm, center, half)  # no groups: the full basis only
    assert err_additive < 0.2 * np.abs(full.moment_arm(q_test) - r_test).max()
    assert np.abs(fit.length(q_test) - l_test).max() < 1e-4  # 0.1 mm


def _bend(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A segment passing close to a joint axis: l = sqrt(0.1^2 + (0.05 + 0.3 sin q)^2) over q in [-2, 2]; its
    moment arm turns within ~0.3 rad near q = -0.17 (no single polynomial of moderate degree follows it)."""
    s = 0.05 + 0.3 * np.sin(q[:, 0])
    length = np.sqrt(0.01 + s**2)
    return length, -(s * 0.3 * np.cos(q[:, 0]) / length)[:, None]


def test_splits_follow_what_one_polynomial_cannot_and_lookup_matches_the_pieces() -> None:
    q = np.linspace(-2.0, 2.0, 801)[:, None]
    length, arm = _bend(q)
    args = (["x"], [-2.0], [2.0], {"m": ["x"]}, q, length[:, None], arm[:, None, :], ["m"])
    one = fit_surrogate(*args, max_degree=9)
    split = fit_surrogate(*args, max_degree=9, splits={"x": 4})
    assert len(one.paths[0].pieces) == 1 and len(split.paths[0].pieces) == 4
    assert split.paths[0].report["basis_per_piece"][0].startswith("full")
    xt = torch.linspace(-2.0, 2.0, 2001, dtype=torch.float64)[:, None]
    _, r_ref = _bend(xt.numpy())
    err_one = np.abs(one.moment_arms(xt)[:, 0, 0].numpy() - r_ref[:, 0]).max()
    err_split = np.abs(split.moment_arms(xt)[:, 0, 0].numpy() - r_ref[:, 0]).max()
    assert err_split < 0.1 * err_one and err_split < 1e-3
    # the lookup evaluates exactly the piece whose conditions hold (brute force with the pieces themselves)
    mask = split.piece_mask(xt)
    assert torch.equal(mask.sum(-1), torch.ones(len(xt), dtype=mask.dtype))
    brute = np.zeros(len(xt))
    for k, piece in enumerate(split.paths[0].pieces):
        fit = PolyFit(np.array(piece.exponents), np.array(piece.coefficients), np.array(piece.center),
                      np.array(piece.half_range))
        brute += mask[:, k].numpy() * fit.length(xt.numpy())
    assert np.abs(split(xt)[:, 0].numpy() - brute).max() < 1e-15
    # moment arms stay the exact derivative across pieces, and second derivatives exist
    xs = torch.tensor([[-1.7], [-0.4], [0.3], [1.2]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(split(xs).sum(), xs)
    assert torch.allclose(split.moment_arms(xs)[:, 0, 0], -grad[:, 0], atol=1e-14)
    assert torch.autograd.gradcheck(lambda z: split.moment_arms(z), (xs,))


def test_muscle_ranges_restrict_the_fit_clamp_the_evaluation_and_say_so() -> None:
    rng = np.random.default_rng(5)
    q = rng.uniform(-2.0, 2.0, (400, 1))
    length, arm = _bend(q)
    s = fit_surrogate(["x"], [-2.0], [2.0], {"m": ["x"]}, q, length[:, None], arm[:, None, :], ["m"],
                      muscle_ranges={"m": {"x": (0.5, 2.0)}})
    report = s.paths[0].report
    assert report["restricted_range"] == {"x": [0.5, 2.0]} and report["n_train"] == int((q[:, 0] >= 0.5).sum())
    rows = evaluate_surrogate(s, q, length[:, None], arm[:, None, :], ["x"])
    assert rows[0]["fit_range"] == "restricted x=0.5000:2.0000" and rows[0]["n_test"] == report["n_train"]
    assert rows[0]["moment_arm_err_max_mm"] < 0.01
    # outside the range: the length of the nearest fitted point, moment arm zero (= -autograd)
    x = torch.tensor([[-1.0], [0.2], [0.6], [1.0]], dtype=torch.float64, requires_grad=True)
    lengths, arms = s.lengths_and_moment_arms(x)
    at_bound = s(torch.tensor([[0.5]], dtype=torch.float64))[0, 0]
    assert lengths[0, 0] == lengths[1, 0] == at_bound
    assert arms[0, 0, 0] == 0 and arms[1, 0, 0] == 0 and arms[2, 0, 0] != 0
    (grad,) = torch.autograd.grad(lengths.sum(), x)
    assert torch.allclose(arms[:, 0, 0], -grad[:, 0], atol=1e-14)
