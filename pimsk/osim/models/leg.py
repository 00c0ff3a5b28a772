"""Generic right lower limb (pelvis, femur, tibia, foot; hip, knee, ankle flexion) built in code.

Sources (numbers typed in here; no model file is copied or read at run time):

- Geometry, joint centres, muscle attachment points and muscle parameters (maximal isometric force,
  optimal fibre length, tendon slack length, pennation): Delp SL, Loan JP, Hoy MG, Zajac FE, Topp EL,
  Rosen JM (1990) "An interactive graphics-based model of the lower extremity to study orthopaedic
  surgical procedures", IEEE Trans Biomed Eng 37:757-767, with the values as distributed in OpenSim's
  gait2392 model (Delp SL et al. 2007, IEEE Trans Biomed Eng 54:1940-1950), in the body frames of that
  model (femur frame at the hip centre, tibia frame at the knee centre, x anterior, y proximal, z right).
- Segment masses, centres of mass and radii of gyration: de Leva P (1996) "Adjustments to
  Zatsiorsky-Seluyanov's segment inertia parameters", J Biomech 29:1223-1230 (male values), for a
  75 kg generic subject and the Delp 1990 segment lengths.
- Extensor moment arms checked against Buford WL et al. (1997) IEEE Trans Rehabil Eng 5:367-379 and
  Herzog W & Read LJ (1993) J Anat 182:213-230 (quadriceps 3.5-5 cm over 0-90 degrees of flexion).

Simplifications (documented on purpose):

- Pelvis fixed to the ground (``pelvis="weld"``) or on a planar joint (``pelvis="planar"``: tilt,
  tx, ty; lock or prescribe it in a simulation).
- **Pin knee**: one rotation about the femur z axis at the Delp 1990 knee centre at full extension,
  (-0.0045, -0.3958, 0) m in the femur frame; no tibiofemoral translation. The patella is taken as
  fixed to the tibia, 4.5 cm anterior and 1.5 cm proximal to the knee centre (Delp's full-extension
  insertion, 5.55/2.53 cm, moved closer so that the pin knee's extensor moment arm stays within the
  published 3.5-5 cm), and the quadriceps wrap over a cylinder on the distal femur centred on the
  knee axis (radius 3.6 cm, anterior quadrant only) in place of Delp's moving/conditional path
  points, so the extensor path is smooth.
- The gastrocnemius heads arise on the posterior femur 1.6 cm above the knee axis (Delp's condylar via
  point dropped) so their knee moment arm stays a flexor one without a conditional point; the
  conditional hamstring and iliopsoas via points are dropped (fixed points kept).
- Talus and calcaneus are one rigid ``calcn_r`` body (no subtalar/mtp joints); its frame origin is the
  ankle centre; Delp's calcaneus points are shifted by the talus-to-calcaneus offset. The ankle is a
  pin about the tibia z axis (Delp's axis is 10 degrees oblique).

Coordinate conventions (radians inside; all rotations about the body z axes, right-hand rule):

- ``hip_flexion_r`` > 0: flexion (range -30..90 deg; beyond ~95 deg the iliopsoas path, without a
  wrap over the pelvic brim, crosses the hip centre).
- ``knee_angle_r`` = 0 at full extension, **negative in flexion** (range -120..10 deg), as in Delp
  1990/OpenSim gait models. Knee *extensors therefore have positive* moment arms, flexors negative.
- ``ankle_angle_r`` > 0: dorsiflexion (range -40..30 deg); plantarflexors have negative moment arms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from pimsk.osim.models.common import (
    GRAVITY_M_S2,
    MarkerSpec,
    MuscleSpec,
    SegmentSpec,
    Vec,
    WrapCylinderSpec,
    add_markers,
    add_muscle,
    add_pin,
    add_wrap_cylinder,
    finalize,
    inertia_from_radii,
    make_body,
    vec3,
)

DEG = math.pi / 180.0
BODY_MASS_KG = 75.0  # generic subject

# --- geometry (Delp 1990, metres, parent body frames) ---------------------------------------------
HIP_IN_PELVIS_M: Vec = (-0.0707, -0.0661, 0.0835)
KNEE_IN_FEMUR_M: Vec = (-0.0045, -0.3958, 0.0)  # knee centre at full extension
ANKLE_IN_TIBIA_M: Vec = (0.0, -0.43, 0.0)
CALCN_IN_TALUS_M: Vec = (-0.04877, -0.04195, 0.00792)  # calcaneus frame origin from the ankle centre
THIGH_LENGTH_M = 0.3958
SHANK_LENGTH_M = 0.43
FOOT_LENGTH_M = 0.28  # heel to toe tip (Delp 1990 foot geometry)
PELVIS_IN_GROUND_M: Vec = (0.0, 0.95, 0.0)  # standing height of the pelvis origin (feet at the floor)

#: Patella as a point of the tibia (Delp 1990 quadriceps insertion at full extension), per muscle z.
PATELLA_IN_TIBIA_M = (0.045, 0.015)


def _calcn(p: Vec) -> Vec:
    """Point given in Delp's calcaneus frame -> the merged foot frame (origin at the ankle centre)."""
    return (p[0] + CALCN_IN_TALUS_M[0], p[1] + CALCN_IN_TALUS_M[1], p[2] + CALCN_IN_TALUS_M[2])


def _patella(z: float) -> Vec:
    return (PATELLA_IN_TIBIA_M[0], PATELLA_IN_TIBIA_M[1], z)


def segments(body_mass_kg: float = BODY_MASS_KG) -> list[SegmentSpec]:
    """Segment inertial parameters after de Leva 1996 (male): mass fraction, CoM fraction from the
    proximal joint, radii of gyration as fractions of length, assigned to the body axes x (about the
    sagittal axis), y (longitudinal) and z (transverse, the flexion axis)."""
    m = body_mass_kg
    # pelvis = de Leva lower trunk (11.17 %, length 0.1457 m, radii 0.615/0.587/0.551); it is
    # fixed to the ground in the demo tasks, so its inertia only matters for a planar pelvis.
    pelvis_m = 0.1117 * m
    thigh_m = 0.1416 * m
    shank_m = 0.0433 * m
    foot_m = 0.0137 * m
    foot_com_from_heel = 0.4415 * FOOT_LENGTH_M
    heel = _calcn((-0.02, 0.02, 0.0))
    return [
        SegmentSpec("pelvis", pelvis_m, (-0.0707, 0.0, 0.0),
                    inertia_from_radii(pelvis_m, 0.1457, (0.615, 0.587, 0.551))),
        SegmentSpec("femur_r", thigh_m, (0.0, -0.4095 * THIGH_LENGTH_M, 0.0),
                    inertia_from_radii(thigh_m, THIGH_LENGTH_M, (0.329, 0.149, 0.329))),
        SegmentSpec("tibia_r", shank_m, (0.0, -0.4459 * SHANK_LENGTH_M, 0.0),
                    inertia_from_radii(shank_m, SHANK_LENGTH_M, (0.255, 0.103, 0.249))),
        # foot long axis is x: longitudinal radius about x, sagittal about y, transverse about z
        SegmentSpec("calcn_r", foot_m, (heel[0] + foot_com_from_heel, -0.03, 0.0),
                    inertia_from_radii(foot_m, FOOT_LENGTH_M, (0.124, 0.257, 0.245))),
    ]


def wrap_cylinders() -> list[WrapCylinderSpec]:
    """Knee-extensor wrap: cylinder on the distal femur, centred on the pin-knee axis, anterior side."""
    return [
        WrapCylinderSpec("knee_extensor_wrap_r", "femur_r", KNEE_IN_FEMUR_M, radius_m=0.036,
                         length_m=0.12, quadrant="+x"),
    ]


def muscles() -> list[MuscleSpec]:
    """The 17 right-leg muscles: (F_max N, l_opt m, l_slack m, pennation) from Delp 1990 as in gait2392;
    points in Delp's body frames (see the module docstring for the changes). With these paths the
    normalised fibre lengths stay within ~0.15 l_opt of gait2392's at standing and seated poses."""
    knee = ("knee_extensor_wrap_r",)
    return [
        MuscleSpec("rect_fem_r", 1169.0, 0.114, 0.310, 5 * DEG,
                   (("pelvis", (-0.0295, -0.0311, 0.0968)), ("tibia_r", _patella(0.0014))), knee),
        MuscleSpec("vas_int_r", 1365.0, 0.087, 0.136, 3 * DEG,
                   (("femur_r", (0.0290, -0.1924, 0.0310)), ("femur_r", (0.0335, -0.2084, 0.0285)),
                    ("tibia_r", _patella(0.0018))), knee),
        MuscleSpec("vas_lat_r", 1871.0, 0.084, 0.157, 5 * DEG,
                   (("femur_r", (0.0048, -0.1854, 0.0349)), ("femur_r", (0.0269, -0.2591, 0.0409)),
                    ("tibia_r", _patella(0.0165))), knee),
        MuscleSpec("vas_med_r", 1294.0, 0.089, 0.126, 5 * DEG,
                   (("femur_r", (0.0140, -0.2099, 0.0188)), ("femur_r", (0.0356, -0.2769, 0.0009)),
                    ("tibia_r", _patella(-0.0146))), knee),
        MuscleSpec("bifemlh_r", 896.0, 0.109, 0.326, 0.0,
                   (("pelvis", (-0.12596, -0.10257, 0.06944)), ("tibia_r", (-0.0301, -0.0360, 0.02943)),
                    ("tibia_r", (-0.0234, -0.0563, 0.0343)))),
        MuscleSpec("bifemsh_r", 804.0, 0.173, 0.089, 23 * DEG,
                   (("femur_r", (0.0050, -0.2111, 0.0234)), ("tibia_r", (-0.0301, -0.0360, 0.02943)),
                    ("tibia_r", (-0.0234, -0.0563, 0.0343)))),
        MuscleSpec("semimem_r", 1288.0, 0.080, 0.359, 15 * DEG,
                   (("pelvis", (-0.1192, -0.09747, 0.07151)), ("tibia_r", (-0.0270, -0.04771, -0.01957)))),
        MuscleSpec("semiten_r", 410.0, 0.201, 0.2555, 5 * DEG,
                   (("pelvis", (-0.12635, -0.10988, 0.06039)), ("tibia_r", (-0.03322, -0.05282, -0.02288)),
                    ("tibia_r", (-0.0113, -0.0746, -0.0245)), ("tibia_r", (0.0027, -0.0956, -0.0193)))),
        MuscleSpec("med_gas_r", 1558.0, 0.060, 0.390, 17 * DEG,
                   (("femur_r", (-0.0260, -0.3800, -0.0235)), ("calcn_r", _calcn((0.0, 0.031, -0.0053))))),
        MuscleSpec("lat_gas_r", 683.0, 0.064, 0.380, 8 * DEG,
                   (("femur_r", (-0.0260, -0.3800, 0.0272)), ("calcn_r", _calcn((0.0, 0.031, -0.0053))))),
        MuscleSpec("soleus_r", 3549.0, 0.050, 0.250, 25 * DEG,
                   (("tibia_r", (-0.0024, -0.1533, 0.0071)), ("calcn_r", _calcn((0.0, 0.031, -0.0053))))),
        MuscleSpec("tib_ant_r", 905.0, 0.098, 0.223, 5 * DEG,
                   (("tibia_r", (0.0179, -0.1624, 0.0115)), ("tibia_r", (0.0329, -0.3951, -0.0177)),
                    ("calcn_r", _calcn((0.1166, 0.0178, -0.0305))))),
        MuscleSpec("glut_max1_r", 573.0, 0.142, 0.125, 5 * DEG,
                   (("pelvis", (-0.1195, 0.0612, 0.0700)), ("pelvis", (-0.1291, 0.0012, 0.0886)),
                    ("femur_r", (-0.0457, -0.0248, 0.0392)), ("femur_r", (-0.0277, -0.0566, 0.0470)))),
        MuscleSpec("glut_max2_r", 819.0, 0.147, 0.127, 0.0,
                   (("pelvis", (-0.1349, 0.0176, 0.0563)), ("pelvis", (-0.1376, -0.0520, 0.0914)),
                    ("femur_r", (-0.0426, -0.0530, 0.0293)), ("femur_r", (-0.0156, -0.1016, 0.0419)))),
        MuscleSpec("glut_max3_r", 552.0, 0.144, 0.145, 5 * DEG,
                   (("pelvis", (-0.1556, -0.0314, 0.0058)), ("pelvis", (-0.1529, -0.1052, 0.0403)),
                    ("femur_r", (-0.0299, -0.1041, 0.0135)), ("femur_r", (-0.0060, -0.1419, 0.0411)))),
        MuscleSpec("iliacus_r", 1073.0, 0.100, 0.100, 7 * DEG,
                   (("pelvis", (-0.0674, 0.0365, 0.0854)), ("pelvis", (-0.0258, -0.0550, 0.0811)),
                    ("femur_r", (0.0017, -0.0543, 0.0057)), ("femur_r", (-0.0193, -0.0621, 0.0129)))),
        MuscleSpec("psoas_r", 1113.0, 0.100, 0.160, 8 * DEG,
                   (("pelvis", (-0.0647, 0.0887, 0.0289)), ("pelvis", (-0.0238, -0.0570, 0.0759)),
                    ("femur_r", (0.0016, -0.0507, 0.0038)), ("femur_r", (-0.0188, -0.0597, 0.0104)))),
    ]


def markers() -> list[MarkerSpec]:
    """Skin markers (Plug-in-Gait-like names; >= 3 non-collinear per segment). Locations follow the
    OpenSim gait2354 scaling marker set's anatomical landmarks in Delp's frames; the trochanter,
    fibular head and malleoli are placed on those landmarks."""
    return [
        MarkerSpec("RASI", "pelvis", (0.0200, 0.0300, 0.1280)),
        MarkerSpec("LASI", "pelvis", (0.0200, 0.0300, -0.1280)),
        MarkerSpec("RPSI", "pelvis", (-0.1550, 0.0350, 0.0450)),
        MarkerSpec("LPSI", "pelvis", (-0.1550, 0.0350, -0.0450)),
        MarkerSpec("RGTR", "femur_r", (-0.0050, -0.0100, 0.0900)),
        MarkerSpec("RTHI", "femur_r", (0.0180, -0.2000, 0.0640)),
        MarkerSpec("RTHF", "femur_r", (0.0800, -0.2500, 0.0047)),
        MarkerSpec("RKNE", "femur_r", (-0.0045, -0.4040, 0.0500)),
        MarkerSpec("RKNM", "femur_r", (-0.0045, -0.4040, -0.0500)),
        MarkerSpec("RFIB", "tibia_r", (0.0050, -0.0650, 0.0500)),
        MarkerSpec("RTTB", "tibia_r", (0.0500, -0.0800, 0.0000)),
        MarkerSpec("RSHN", "tibia_r", (0.0200, -0.1300, 0.0500)),
        MarkerSpec("RANK", "tibia_r", (-0.0050, -0.4100, 0.0530)),
        MarkerSpec("RMED", "tibia_r", (0.0060, -0.3888, -0.0380)),
        MarkerSpec("RHEE", "calcn_r", _calcn((-0.0200, 0.0200, 0.0000))),
        MarkerSpec("RMT5", "calcn_r", _calcn((0.1900, 0.0000, 0.0650))),
        MarkerSpec("RMT1", "calcn_r", _calcn((0.1900, 0.0050, -0.0400))),
        MarkerSpec("RTOE", "calcn_r", _calcn((0.2600, 0.0050, 0.0000))),
    ]


COORDINATES = ("hip_flexion_r", "knee_angle_r", "ankle_angle_r")
MUSCLES = tuple(m.name for m in muscles())


def build_leg_model(path: Path | str | None = None, *, scale: dict | None = None,
                    muscles_subset: Iterable[str] | None = None, pelvis: str = "weld",
                    body_mass_kg: float = BODY_MASS_KG, compliant_tendon: bool = True,
                    name: str = "pimsk_leg_r"):
    """Build (and optionally print to ``path``) the generic right-leg model.

    scale: per-body scale factors ``{body: s | (sx, sy, sz)}`` applied with OpenSim's Model scaling
    (see :func:`pimsk.osim.models.scaling.scale_model`; key ``"model_mass_kg"`` sets the total mass
    of the model, i.e. of the segments it has, not the subject's body mass).
    muscles_subset: keep only these muscles (e.g. ``["vas_int_r", "bifemsh_r"]`` for a determinate
    agonist-antagonist pair). pelvis: ``"weld"`` (fixed to the ground) or ``"planar"``.
    Returns the finalized ``opensim.Model`` (``initSystem()`` has been called once).
    """
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    if pelvis not in ("weld", "planar"):
        raise ValueError(f"pelvis must be 'weld' or 'planar', not {pelvis!r}")
    keep = None if muscles_subset is None else list(muscles_subset)
    if keep is not None:
        unknown = sorted(set(keep) - set(MUSCLES))
        if unknown:
            raise ValueError(f"unknown leg muscles {unknown}; known: {', '.join(MUSCLES)}")

    model = osim.Model()
    model.setName(name)
    model.setGravity(osim.Vec3(0.0, -GRAVITY_M_S2, 0.0))
    bodies = {}
    for seg in segments(body_mass_kg):
        bodies[seg.name] = make_body(seg)
        model.addBody(bodies[seg.name])

    ground = model.getGround()
    if pelvis == "weld":
        model.addJoint(osim.WeldJoint("ground_pelvis", ground, vec3(PELVIS_IN_GROUND_M), vec3((0, 0, 0)),
                                      bodies["pelvis"], vec3((0, 0, 0)), vec3((0, 0, 0))))
    else:
        joint = osim.PlanarJoint("ground_pelvis", ground, vec3((0, 0, 0)), vec3((0, 0, 0)),
                                 bodies["pelvis"], vec3((0, 0, 0)), vec3((0, 0, 0)))
        for i, (cname, lo, hi, default) in enumerate((
                ("pelvis_tilt", -90 * DEG, 90 * DEG, 0.0), ("pelvis_tx", -5.0, 5.0, PELVIS_IN_GROUND_M[0]),
                ("pelvis_ty", -1.0, 2.0, PELVIS_IN_GROUND_M[1]))):
            c = joint.upd_coordinates(i)
            c.setName(cname)
            c.setRangeMin(lo)
            c.setRangeMax(hi)
            c.setDefaultValue(default)
        model.addJoint(joint)

    add_pin(model, "hip_r", bodies["pelvis"], HIP_IN_PELVIS_M, bodies["femur_r"], "hip_flexion_r",
            (-30 * DEG, 90 * DEG))
    add_pin(model, "knee_r", bodies["femur_r"], KNEE_IN_FEMUR_M, bodies["tibia_r"], "knee_angle_r",
            (-120 * DEG, 10 * DEG))
    add_pin(model, "ankle_r", bodies["tibia_r"], ANKLE_IN_TIBIA_M, bodies["calcn_r"], "ankle_angle_r",
            (-40 * DEG, 30 * DEG))

    for cyl in wrap_cylinders():
        add_wrap_cylinder(model, cyl)
    for spec in muscles():
        if keep is None or spec.name in keep:
            add_muscle(model, spec, compliant_tendon=compliant_tendon)
    add_markers(model, markers())

    if scale:
        from pimsk.osim.models.scaling import scale_model

        model.finalizeConnections()
        model = scale_model(model, scale)
    return finalize(model, path)

