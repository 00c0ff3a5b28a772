"""Exact path segments of the surrogate on hand-solved geometry (no OpenSim)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pimsk.core.path_surrogate import (
    ExactSegment,
    MusclePath,
    PathSurrogate,
    PolynomialPiece,
    evaluate_surrogate,
    exact_segment_length,
    fit_surrogate,
)
from pimsk.errors import FileFormatError

# a planar hinge about z: parent point a = (0, h, 0) in F, child point b = (r, 0, 0) in M, R = Rz(q):
# s(q)^2 = r^2 + h^2 - 2 h r sin q, moment arm -ds/dq = h r cos q / s
H_M, R_M = 0.04, 0.1
HINGE = ExactSegment([0.0, H_M, 0.0], [R_M, 0.0, 0.0], [0.0, 0.0, 0.0], [[0.0, 0.0, 1.0]], ["q"], [1.0], [0.0],
                     name="hinge")


def test_hinge_length_and_moment_arm_are_the_hand_formula() -> None:
    q = np.linspace(-2.0, 2.0, 41)[:, None]
    length, slope = exact_segment_length(HINGE, ["q"], q)
    s = np.sqrt(R_M**2 + H_M**2 - 2 * H_M * R_M * np.sin(q[:, 0]))
    assert np.abs(length - s).max() < 1e-15
    assert np.abs(-slope[:, 0] - H_M * R_M * np.cos(q[:, 0]) / s).max() < 1e-15


# three body-fixed rotations (one constant, one scaled) and a constant translation, against scipy's rotations
SEGMENT = ExactSegment([0.03, -0.02, 0.11], [-0.05, 0.21, 0.04], [0.01, -0.03, 0.02],
                       [[0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]], ["a", None, "b"], [1.0, 0.0, -0.5],
                       [0.1, 0.3, 0.2], name="three")


def _scipy_length(q: np.ndarray) -> np.ndarray:
    out = []
    for a, b in q:
        angles = [1.0 * a + 0.1, 0.3, -0.5 * b + 0.2]
        axes = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
        rot = Rotation.identity()
        for axis, angle in zip(axes, angles):
            rot = rot * Rotation.from_rotvec(angle * axis)  # body-fixed: each turn about the turned axis
        out.append(np.linalg.norm(np.array(SEGMENT.parent_point) - rot.apply(SEGMENT.child_point)
                                  - np.array(SEGMENT.translation)))
    return np.array(out)


def test_body_fixed_rotations_match_scipy_and_finite_differences() -> None:
    q = np.random.default_rng(0).uniform(-2.0, 2.0, (50, 2))
    length, slope = exact_segment_length(SEGMENT, ["a", "b"], q)
    assert np.abs(length - _scipy_length(q)).max() < 1e-15
    step = 1e-6
    for j in range(2):
        e = np.zeros(2)
        e[j] = step
        central = (_scipy_length(q + e) - _scipy_length(q - e)) / (2 * step)
        assert np.abs(slope[:, j] - central).max() < 1e-9


def _surrogate() -> PathSurrogate:
    # l = s(q) + 0.3 + 0.02 x_k - 0.004 x_k^2 with x_k = knee / 1.5: a segment across "hip" plus a knee polynomial
    path = MusclePath("m", ["a", "b", "knee"], [PolynomialPiece([[0, 0, 0], [0, 0, 1], [0, 0, 2]],
                                                                [0.3, 0.02, -0.004], [0.0, 0.0, 0.0],
                                                                [2.0, 2.0, 1.5])], segments=[SEGMENT])
    return PathSurrogate(["a", "b", "knee"], [0.0, 0.0, 0.0], [2.0, 2.0, 1.5], [path])


def test_surrogate_adds_the_segment_and_its_moment_arms_are_minus_autograd(tmp_path: Path) -> None:
    surrogate = _surrogate()
    q = torch.tensor(np.random.default_rng(1).uniform(-1.5, 1.5, (30, 3)), requires_grad=True)
    lengths, arms = surrogate.lengths_and_moment_arms(q)
    x = q[:, 2].detach().numpy() / 1.5
    expected = _scipy_length(q[:, :2].detach().numpy()) + 0.3 + 0.02 * x - 0.004 * x**2
    assert np.abs(lengths[:, 0].detach().numpy() - expected).max() < 1e-15
    assert torch.equal(surrogate(q), lengths)
    (grad,) = torch.autograd.grad(lengths.sum(), q, create_graph=True)
    torch.testing.assert_close(arms[:, 0], -grad, rtol=0.0, atol=1e-15)
    few = q[:5].detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda z: surrogate.lengths_and_moment_arms(z)[1], (few,))
    # JSON keeps the segment; float32 within 0.01 mm
    path = tmp_path / "s.json"
    surrogate.save_json(path)
    back = PathSurrogate.load_json(path)
    assert back.paths[0].segments == [SEGMENT]
    assert torch.equal(back(q), lengths)
    l32, r32 = PathSurrogate.load_json(path, dtype=torch.float32).lengths_and_moment_arms(q.float())
    assert (l32.double() - lengths).abs().max() < 1e-5 and (r32.double() - arms).abs().max() < 1e-5
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="newer"):
        PathSurrogate.load_json(path)


def test_fit_with_a_segment_recovers_synthetic_truth_that_a_polynomial_alone_cannot() -> None:
    truth = _surrogate()
    rng = np.random.default_rng(2)
    lo, hi = [-2.0, -2.0, -1.5], [2.0, 2.0, 1.5]
    q_train, q_test = rng.uniform(lo, hi, (600, 3)), rng.uniform(lo, hi, (300, 3))
    with torch.no_grad():
        (l_tr, r_tr), (l_te, r_te) = (truth.lengths_and_moment_arms(torch.as_tensor(x)) for x in (q_train, q_test))
    crossed, joints = {"m": ["a", "b", "knee"]}, {"a": "hip", "b": "hip", "knee": "knee"}
    rows = {}
    for label, segments in (("poly", None), ("exact", {"m": [asdict(SEGMENT)]})):
        fitted = fit_surrogate(["a", "b", "knee"], lo, hi, crossed, q_train, l_tr.numpy(), r_tr.numpy(), ["m"],
                               joints=joints, segments=segments, max_degree=4)
        rows[label] = evaluate_surrogate(fitted, q_test, l_te.numpy(), r_te.numpy(), ["a", "b", "knee"])[0]
    assert fitted.paths[0].report["exact_segments"] == ["three"]
    assert rows["exact"]["length_err_max_mm"] < 1e-9 and rows["exact"]["moment_arm_err_max_mm"] < 1e-9
    assert rows["poly"]["moment_arm_err_max_mm"] > 1e3 * rows["exact"]["moment_arm_err_max_mm"]
    with pytest.raises(ValueError, match="not fitted"):
        fit_surrogate(["a", "b", "knee"], lo, hi, crossed, q_train, l_tr.numpy(), r_tr.numpy(), ["m"],
                      segments={"other": [SEGMENT]})
    bad = ExactSegment([0.0, 0.0, 0.1], [0.1, 0.0, 0.0], [0.0, 0.0, 0.0], [[0.0, 0.0, 1.0]], ["elbow"], [1.0], [0.0])
    with pytest.raises(ValueError, match="not a coordinate the muscle crosses"):
        fit_surrogate(["a", "b", "knee"], lo, hi, crossed, q_train, l_tr.numpy(), r_tr.numpy(), ["m"],
                      segments={"m": [bad]})
