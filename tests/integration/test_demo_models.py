"""The code-built generic leg and wrist models: they build, and their muscles pull the right way.

Conventions under test (see pimsk/osim/models/leg.py, wrist.py): knee_angle_r = 0 at full extension and
negative in flexion, so knee extensors have POSITIVE and knee flexors NEGATIVE moment arms;
hip_flexion_r > 0 flexion; ankle_angle_r > 0 dorsiflexion; wrist_flexion_r > 0 flexion (flexors positive);
wrist_deviation_r > 0 radial deviation. Magnitude ranges are published ones (cm): quadriceps 3-5
(Herzog & Read 1993, Buford 1997), wrist flexors 1-2 at neutral (Gonzalez 1997, Horii 1993).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytestmark = pytest.mark.opensim

DEG = math.pi / 180.0

QUADS = ["rect_fem_r", "vas_int_r", "vas_lat_r", "vas_med_r"]
KNEE_FLEXORS = ["bifemlh_r", "bifemsh_r", "semimem_r", "semiten_r", "med_gas_r", "lat_gas_r"]
WRIST_FLEXORS = ["FCR", "FCU"]
WRIST_EXTENSORS = ["ECRL", "ECRB", "ECU"]


@pytest.fixture(scope="module")
def leg(opensim_module):
    from pimsk.osim.models import build_leg_model

    model = build_leg_model()
    return model, model.initSystem()


@pytest.fixture(scope="module")
def wrist(opensim_module):
    from pimsk.osim.models import build_wrist_model

    model = build_wrist_model()
    return model, model.initSystem()


def _moment_arms_cm(model, state, coord: str, angles_deg, muscles, others_deg=None) -> np.ndarray:
    """(n_angles, n_muscles) OpenSim moment arms in cm."""
    cs = model.getCoordinateSet()
    for name, value in (others_deg or {}).items():
        cs.get(name).setValue(state, value * DEG, False)
    c = cs.get(coord)
    out = np.empty((len(angles_deg), len(muscles)))
    for i, a in enumerate(angles_deg):
        c.setValue(state, a * DEG)
        for j, m in enumerate(muscles):
            out[i, j] = 100.0 * model.getMuscles().get(m).computeMomentArm(state, c)
    return out


def _names(s) -> list[str]:
    return [s.get(i).getName() for i in range(s.getSize())]


def test_leg_builds_with_the_promised_parts(leg):
    model, _ = leg
    assert _names(model.getCoordinateSet()) == ["hip_flexion_r", "knee_angle_r", "ankle_angle_r"]
    muscles = _names(model.getMuscles())
    for m in QUADS + KNEE_FLEXORS + ["soleus_r", "tib_ant_r", "glut_max1_r", "iliacus_r", "psoas_r"]:
        assert m in muscles
    ms = model.getMuscles()
    assert all(ms.get(i).getConcreteClassName() == "DeGrooteFregly2016Muscle" for i in range(ms.getSize()))


@pytest.mark.parametrize("builder", ["leg", "wrist"])
def test_at_least_three_non_collinear_markers_per_moving_or_scaled_segment(builder, opensim_module):
    from pimsk.osim.models import BUILDERS

    model = BUILDERS[builder]()
    state = model.initSystem()
    by_body: dict[str, list[np.ndarray]] = {}
    for i in range(model.getMarkerSet().getSize()):
        mk = model.getMarkerSet().get(i)
        by_body.setdefault(mk.getParentFrame().getName(), []).append(np.array(mk.get_location().to_numpy()))
    assert set(by_body) == set(_names(model.getBodySet()))
    for body, pts in by_body.items():
        p = np.array(pts)
        assert len(p) >= 3, body
        # non-collinear: the centred points span two dimensions
        assert np.linalg.svd(p - p.mean(axis=0), compute_uv=False)[1] > 5e-3, body


def test_knee_extensors_positive_3_to_5_cm_flexors_negative(leg):
    model, state = leg
    angles = [0, -15, -30, -45, -60, -75, -90]
    others = {"hip_flexion_r": 0, "ankle_angle_r": 0}
    quads = _moment_arms_cm(model, state, "knee_angle_r", angles, QUADS, others)
    assert np.all(quads >= 3.0) and np.all(quads <= 5.0), quads
    flex = _moment_arms_cm(model, state, "knee_angle_r", angles, KNEE_FLEXORS, others)
    assert np.all(flex < -0.5), flex
    assert np.all(flex > -7.0), flex


def test_hip_and_ankle_moment_arm_signs(leg):
    model, state = leg
    hip = _moment_arms_cm(model, state, "hip_flexion_r", [-15, 0, 30, 60, 90],
                          ["rect_fem_r", "iliacus_r", "psoas_r", "glut_max1_r", "glut_max2_r", "glut_max3_r",
                           "bifemlh_r", "semimem_r", "semiten_r"], {"knee_angle_r": 0, "ankle_angle_r": 0})
    assert np.all(hip[:, :3] > 1.0), hip  # flexors
    assert np.all(hip[:, 3:] < -0.5), hip  # extensors
    ank = _moment_arms_cm(model, state, "ankle_angle_r", [-30, -15, 0, 15, 25],
                          ["soleus_r", "med_gas_r", "lat_gas_r", "tib_ant_r"], {"knee_angle_r": 0, "hip_flexion_r": 0})
    assert np.all((ank[:, :3] < -3.0) & (ank[:, :3] > -6.5)), ank  # plantarflexors (Achilles 4-6 cm)
    assert np.all((ank[:, 3] > 3.0) & (ank[:, 3] < 5.5)), ank  # tibialis anterior


def test_leg_moment_arms_close_to_opensim_gait2392(leg, data_dir):
    """Golden values from OpenSim's own gait2392 (Delp 1990 with its translating knee): the pin knee and
    the wrap-cylinder quadriceps stay within 2 cm (largest: hamstrings at 90 deg flexion, 1.9 cm)."""
    import opensim as osim

    path = data_dir / "opensim-models/Models/Gait2392_Simbody/gait2392_thelen2003muscle.osim"
    ref = osim.Model(str(path))
    ref_state = ref.initSystem()
    model, state = leg
    muscles = _names(model.getMuscles())
    for coord, angles, others in [
        ("knee_angle_r", [0, -30, -60, -90], {"hip_flexion_r": 0, "ankle_angle_r": 0}),
        ("hip_flexion_r", [-15, 0, 30, 60, 90], {"knee_angle_r": 0, "ankle_angle_r": 0}),
        ("ankle_angle_r", [-30, 0, 20], {"knee_angle_r": 0, "hip_flexion_r": 0}),
    ]:
        mine = _moment_arms_cm(model, state, coord, angles, muscles, others)
        theirs = _moment_arms_cm(ref, ref_state, coord, angles, muscles, others)
        worst = np.abs(mine - theirs).max()
        assert worst < 2.0, (coord, dict(zip(muscles, np.abs(mine - theirs).max(axis=0).round(2))))


@pytest.mark.parametrize("builder,coord,lo,hi", [
    ("leg", "knee_angle_r", -120, 10), ("leg", "hip_flexion_r", -30, 90), ("leg", "ankle_angle_r", -40, 30),
    ("wrist", "wrist_flexion_r", -70, 70),
])
def test_moment_arm_is_minus_dlength_dangle_and_paths_are_smooth(builder, coord, lo, hi, opensim_module):
    """OpenSim's moment arm equals -dL/dq of the path length over the whole range (no wrap glitches)."""
    from pimsk.osim.models import BUILDERS

    model = BUILDERS[builder]()
    state = model.initSystem()
    c = model.getCoordinateSet().get(coord)
    h = 1e-5
    for name in _names(model.getMuscles()):
        m = model.getMuscles().get(name)
        for a in np.linspace(lo + 1, hi - 1, 23):
            c.setValue(state, (a + h / DEG) * DEG)
            lp = m.getLength(state)
            c.setValue(state, (a - h / DEG) * DEG)
            lm = m.getLength(state)
            c.setValue(state, a * DEG)
            r = m.computeMomentArm(state, c)
            assert abs(r + (lp - lm) / (2 * h)) < 2e-4, (name, a, r, -(lp - lm) / (2 * h))


def test_wrist_moment_arm_signs_and_published_magnitudes(wrist):
    model, state = wrist
    neutral = _moment_arms_cm(model, state, "wrist_flexion_r", [0], WRIST_FLEXORS + WRIST_EXTENSORS)[0]
    flex, ext = neutral[:2], neutral[2:]
    assert np.all((flex >= 1.0) & (flex <= 2.0)), neutral
    assert np.all((ext <= -0.3) & (ext >= -2.0)), neutral
    sweep = _moment_arms_cm(model, state, "wrist_flexion_r", np.linspace(-70, 70, 15), WRIST_FLEXORS + WRIST_EXTENSORS)
    assert np.all(sweep[:, :2] > 1.0) and np.all(sweep[:, :2] < 2.5), sweep
    assert np.all(sweep[:, 2:] < -0.3) and np.all(sweep[:, 2:] > -2.5), sweep


def test_wrist_deviation_option_radial_and_ulnar_deviators(opensim_module):
    from pimsk.osim.models import build_wrist_model

    model = build_wrist_model(deviation=True)
    state = model.initSystem()
    assert _names(model.getCoordinateSet()) == ["wrist_flexion_r", "wrist_deviation_r"]
    dev = _moment_arms_cm(model, state, "wrist_deviation_r", [0], ["ECRL", "FCR", "ECU", "FCU"])[0]
    assert dev[0] > 0.5 and dev[1] > 0.0  # radial deviators
    assert dev[2] < -0.5 and dev[3] < -0.5  # ulnar deviators
    # positive deviation moves the hand towards the radius (+z of the forearm frame)
    mcp2 = model.getMarkerSet().get("R_MCP2")
    z0 = mcp2.getLocationInGround(state)[2]
    model.getCoordinateSet().get("wrist_deviation_r").setValue(state, 10 * DEG)
    assert mcp2.getLocationInGround(state)[2] > z0


def test_wrist_fibres_at_optimal_length_in_neutral(wrist):
    """Design rule of the wrist paths: l_MT(neutral) = l_slack + l_opt cos(pennation)."""
    model, state = wrist
    model.getCoordinateSet().get("wrist_flexion_r").setValue(state, 0.0)
    for name in WRIST_FLEXORS + WRIST_EXTENSORS:
        m = model.getMuscles().get(name)
        norm = (m.getLength(state) - m.getTendonSlackLength()) / (
            m.getOptimalFiberLength() * math.cos(m.getPennationAngleAtOptimalFiberLength()))
        assert abs(norm - 1.0) < 0.03, (name, norm)


def test_print_and_reload_leg_and_planar_pelvis(tmp_path, opensim_module):
    from pimsk.osim.models import build_leg_model

    path = tmp_path / "leg.osim"
    model = build_leg_model(path, muscles_subset=["vas_int_r", "bifemsh_r"])
    again = opensim_module.Model(str(path))
    again.initSystem()
    assert _names(again.getMuscles()) == ["vas_int_r", "bifemsh_r"]
    assert again.getNumMarkers() == model.getNumMarkers()
    planar = build_leg_model(pelvis="planar")
    planar.initSystem()
    assert _names(planar.getCoordinateSet())[:3] == ["pelvis_tilt", "pelvis_tx", "pelvis_ty"]
    with pytest.raises(ValueError, match="unknown leg muscles"):
        build_leg_model(muscles_subset=["vastus"])


def test_scale_option_scales_markers_masses_and_muscle_lengths(opensim_module):
    from pimsk.osim.models import build_leg_model

    generic = build_leg_model()
    gs = generic.initSystem()
    generic_mass = sum(generic.getBodySet().get(i).getMass() for i in range(generic.getBodySet().getSize()))
    scaled = build_leg_model(scale={"femur_r": 1.1, "tibia_r": [1.0, 0.95, 1.0], "model_mass_kg": 30.0})
    ss = scaled.initSystem()

    def dist(model, state, a, b):
        pa = np.array(model.getMarkerSet().get(a).getLocationInGround(state).to_numpy())
        pb = np.array(model.getMarkerSet().get(b).getLocationInGround(state).to_numpy())
        return np.linalg.norm(pa - pb)

    assert dist(scaled, ss, "RGTR", "RKNE") / dist(generic, gs, "RGTR", "RKNE") == pytest.approx(1.1, rel=1e-9)
    assert dist(scaled, ss, "RFIB", "RANK") / dist(generic, gs, "RFIB", "RANK") == pytest.approx(
        0.95, rel=0.01)  # y only; the markers also differ a little in x/z
    mass = sum(scaled.getBodySet().get(i).getMass() for i in range(scaled.getBodySet().getSize()))
    assert mass == pytest.approx(30.0, rel=1e-9)
    frac_g = generic.getBodySet().get("tibia_r").getMass() / generic_mass
    assert scaled.getBodySet().get("tibia_r").getMass() / mass == pytest.approx(frac_g, rel=1e-9)
    # OpenSim's Muscle::postScale keeps l_opt / l_slack in proportion to the default-pose path length
    for name in ("vas_int_r", "semimem_r"):
        g, s = generic.getMuscles().get(name), scaled.getMuscles().get(name)
        ratio = s.getLength(ss) / g.getLength(gs)
        assert ratio != pytest.approx(1.0, abs=1e-3)
        assert s.getOptimalFiberLength() / g.getOptimalFiberLength() == pytest.approx(ratio, rel=1e-6)
        assert s.getTendonSlackLength() / g.getTendonSlackLength() == pytest.approx(ratio, rel=1e-6)
