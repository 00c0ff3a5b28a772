"""Lab -> OpenSim axes: a proper rotation from an axis spec, a preset name or a 3x3 matrix.

OpenSim's ground frame has Y up and, for gait models, X forward (walking direction) and Z to the right.
An axis spec lists, for OpenSim X, Y and Z in turn, the signed lab axis it equals: ``"x,z,-y"`` means
OpenSim X = lab X, OpenSim Y = lab Z (lab Z up), OpenSim Z = -lab Y. A matrix ``R`` maps lab coordinates to
OpenSim ones, ``p_osim = R @ p_lab`` (its rows are the OpenSim axes written in lab coordinates).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PRESETS: dict[str, str] = {
    "identity": "x,y,z",
    "y_up": "x,y,z",  # lab already Y up, X forward
    "z_up": "x,z,-y",  # Vicon / Qualisys default: Z up, walking along +X
    "z_up_x_forward": "x,z,-y",
    "z_up_-x_forward": "-x,z,y",
    "z_up_y_forward": "y,z,x",
    "z_up_-y_forward": "-y,z,-x",
    "y_up_z_forward": "z,y,-x",  # e.g. BTS labs: Y up, walking along +Z
    "y_up_-z_forward": "-z,y,x",
}

_AXIS = {"x": 0, "y": 1, "z": 2}


def rotation_from_spec(spec: str | Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """(3, 3) rotation lab -> OpenSim from a preset name, an axis spec (``"x,z,-y"``) or a 3x3 matrix.

    Raises ValueError (with the reason) when the spec is malformed or not a proper rotation (det +1).
    """
    if isinstance(spec, str):
        text = PRESETS.get(spec.strip().lower(), spec).replace(" ", "").lower()
        parts = text.split(",")
        if len(parts) != 3:
            raise ValueError(f"rotation {spec!r}: expected a preset ({', '.join(PRESETS)}) or three signed axes "
                             f"like 'x,z,-y'")
        rot = np.zeros((3, 3))
        for row, part in enumerate(parts):
            sign = -1.0 if part.startswith("-") else 1.0
            axis = part.lstrip("+-")
            if axis not in _AXIS:
                raise ValueError(f"rotation {spec!r}: {part!r} is not one of x, y, z, -x, -y, -z")
            rot[row, _AXIS[axis]] = sign
    else:
        rot = np.asarray(spec, dtype=float)
        if rot.shape != (3, 3):
            raise ValueError(f"rotation matrix must be 3x3, got shape {rot.shape}")
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6):
        raise ValueError(f"rotation {spec!r} is not orthonormal (each lab axis must be used once)")
    if np.linalg.det(rot) < 0:
        raise ValueError(f"rotation {spec!r} is a reflection (det -1): flip the sign of one axis")
    return rot


def apply_rotation(rot: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) lab vectors to OpenSim axes."""
    return np.asarray(vectors, dtype=float) @ np.asarray(rot, dtype=float).T
