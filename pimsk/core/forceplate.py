"""Force-plate channels -> force, moment, centre of pressure (COP) and free moment in the lab frame.

numpy only. Every input is in SI (N, N·m, m); :func:`plate_wrench` returns SI.

Conventions (C3D User Guide, "Force platforms", Motion Lab Systems, c3d.org; type 3: Kistler, "Multicomponent
force plate" formulae, also in Kistler's type 9260AA/9286 manuals):

* Plate frame. Corners 1..4 lie in the quadrants (+x,+y), (-x,+y), (-x,-y), (+x,-y) of the plate's own frame, so
  x is along c1 - c2, y along c1 - c4 (orthogonalised) and z = x × y points *into* the plate (down for a floor
  plate). ``R`` (plate -> lab) has these axes as columns; the plate centre ``c`` is the mean of the corners.
* Lab wrench = ``R`` @ plate wrench; no sign is changed. This is what the plate channels say, expressed in lab
  axes, which is also what ezc3d's ForcePlatform module and OpenSim's ``C3DFileAdapter`` return (for the Vicon
  walking files of opensim-core, the reaction on the subject). Turning it into the reaction on the foot, if a file
  stores the action, is the caller's decision (see :func:`reaction_sign`).
* ORIGIN, types 2 and 4: the vector from the transducer origin ``o`` to the centre of the working surface,
  in the plate frame; z < 0 because the transducer is below the surface. Files written with the old AMTI
  convention store the opposite vector (z > 0): then all three components are negated, as Visual3D and ezc3d do.
  The moment about the surface centre is ``M_c = M_o + (o - c) × F``.
* ORIGIN, type 3 (Kistler): ``|ORIGIN_x| = a``, ``|ORIGIN_y| = b`` (sensor offsets from the plate axes) and
  ``-|ORIGIN_z| = az0`` (surface above the sensor plane). Moments about the sensor plane centre:
  ``Mx = b (fz1 + fz2 - fz3 - fz4)``, ``My = a (-fz1 + fz2 + fz3 - fz4)``,
  ``Mz = b (fx34 - fx12) + a (fy14 - fy23)``; at the surface ``Mx' = Mx + az0 Fy``, ``My' = My - az0 Fx``.
  The optional FPCOPPOLY COP correction is not applied.
* Type 1 channels are Fx, Fy, Fz, Px, Py (COP relative to the surface centre, plate frame) and Mz (free
  moment); ORIGIN is not needed for them.
* Type 4 = type 2 after ``CAL_MATRIX`` @ (6 raw channels); the caller scales the calibrated output to SI.
* COP (plate frame, on the surface): ``x = -My'/Fz``, ``y = Mx'/Fz``; free moment about the plate z axis at the
  COP: ``Tz = Mz' - (x Fy - y Fx)``.
* Where ``|Fz| <= threshold_n`` (no contact, or noise) the COP is the plate centre and the free moment is 0, so
  no NaN or far-away COP reaches OpenSim; force and moment are left as measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLATE_TYPES = (1, 2, 3, 4)
N_CHANNELS = {1: 6, 2: 6, 3: 8, 4: 6}


@dataclass
class PlateWrench:
    """One plate's wrench in the lab frame (SI), time-first.

    force_n: (n, 3); moment_nm: (n, 3) about the surface centre; cop_m: (n, 3) on the surface;
    free_moment_nm: (n,) about the plate z axis (into the plate) at the COP; loaded: (n,) bool, |Fz| > threshold;
    centre_m: (3,) surface centre; rotation: (3, 3) plate -> lab (columns = plate axes in the lab).
    """

    force_n: np.ndarray
    moment_nm: np.ndarray
    cop_m: np.ndarray
    free_moment_nm: np.ndarray
    loaded: np.ndarray
    centre_m: np.ndarray
    rotation: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        """(3,) unit plate z axis in the lab: points into the plate (down for a floor plate)."""
        return self.rotation[:, 2]

    @property
    def free_moment_vec_nm(self) -> np.ndarray:
        """(n, 3) free moment as a lab vector (along the plate normal)."""
        return self.free_moment_nm[:, None] * self.normal[None, :]

    def scaled(self, sign: float) -> "PlateWrench":
        """Copy with force, moment and free moment multiplied by ``sign`` (+1/-1); COP unchanged."""
        return PlateWrench(self.force_n * sign, self.moment_nm * sign, self.cop_m.copy(), self.free_moment_nm * sign,
                           self.loaded.copy(), self.centre_m.copy(), self.rotation.copy())


def plate_rotation(corners_m: np.ndarray) -> np.ndarray:
    """(3, 3) rotation plate -> lab from the (4, 3) corners (C3D quadrant order); columns x, y, z."""
    c = np.asarray(corners_m, dtype=float).reshape(4, 3)
    x = c[0] - c[1]
    y = c[0] - c[3]
    z = np.cross(x, y)
    y = np.cross(z, x)
    norms = np.array([np.linalg.norm(x), np.linalg.norm(y), np.linalg.norm(z)])
    if not np.all(np.isfinite(norms)) or np.any(norms < 1e-12):
        raise ValueError("force plate corners are degenerate (coincident or collinear)")
    return np.column_stack([x / norms[0], y / norms[1], z / norms[2]])


def normalised_origin(origin_m: np.ndarray) -> np.ndarray:
    """Types 2/4: ORIGIN as the vector transducer origin -> surface centre (z <= 0), plate frame, metres."""
    o = np.asarray(origin_m, dtype=float).reshape(3)
    return -o if o[2] > 0 else o.copy()


def _type3_plate_wrench(ch: np.ndarray, origin_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kistler 8 channels (fx12, fx34, fy14, fy23, fz1..fz4) -> force, moment about the surface centre."""
    a, b = abs(float(origin_m[0])), abs(float(origin_m[1]))
    az0 = -abs(float(origin_m[2]))
    fx12, fx34, fy14, fy23, fz1, fz2, fz3, fz4 = (ch[:, i] for i in range(8))
    force = np.column_stack([fx12 + fx34, fy14 + fy23, fz1 + fz2 + fz3 + fz4])
    mx = b * (fz1 + fz2 - fz3 - fz4)
    my = a * (-fz1 + fz2 + fz3 - fz4)
    mz = b * (fx34 - fx12) + a * (fy14 - fy23)
    moment = np.column_stack([mx + az0 * force[:, 1], my - az0 * force[:, 0], mz])
    return force, moment


def plate_wrench(plate_type: int, signals: np.ndarray, corners_m: np.ndarray, origin_m: np.ndarray | None = None, *,
                 cal_matrix: np.ndarray | None = None, channel_scale: np.ndarray | None = None,
                 threshold_n: float = 0.0) -> PlateWrench:
    """Wrench of one plate in the lab frame.

    plate_type: 1..4 (C3D TYPE); signals: (n, 6) or (n, 8) channels in FORCE_PLATFORM:CHANNEL order;
    corners_m: (4, 3) lab corners in metres; origin_m: (3,) FORCE_PLATFORM:ORIGIN in metres as stored;
    cal_matrix: (6, 6) for type 4 (applied as ``cal @ raw`` before ``channel_scale``);
    channel_scale: (k,) factors taking each (calibrated) channel to SI (N, m, N·m); default ones;
    threshold_n: |Fz| at or below which COP = centre and free moment = 0.
    """
    if plate_type not in PLATE_TYPES:
        raise ValueError(f"force plate type {plate_type} is not supported (types 1, 2, 3, 4 are)")
    k = N_CHANNELS[plate_type]
    x = np.asarray(signals, dtype=float)
    if x.ndim != 2 or x.shape[1] != k:
        raise ValueError(f"type {plate_type} plate needs {k} channels, got array of shape {x.shape}")
    if plate_type == 4:
        if cal_matrix is None:
            raise ValueError("type 4 plate needs a CAL_MATRIX")
        cal = np.asarray(cal_matrix, dtype=float)
        if cal.shape != (6, 6):
            raise ValueError(f"CAL_MATRIX must be 6x6, got {cal.shape}")
        x = x @ cal.T
    if channel_scale is not None:
        x = x * np.asarray(channel_scale, dtype=float).reshape(1, k)
    origin = np.zeros(3) if origin_m is None else np.asarray(origin_m, dtype=float).reshape(3)
    rot = plate_rotation(corners_m)
    centre = np.asarray(corners_m, dtype=float).reshape(4, 3).mean(axis=0)
    n = x.shape[0]

    if plate_type == 1:
        force = x[:, 0:3]
        cop_p = np.column_stack([x[:, 3], x[:, 4], np.zeros(n)])
        tz = x[:, 5].copy()
        moment = np.cross(cop_p, force)
        moment[:, 2] += tz
        loaded = np.abs(force[:, 2]) > threshold_n
    else:
        if plate_type == 3:
            force, moment = _type3_plate_wrench(x, origin)
        else:
            force = x[:, 0:3]
            r_oc = -normalised_origin(origin)  # o - c in the plate frame
            moment = x[:, 3:6] + np.cross(np.broadcast_to(r_oc, force.shape), force)
        fz = force[:, 2]
        loaded = np.abs(fz) > threshold_n
        safe_fz = np.where(loaded, fz, 1.0)
        cop_p = np.column_stack([-moment[:, 1] / safe_fz, moment[:, 0] / safe_fz, np.zeros(n)])
        tz = moment[:, 2] - (cop_p[:, 0] * force[:, 1] - cop_p[:, 1] * force[:, 0])
    cop_p[~loaded] = 0.0
    tz = np.where(loaded, tz, 0.0)
    return PlateWrench(force_n=force @ rot.T, moment_nm=moment @ rot.T, cop_m=centre + cop_p @ rot.T,
                       free_moment_nm=tz, loaded=loaded, centre_m=centre, rotation=rot)


def reaction_sign(wrench: PlateWrench, threshold_n: float = 0.0, mask: np.ndarray | None = None) -> float:
    """+1 if the plate's force is the reaction on the subject (pushes out of the plate, against the normal), else -1.

    Decided on the sample of largest normal force among ``mask`` (default: all samples), e.g. the stance
    samples; +1 when no such sample exceeds ``threshold_n`` (an unused plate keeps its sign).
    """
    f_normal = wrench.force_n @ wrench.normal
    if mask is not None:
        f_normal = f_normal[np.asarray(mask, dtype=bool)]
    if f_normal.size == 0:
        return 1.0
    i = int(np.argmax(np.abs(f_normal)))
    if abs(f_normal[i]) <= threshold_n:
        return 1.0
    return 1.0 if f_normal[i] < 0 else -1.0
