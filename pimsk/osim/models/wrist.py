"""Generic right forearm and hand (wrist flexion/extension, optional deviation) built in code.

Sources (numbers typed in here; no model file is copied or read at run time):

- Muscle parameters of FCR, FCU, ECRL, ECRB, ECU (maximal isometric force, optimal fibre length,
  tendon slack length, pennation at optimal fibre length): Holzbaur KRS, Murray WM, Delp SL (2005)
  "A model of the upper extremity for simulating musculoskeletal surgery and analyzing neuromuscular
  control", Ann Biomed Eng 33:829-840, Table 2 (architecture from Lieber et al. 1990/1992), as used in
  the MoBL-ARMS model (Saul et al. 2015).
- Wrist flexion moment arms the paths are shaped to: Gonzalez RV, Buchanan TS, Delp SL (1997)
  "How muscle architecture and moment arms affect wrist flexion-extension moments", J Biomech
  30:705-712, and the tendon-excursion data of Horii E et al. (1993) J Hand Surg Am 18:83-90
  (at neutral: FCR ~1.5 cm, FCU ~1.6 cm flexor; ECRB ~1.2 cm, ECRL ~0.9 cm, ECU ~0.6 cm extensor).
- Segment inertial parameters: de Leva P (1996) J Biomech 29:1223-1230 (male forearm and hand: mass
  1.62 % and 0.61 % of body mass, forearm length 268.9 mm with centre of mass at 45.74 %, hand length
  (wrist centre to the third metacarpal head) 86.2 mm with centre of mass at 79.0 %, radii of gyration).

Posture and frames (documented choice): the forearm is **fixed to the ground, vertical, hand
below the wrist** (arm hanging at the side, elbow extended, forearm supinated as in the anatomical
position), so gravity pulls the hand back towards neutral in both flexion and extension. Forearm
frame origin at the elbow centre, x palmar (anterior), y proximal (wrist -> elbow), z radial (lateral
for the right arm); the wrist centre (capitate head) is 268.9 mm distal. Hand frame origin at the wrist
centre, same axes at neutral.

Paths: origins near the humeral epicondyles (flexors medial, extensors lateral, ECRL towards the
lateral supracondylar ridge), fixed to the forearm because the elbow does not move; their heights along
the forearm axis (within 2.5 cm of the elbow axis) are set so that the MTU length with the wrist in
neutral equals l_slack + l_opt cos(pennation), i.e. the published fibre and tendon lengths put the
fibres at optimal length in neutral. Each tendon passes a retinaculum via point 2 cm proximal to the
wrist centre on the forearm, wraps (palmar side for the flexors, dorsal for the extensors) over its own
cylinder centred on the flexion axis whose radius is the published neutral moment arm, and runs through
a carpal via point 2 cm distal to the centre to its metacarpal insertion on the hand. Convex-side
bending keeps the moment arm at the radius; concave-side bending lets it grow by up to ~0.4 cm at
70 degrees (bow-stringing).

Coordinates: ``wrist_flexion_r`` > 0 is flexion (palm towards the forearm; range -70..70 deg);
flexors have positive, extensors negative moment arms. Optional ``wrist_deviation_r`` > 0 is radial
deviation (range -25..15 deg), a pin distal to the flexion pin through a light carpal body.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
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
BODY_MASS_KG = 75.0
FOREARM_LENGTH_M = 0.2689  # elbow centre -> wrist centre (de Leva 1996, male)
HAND_LENGTH_M = 0.0862  # wrist centre -> third metacarpal head (de Leva 1996, male)
ELBOW_IN_GROUND_M: Vec = (0.0, 1.05, 0.20)  # standing subject, arm hanging at the side
WRIST_IN_FOREARM_M: Vec = (0.0, -FOREARM_LENGTH_M, 0.0)
VIA_PROXIMAL_M = 0.020  # retinaculum via point, proximal to the wrist centre
VIA_DISTAL_M = 0.020  # carpal via point, distal to the wrist centre
VIA_DEPTH = 0.6  # via points' palmar/dorsal offset as a fraction of the wrap radius


@dataclass(frozen=True)
class _WristMuscle:
    name: str
    f_max_n: float
    l_opt_m: float
    l_slack_m: float
    pennation_deg: float
    origin_m: Vec  # forearm frame
    moment_arm_m: float  # published neutral flexion moment arm magnitude (wrap radius)
    flexor: bool
    z_m: float  # radial (+) / ulnar (-) offset of the tendon at the wrist
    insertion_m: Vec  # hand frame


def _table() -> list[_WristMuscle]:
    """Holzbaur 2005 Table 2 parameters; origins/insertions on the landmarks named in the docstring."""
    return [
        _WristMuscle("FCR", 407.9, 0.0628, 0.2440, 3.0, (0.0050, 0.0010, -0.0350), 0.015, True, 0.008,
                     (0.0140, -0.0300, 0.0100)),
        _WristMuscle("FCU", 479.8, 0.0509, 0.2650, 12.0, (-0.0050, 0.0110, -0.0380), 0.016, True, -0.018,
                     (0.0150, -0.0300, -0.0200)),
        _WristMuscle("ECRL", 337.3, 0.0810, 0.2440, 0.0, (-0.0050, 0.0240, 0.0350), 0.009, False, 0.018,
                     (-0.0085, -0.0300, 0.0150)),
        _WristMuscle("ECRB", 252.5, 0.0585, 0.2223, 9.0, (-0.0050, -0.0230, 0.0320), 0.012, False, 0.008,
                     (-0.0115, -0.0300, 0.0050)),
        _WristMuscle("ECU", 192.9, 0.0622, 0.2285, 4.0, (-0.0100, -0.0130, 0.0280), 0.006, False, -0.018,
                     (-0.0055, -0.0300, -0.0200)),
    ]


def segments(body_mass_kg: float = BODY_MASS_KG, deviation: bool = False) -> list[SegmentSpec]:
    """Forearm and hand after de Leva 1996 (radii as fractions of length: about x sagittal axis,
    y longitudinal, z transverse); a 1 g carpal link when deviation is modelled."""
    forearm_m = 0.0162 * body_mass_kg
    hand_m = 0.0061 * body_mass_kg
    segs = [
        SegmentSpec("forearm_r", forearm_m, (0.0, -0.4574 * FOREARM_LENGTH_M, 0.0),
                    inertia_from_radii(forearm_m, FOREARM_LENGTH_M, (0.276, 0.121, 0.265))),
        SegmentSpec("hand_r", hand_m, (0.0, -0.790 * HAND_LENGTH_M, 0.0),
                    inertia_from_radii(hand_m, HAND_LENGTH_M, (0.628, 0.401, 0.513))),
    ]
    if deviation:
        segs.insert(1, SegmentSpec("carpus_r", 0.001, (0.0, 0.0, 0.0), (1e-7, 1e-7, 1e-7)))
    return segs


def wrap_cylinders() -> list[WrapCylinderSpec]:
    """One cylinder per tendon, on the forearm, centred on the flexion axis: radius = published neutral
    moment arm; flexors wrap on the palmar (+x), extensors on the dorsal (-x) side."""
    return [
        WrapCylinderSpec(f"{m.name}_wrap", "forearm_r", WRIST_IN_FOREARM_M, radius_m=m.moment_arm_m, length_m=0.08,
                         quadrant="+x" if m.flexor else "-x")
        for m in _table()
    ]


def muscles(hand_body: str = "hand_r") -> list[MuscleSpec]:
    """FCR, FCU, ECRL, ECRB, ECU as MuscleSpecs (see the module docstring)."""
    out = []
    for m in _table():
        side = 1.0 if m.flexor else -1.0
        # the chord between the via points passes well inside the cylinder, so the tendon wraps
        # from neutral and the wrap side is never ambiguous
        d = side * VIA_DEPTH * m.moment_arm_m
        via_fa = (d, -FOREARM_LENGTH_M + VIA_PROXIMAL_M, m.z_m)
        via_hand = (d, -VIA_DISTAL_M, m.z_m)
        out.append(MuscleSpec(m.name, m.f_max_n, m.l_opt_m, m.l_slack_m, m.pennation_deg * DEG,
                              (("forearm_r", m.origin_m), ("forearm_r", via_fa), (hand_body, via_hand),
                               (hand_body, m.insertion_m)),
                              wraps=(f"{m.name}_wrap",), wrap_range=(2, 3)))
    return out


def markers() -> list[MarkerSpec]:
    """Forearm: epicondyles, styloids, dorsal forearm; hand (five, spread over the hand as in a wrist-motion
    lab set-up): 2nd/5th metacarpal heads, dorsum, dorsal 3rd metacarpal head (the farthest from the wrist
    axis), ulnar base of the 5th metacarpal."""
    L = FOREARM_LENGTH_M
    return [
        MarkerSpec("R_ELB_LAT", "forearm_r", (0.0000, 0.0000, 0.0400)),
        MarkerSpec("R_ELB_MED", "forearm_r", (0.0000, 0.0000, -0.0450)),
        MarkerSpec("R_FA_DORS", "forearm_r", (-0.0350, -0.1300, 0.0050)),
        MarkerSpec("R_RAD_STY", "forearm_r", (0.0000, -L + 0.0150, 0.0350)),
        MarkerSpec("R_ULN_STY", "forearm_r", (-0.0100, -L + 0.0150, -0.0300)),
        MarkerSpec("R_MCP2", "hand_r", (0.0000, -HAND_LENGTH_M + 0.0050, 0.0350)),
        MarkerSpec("R_MCP5", "hand_r", (0.0000, -HAND_LENGTH_M + 0.0150, -0.0350)),
        MarkerSpec("R_HAND_DORS", "hand_r", (-0.0250, -0.0450, 0.0000)),
        MarkerSpec("R_MCP3", "hand_r", (-0.0120, -HAND_LENGTH_M + 0.0020, 0.0050)),
        MarkerSpec("R_HAND_ULN", "hand_r", (-0.0100, -0.0300, -0.0320)),
    ]


COORDINATES = ("wrist_flexion_r",)
MUSCLES = tuple(m.name for m in _table())


def build_wrist_model(path: Path | str | None = None, *, scale: dict | None = None,
                      muscles_subset: Iterable[str] | None = None, deviation: bool = False,
                      body_mass_kg: float = BODY_MASS_KG, compliant_tendon: bool = True,
                      name: str = "pimsk_wrist_r"):
    """Build (and optionally print to ``path``) the generic wrist model; returns the finalized
    ``opensim.Model``. ``scale``: ``{body: s | (sx, sy, sz), "model_mass_kg": m}`` applied with
    OpenSim's Model scaling; ``muscles_subset`` keeps only the named muscles."""
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    keep = None if muscles_subset is None else list(muscles_subset)
    if keep is not None:
        unknown = sorted(set(keep) - set(MUSCLES))
        if unknown:
            raise ValueError(f"unknown wrist muscles {unknown}; known: {', '.join(MUSCLES)}")

    model = osim.Model()
    model.setName(name)
    model.setGravity(osim.Vec3(0.0, -GRAVITY_M_S2, 0.0))
    bodies = {}
    for seg in segments(body_mass_kg, deviation):
        bodies[seg.name] = make_body(seg)
        model.addBody(bodies[seg.name])
    model.addJoint(osim.WeldJoint("ground_forearm", model.getGround(), vec3(ELBOW_IN_GROUND_M), vec3((0, 0, 0)),
                                  bodies["forearm_r"], vec3((0, 0, 0)), vec3((0, 0, 0))))
    flex_child = bodies["carpus_r"] if deviation else bodies["hand_r"]
    add_pin(model, "wrist_flex_r", bodies["forearm_r"], WRIST_IN_FOREARM_M, flex_child, "wrist_flexion_r",
            (-70 * DEG, 70 * DEG))
    if deviation:
        # pin axis along -x so that positive rotation moves the hand towards the radius (+z)
        add_pin(model, "wrist_dev_r", bodies["carpus_r"], (0, 0, 0), bodies["hand_r"], "wrist_deviation_r",
                (-25 * DEG, 15 * DEG), orient_in_parent_rad=(0.0, -math.pi / 2, 0.0),
                orient_in_child_rad=(0.0, -math.pi / 2, 0.0))
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
