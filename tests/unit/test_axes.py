"""Lab -> OpenSim rotation from axis specs, presets and matrices."""

from __future__ import annotations

import numpy as np
import pytest

from pimsk.core.axes import PRESETS, apply_rotation, rotation_from_spec


def test_axis_spec_maps_lab_vectors() -> None:
    rot = rotation_from_spec("x,z,-y")  # lab Z up, walking along lab X
    assert np.array_equal(rot, [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    assert np.allclose(apply_rotation(rot, [1.0, 2.0, 3.0]), [1.0, 3.0, -2.0])
    assert np.allclose(apply_rotation(rot, np.ones((4, 2, 3))).shape, (4, 2, 3))


def test_presets_are_proper_rotations() -> None:
    for name in PRESETS:
        rot = rotation_from_spec(name)
        assert np.allclose(rot @ rot.T, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0), name
    # walking along lab -X with Z up: OpenSim X = -lab X, Y = lab Z, Z = lab Y
    assert np.allclose(apply_rotation(rotation_from_spec("z_up_-x_forward"), [-1.0, 0.0, 0.0]), [1.0, 0.0, 0.0])


def test_matrix_and_errors() -> None:
    m = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]
    assert np.array_equal(rotation_from_spec(m), m)
    with pytest.raises(ValueError, match="reflection"):
        rotation_from_spec("x,y,-z")
    with pytest.raises(ValueError, match="orthonormal"):
        rotation_from_spec("x,x,z")
    with pytest.raises(ValueError, match="'w'"):
        rotation_from_spec("x,w,z")
    with pytest.raises(ValueError, match="preset"):
        rotation_from_spec("up")
    with pytest.raises(ValueError, match="3x3"):
        rotation_from_spec([[1, 0], [0, 1]])
