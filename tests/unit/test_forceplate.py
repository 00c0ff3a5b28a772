"""Force-plate wrench, COP and free moment: hand-solved point loads for plate types 1-4.

The plate below is placed like plate 1 of opensim-core's walking2.c3d: plate x = -lab y, plate y = -lab x,
plate z = -lab z (into the floor), centre (0.9186, 0.611095, 0) m. A COP (x, y) in the plate frame is therefore
at centre + (-y, -x, 0) in the lab, and a plate-frame force (Fx, Fy, Fz) is (-Fy, -Fx, -Fz) in the lab.
"""

from __future__ import annotations

import numpy as np
import pytest

from pimsk.core.forceplate import plate_rotation, plate_wrench, reaction_sign

# corners in C3D quadrant order (+x+y, -x+y, -x-y, +x-y) of the plate frame, lab metres
CORNERS = np.array([
    [0.6646, 0.37932, 0.0],
    [0.6646, 0.84287, 0.0],
    [1.1726, 0.84287, 0.0],
    [1.1726, 0.37932, 0.0],
])
CENTRE = np.array([0.9186, 0.611095, 0.0])


def test_rotation_from_corners() -> None:
    rot = plate_rotation(CORNERS)
    assert np.allclose(rot, [[0, -1, 0], [-1, 0, 0], [0, 0, -1]])


def test_type2_point_load_gives_its_cop() -> None:
    # 1000 N straight into the plate at plate (0.1, 0.2) on the surface; transducer 0.04 m below the centre:
    # ORIGIN (centre relative to transducer, plate frame) = (0, 0, -0.04); the load point relative to the
    # transducer is p = (0.1, 0.2, -0.04); M_o = p x F = (0.2*1000, -0.1*1000, 0) = (200, -100, 0) N·m.
    signals = np.array([[0.0, 0.0, 1000.0, 200.0, -100.0, 0.0]])
    w = plate_wrench(2, signals, CORNERS, np.array([0.0, 0.0, -0.04]))
    assert np.allclose(w.cop_m[0], CENTRE + [-0.2, -0.1, 0.0])
    assert np.allclose(w.force_n[0], [0.0, 0.0, -1000.0])
    assert w.free_moment_nm[0] == pytest.approx(0.0, abs=1e-12)
    # about the surface centre only the load's lever arm (0.1, 0.2, 0) remains: (200, -100, 0) in the plate
    assert np.allclose(w.moment_nm[0], [100.0, -200.0, 0.0])
    assert w.loaded[0]


def test_type2_old_amti_origin_sign_and_shear_and_free_moment() -> None:
    # F = (50, -30, 800) N at plate (-0.15, 0.05) on the surface, free moment 4 N·m about plate z; transducer
    # 0.05 m below a centre offset by (0.002, -0.003): ORIGIN = (0.002, -0.003, -0.05).
    # p = (-0.15 + 0.002, 0.05 - 0.003, -0.05) = (-0.148, 0.047, -0.05)
    # p x F = (0.047*800 - (-0.05)(-30), (-0.05)(50) - (-0.148)(800), (-0.148)(-30) - 0.047*50)
    #       = (37.6 - 1.5, -2.5 + 118.4, 4.44 - 2.35) = (36.1, 115.9, 2.09); + (0, 0, 4)
    signals = np.array([[50.0, -30.0, 800.0, 36.1, 115.9, 6.09]])
    for origin in ([0.002, -0.003, -0.05], [-0.002, 0.003, 0.05]):  # C3D spec sign and old AMTI sign
        w = plate_wrench(2, signals, CORNERS, np.array(origin))
        assert np.allclose(w.cop_m[0], CENTRE + [-0.05, 0.15, 0.0]), origin
        assert w.free_moment_nm[0] == pytest.approx(4.0)
        assert np.allclose(w.free_moment_vec_nm[0], [0.0, 0.0, -4.0])  # along plate z = -lab z


def test_type1_channels_are_cop_and_free_moment() -> None:
    # Fx, Fy, Fz (N), Px, Py (m, plate frame, from the centre), Mz (N·m)
    signals = np.array([[10.0, 20.0, -700.0, 0.12, -0.08, 1.5]])
    w = plate_wrench(1, signals, CORNERS)
    assert np.allclose(w.cop_m[0], CENTRE + [0.08, -0.12, 0.0])
    assert np.allclose(w.force_n[0], [-20.0, -10.0, 700.0])
    assert w.free_moment_nm[0] == pytest.approx(1.5)
    # moment about the centre = r x F + Mz z with r = (0.12, -0.08, 0):
    # (-0.08*-700 - 0, 0 - 0.12*-700, 0.12*20 - (-0.08)*10) + (0, 0, 1.5) = (56, 84, 3.2 + 1.5)
    rot = plate_rotation(CORNERS)
    assert np.allclose(rot.T @ w.moment_nm[0], [56.0, 84.0, 4.7])


def test_type3_kistler_point_load() -> None:
    # Kistler plate: sensors at (+-a, +-b) = (+-0.2, +-0.3), surface az0 = -0.05 above the sensor plane.
    # Load F = (100, 0, 1000) N at surface point (0.05, 0.1), free moment 2 N·m. About the sensor-plane centre,
    # p = (0.05, 0.1, -0.05): p x F = (0.1*1000, -0.05*100 - 0.05*1000, -0.1*100) = (100, -55, -10); Mz = -10 + 2.
    # Vertical sensors (quadrant order 1..4) solve sum = 1000, b(f1+f2-f3-f4) = 100, a(-f1+f2+f3-f4) = -55,
    # f1-f2+f3-f4 = 0:  S=1000, A=100/0.3, B=-55/0.2
    s, a_, b_ = 1000.0, 100.0 / 0.3, -275.0
    fz = [(s + a_ - b_) / 4, (s + a_ + b_) / 4, (s - a_ + b_) / 4, (s - a_ - b_) / 4]
    # horizontal: fx12 + fx34 = 100, b (fx34 - fx12) = Mz = -8
    fx34 = (100.0 - 8.0 / 0.3) / 2
    fx12 = 100.0 - fx34
    signals = np.array([[fx12, fx34, 0.0, 0.0, *fz]])
    w = plate_wrench(3, signals, CORNERS, np.array([0.2, 0.3, -0.05]))
    assert np.allclose(w.cop_m[0], CENTRE + [-0.1, -0.05, 0.0])
    assert w.free_moment_nm[0] == pytest.approx(2.0)
    assert np.allclose(w.force_n[0], [0.0, -100.0, -1000.0])


def test_type4_calibration_matrix_then_units() -> None:
    # The type-2 load of test_type2_point_load_gives_its_cop, with moments in N·mm after calibration:
    # calibrated channels (N, N·mm) = (0, 0, 1000, 200e3, -100e3, 0); raw volts = CAL^-1 @ calibrated.
    cal = np.diag([500.0, 500.0, 1000.0, 4e5, 4e5, 3e5])
    cal[0, 1] = cal[1, 0] = 5.0  # cross-talk
    cal[3, 4] = -2e3
    calibrated = np.array([0.0, 0.0, 1000.0, 200e3, -100e3, 0.0])
    raw = np.linalg.solve(cal, calibrated)[None, :]
    w = plate_wrench(4, raw, CORNERS, np.array([0.0, 0.0, -0.04]), cal_matrix=cal,
                     channel_scale=np.array([1, 1, 1, 1e-3, 1e-3, 1e-3]))
    assert np.allclose(w.cop_m[0], CENTRE + [-0.2, -0.1, 0.0])
    with pytest.raises(ValueError, match="CAL_MATRIX"):
        plate_wrench(4, raw, CORNERS, np.zeros(3))


def test_threshold_gives_centre_and_no_free_moment() -> None:
    signals = np.array([[0.0, 0.0, 15.0, 3.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    w = plate_wrench(2, signals, CORNERS, np.zeros(3), threshold_n=20.0)
    assert not w.loaded.any()
    assert np.allclose(w.cop_m, CENTRE)
    assert np.all(w.free_moment_nm == 0.0) and np.all(np.isfinite(w.cop_m))
    w0 = plate_wrench(2, signals, CORNERS, np.zeros(3), threshold_n=0.0)  # Fz = 0 exactly: still finite
    assert w0.loaded.tolist() == [True, False] and np.all(np.isfinite(w0.cop_m))


def test_reaction_sign() -> None:
    # the largest normal force points into the plate (+plate z) -> the channels hold the action: sign -1
    push = np.array([[0.0, 0.0, 50.0, 0, 0, 0], [0.0, 0.0, 700.0, 0, 0, 0], [0.0, 0.0, -30.0, 0, 0, 0]])
    assert reaction_sign(plate_wrench(2, push, CORNERS, np.zeros(3))) == -1.0
    assert reaction_sign(plate_wrench(2, -push, CORNERS, np.zeros(3))) == 1.0


def test_random_loads_recover_cop_and_free_moment() -> None:
    rng = np.random.default_rng(7)
    rot = plate_rotation(CORNERS)
    for _ in range(20):
        cop = np.array([*rng.uniform(-0.2, 0.2, 2), 0.0])
        force = np.array([*rng.uniform(-100, 100, 2), rng.uniform(200, 1200)])
        t_free = rng.uniform(-5, 5)
        origin = np.array([*rng.uniform(-0.005, 0.005, 2), -rng.uniform(0.02, 0.06)])
        m_o = np.cross(origin + cop, force) + [0, 0, t_free]
        w = plate_wrench(2, np.concatenate([force, m_o])[None, :], CORNERS, origin)
        assert np.allclose(w.cop_m[0], CENTRE + rot @ cop)
        assert w.free_moment_nm[0] == pytest.approx(t_free)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="type 5"):
        plate_wrench(5, np.zeros((1, 8)), CORNERS)
    with pytest.raises(ValueError, match="6 channels"):
        plate_wrench(2, np.zeros((1, 5)), CORNERS)
    with pytest.raises(ValueError, match="degenerate"):
        plate_wrench(2, np.zeros((1, 6)), np.zeros((4, 3)))
