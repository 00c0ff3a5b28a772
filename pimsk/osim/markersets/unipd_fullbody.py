"""The UNIPD full-body protocol (MOtoNMS ``UNIPD-Fullbody``: 30 skin markers on bony landmarks) on gait2392.

Every marker location is computed here from the generic model's own geometry (joint centres, joint axes and
body frames read through the OpenSim API) and anatomical proportions from the literature; no coordinate is
taken from any other marker set. Lengths in metres; ``s`` = +1 on the right, -1 on the left (OpenSim Z points
to the subject's right, so ``s Z`` is lateral); ``r`` = 7.5 mm marker radius; each marker sits ``r`` + a skin
thickness outside its bone landmark (3 mm over subcutaneous bone unless said).

Read from the model (gait2392 values in brackets):

* ``HJC``: hip centre in the pelvis frame [(-0.0707, -0.0661, ±0.0835)].
* ``K``: knee centre = tibia origin in the femur frame at knee angle 0 [(-0.0045, -0.396, 0)], ``L_f = |K|``;
  ``e_knee``: the knee flexion axis [femur Z].
* ``A``: ankle centre in the tibia frame [(0, -0.43, 0)], ``L_t = |A|``; ``e_ank``: the talocrural axis,
  oriented laterally [right (-0.105, -0.174, 0.979): Inman's axis, lateral end posterior and distal].
* ``M``: MTP centre in the calcaneus frame [(0.1788, -0.002, ±0.001)].
* ``B``: lumbar joint centre (torso origin) in the pelvis frame [(-0.1007, 0.0815, 0)].
* sole: 20 mm below ``M`` (metatarsal-head radius ≈ 10 mm + plantar pad ≈ 10 mm); in the default pose (all
  angles 0, which is the model's upright standing posture) it gives the hip-centre and torso-origin heights
  above the floor, ``h_hip`` [0.890] and ``h_B`` [1.037]; stature ``H = h_hip / 0.530`` (hip height 0.530 H,
  Drillis & Contini 1966, as tabulated by Winter, Biomechanics and Motor Control of Human Movement) [1.679].

Rules:

* Pelvis: inter-ASIS width ``PW = |HJC_z| / 0.36`` and the ASIS from the hip centre by Bell et al. (1989,
  Hum Mov Sci 8:3): HJC 30 % PW distal, 14 % PW medial and 22 % PW posterior to the ASIS, so
  ``ASIS = HJC + (0.22 PW, 0.30 PW, s 0.14 PW)`` [PW 0.232]; marker 10 mm skin anterior (9.7 mm at the ASIS,
  Mantovani et al. 2016, Gait Posture 44:48). Pelvic depth PD (mid-ASIS to mid-PSIS) from Harrington et al.
  (2007, J Biomech 40:595), ``HJC_x = -0.24 PD - 9.9 mm`` [PD 0.171]; PSIS at ``x_ASIS - PD``, 11° of
  standing anatomical pelvic tilt above the ASIS (``y_ASIS + PD tan 11°``, taking the default pose as
  standing), ``s 0.175 PW`` lateral (inter-PSIS ≈ 0.35 PW ≈ 80 mm, assumed); marker 20 mm skin posterior
  (19.6 mm, Mantovani 2016). ``L5``: spinous process in the PSIS coronal plane, 0.25 PW (≈ 58 mm) above them
  (the PSIS dimples lie at S2, two spinous processes below L5).
* ``GT`` (femur): lateral prominence of the greater trochanter at ``(-0.02, -0.05, s 0.17) L_f`` from the hip
  centre (femoral offset ≈ 45 mm + trochanter ≈ 22 mm, just below the head centre, slightly posterior with
  femoral anteversion), 15 mm skin.
* ``LE``/``ME`` (femur): ``K ± (KW/2 + r + 3 mm) e_knee``: epicondyles on the flexion axis, bi-epicondylar
  width ``KW = 0.22 L_f`` (≈ 87 mm, adult male).
* ``HF`` (tibia): fibular head at ``(-0.035, -0.11, 0)  L_t + s KW/2`` (posterolateral, ≈ 47 mm below the knee
  centre, at the lateral margin of the plateau). ``TT``: tibial tuberosity at ``(0.085, -0.17, s 0.025) L_t``
  (≈ 37 mm anterior, 73 mm below the knee centre, slightly lateral of the midline).
* ``LM``/``MM`` (tibia): ``A ± (MW/2 + r + 3 mm) e_ank + 19 mm Y``: on the ankle axis, which passes just
  distal to the malleolar tips (Inman 1976, The Joints of the Ankle), raised to the palpated prominences
  ≈ 2 cm above the tips; bimalleolar width ``MW = 0.16 L_t`` (≈ 69 mm).
* Foot (calcaneus frame): posterior heel bone at ``x_heel = -0.08 |M|``; foot length
  ``FL = (M_x - x_heel) / 0.73`` (metatarsal heads at ≈ 73 % of FL) [0.264]; ball breadth ``BB = 0.39 FL``.
  ``CA``: ``(x_heel - r - 5 mm, sole + 25 mm, 0)``. ``IMH``/``VMH``: first / fifth metatarsal heads on the
  footwear-last "ball line", at 72.5 % / 62.5 % of FL from the heel, ``M_z ∓/± s (BB/2 + r)``, 25 mm above
  the sole.
* ``IIT`` (toes frame, origin at ``M``): read as the second toe: in Static1 it lies ≈ 50 mm anterior to and
  between the two metatarsal-head markers, at toe height; dorsum of its proximal phalanx at
  ``(0.16 FL, sole + 25 mm, -s 0.1 BB)``.
* Torso: ``C7`` at cervicale height ``0.866 H`` (ANSUR male means as fractions of stature, Gordon et al. 1989),
  its vertebral body on the plumb line through the posterosuperior corner of S1 (sagittal vertical axis ≈ 0,
  taken 20 mm behind ``B``) and the spinous-process tip 65 mm behind the body:
  ``C7 = (-0.02 - 0.065 - 3 mm - r, 0.866 H - h_B, 0)``. ``RA``/``LA``: acromion height ``0.82 H``,
  biacromial breadth ``0.23 H`` (ANSUR), 0.045 H (≈ 76 mm) in front of the C7 marker.

OpenSim's marker placement then moves every marker onto the subject's static pose; the rules matter for the
measurement-based scale factors (through the marker pairs) and for the static-pose fit that precedes the move
(the static marker error table). Default weights (:data:`DEFAULT_WEIGHTS`) favour thin-skinned bony landmarks
of the pelvis and lower limbs over soft-tissue (GT) and shoulder-girdle markers (RA/LA: gait2392 has no arms or
scapulae).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pimsk.errors import FileFormatError

PROTOCOL = "UNIPD-Fullbody"
MARKERS = ("C7 RA LA L5 RPSIS LPSIS RASIS LASIS RGT LGT RLE LLE RME LME RHF LHF RTT LTT RLM LLM RMM LMM RCA LCA "
           "RIMH LIMH RIIT LIIT RVMH LVMH").split()

# soft tissue (m)
R_MARKER_M = 0.0075
SKIN_BONY_M = 0.003
SKIN_ASIS_M = 0.010  # Mantovani et al. 2016
SKIN_PSIS_M = 0.020  # Mantovani et al. 2016
SKIN_GT_M = 0.015
SKIN_HEEL_M = 0.005
SOLE_BELOW_MTP_M = 0.020
# pelvis
HJC_LATERAL_FRACTION_PW = 0.36  # Bell et al. 1989: HJC 30 % distal, 14 % medial, 22 % posterior to the ASIS
HJC_DISTAL_FRACTION_PW = 0.30
HJC_POSTERIOR_FRACTION_PW = 0.22
HARRINGTON_X_SLOPE_PD = 0.24  # Harrington et al. 2007: HJC_x = -0.24 PD - 9.9 mm
HARRINGTON_X_OFFSET_M = 0.0099
STANDING_PELVIC_TILT_DEG = 11.0
INTER_PSIS_FRACTION_PW = 0.35
L5_ABOVE_PSIS_FRACTION_PW = 0.25
# lower limb
KNEE_WIDTH_FRACTION_LF = 0.22
MALLEOLAR_WIDTH_FRACTION_LT = 0.16
MALLEOLI_ABOVE_AXIS_M = 0.019
MT_HEADS_AT_FOOT_FRACTION = 0.73
BALL_BREADTH_FRACTION_FOOT = 0.39
BALL_LINE_MEDIAL_FRACTION = 0.725  # footwear last: 1st MT head at 72.5 %, 5th at 62.5 % of foot length
BALL_LINE_LATERAL_FRACTION = 0.625
# trunk (fractions of stature)
HIP_HEIGHT_FRACTION_H = 0.530  # Drillis & Contini 1966
CERVICALE_FRACTION_H = 0.866  # ANSUR (Gordon et al. 1989), male means
ACROMION_FRACTION_H = 0.82
BIACROMIAL_FRACTION_H = 0.23
C7_BEHIND_ACROMION_FRACTION_H = 0.045
C7_BODY_BEHIND_LUMBOSACRAL_M = 0.02  # sagittal vertical axis ~ 0: C7 plumb line at S1's posterosuperior corner
C7_SPINOUS_DEPTH_M = 0.065  # C7 vertebral body centre to spinous-process tip

DEFAULT_WEIGHTS: dict[str, float] = {
    "C7": 2.0, "RA": 1.0, "LA": 1.0, "L5": 5.0,
    "RPSIS": 10.0, "LPSIS": 10.0, "RASIS": 10.0, "LASIS": 10.0,
    "RGT": 2.0, "LGT": 2.0,
    "RLE": 10.0, "LLE": 10.0, "RME": 10.0, "LME": 10.0,
    "RHF": 5.0, "LHF": 5.0, "RTT": 5.0, "LTT": 5.0,
    "RLM": 10.0, "LLM": 10.0, "RMM": 10.0, "LMM": 10.0,
    "RCA": 10.0, "LCA": 10.0, "RIMH": 5.0, "LIMH": 5.0, "RVMH": 5.0, "LVMH": 5.0, "RIIT": 3.0, "LIIT": 3.0,
}

_SIDES = {"r": 1.0, "l": -1.0}
_REQUIRED_BODIES = ("pelvis", "torso") + tuple(f"{b}_{s}" for s in _SIDES for b in ("femur", "tibia", "talus",
                                                                                       "calcn", "toes"))
_REQUIRED_JOINTS = ("back",) + tuple(f"{j}_{s}" for s in _SIDES for j in ("hip", "knee", "ankle", "mtp"))


@dataclass(frozen=True)
class MarkerSpec:
    """One marker: name, body it is fixed to, location in that body's frame (m), IK weight."""

    name: str
    body: str
    location_m: tuple[float, float, float]
    weight: float


@dataclass
class ModelGeometry:
    """What the rules read from the model (body-frame coordinates, metres; axes are unit vectors).

    Per side ('r'/'l'): hip_pelvis (3,), knee_femur (3,), knee_axis_femur (3,), ankle_tibia (3,),
    ankle_axis_tibia (3, lateral-pointing), mtp_calcn (3,), mtp_axis_calcn (3, lateral-pointing);
    back_pelvis (3,): torso origin in the pelvis frame; torso_origin_height_m and hip_height_m: heights of the
    torso origin and of the hip centres above the sole in the default pose (all angles 0).
    """

    hip_pelvis: dict[str, np.ndarray]
    knee_femur: dict[str, np.ndarray]
    knee_axis_femur: dict[str, np.ndarray]
    ankle_tibia: dict[str, np.ndarray]
    ankle_axis_tibia: dict[str, np.ndarray]
    mtp_calcn: dict[str, np.ndarray]
    mtp_axis_calcn: dict[str, np.ndarray]
    back_pelvis: np.ndarray
    torso_origin_height_m: float
    hip_height_m: float


def _vec(v) -> np.ndarray:
    return np.array([v.get(i) for i in range(3)], dtype=float)


def _load_model(model):
    """``opensim.Model`` from a path (OpenSim's log quieted first unless the caller did; the missing-geometry
    warnings of loading are not shown) or the model itself."""
    import opensim as osim

    from pimsk.osim import logging as osim_logging

    if not getattr(osim_logging, "_done", False):
        osim_logging.quiet_opensim()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileFormatError("model file not found", file=str(path), field="model")
        level = osim.Logger.getLevelString()
        osim.Logger.setLevelString("error")
        try:
            model = osim.Model(str(path))
        except Exception as exc:  # OpenSim raises RuntimeError with its own text
            raise FileFormatError(f"OpenSim cannot read the model: {exc}", file=str(path)) from None
        finally:
            osim.Logger.setLevelString(level)
    return model


def read_geometry(model) -> ModelGeometry:
    """Joint centres and axes of a gait2392-type model (path or ``opensim.Model``), all angles at 0."""
    import opensim as osim

    model = _load_model(model)
    where = model.getDocumentFileName() or model.getName()
    bodies = {model.getBodySet().get(i).getName() for i in range(model.getBodySet().getSize())}
    joints = {model.getJointSet().get(i).getName() for i in range(model.getJointSet().getSize())}
    missing = [b for b in _REQUIRED_BODIES if b not in bodies] + [j for j in _REQUIRED_JOINTS if j not in joints]
    if missing:
        raise FileFormatError(f"the {PROTOCOL} marker set needs a gait2392-type model; missing {missing}",
                              file=str(where), field="model")
    state = model.initSystem()
    for i in range(model.getCoordinateSet().getSize()):
        coord = model.getCoordinateSet().get(i)
        if coord.getMotionType() == osim.Coordinate.Rotational:
            coord.setValue(state, 0.0, False)
    model.assemble(state)
    model.realizePosition(state)
    body = model.getBodySet().get

    def origin_in(child: str, parent: str) -> np.ndarray:
        return _vec(body(child).findStationLocationInAnotherFrame(state, osim.Vec3(0, 0, 0), body(parent)))

    def axis_in(joint: str, parent: str) -> np.ndarray:
        j = osim.CustomJoint.safeDownCast(model.getJointSet().get(joint))
        if j is None:
            raise FileFormatError(f"joint {joint} is not a CustomJoint", file=str(where), field="model")
        a = j.getSpatialTransform().getTransformAxis(0).get_axis()
        v = j.getParentFrame().expressVectorInAnotherFrame(state, a, body(parent))
        u = _vec(v)
        return u / np.linalg.norm(u)

    geo = ModelGeometry({}, {}, {}, {}, {}, {}, {}, origin_in("torso", "pelvis"), 0.0, 0.0)
    for side, s in _SIDES.items():
        geo.hip_pelvis[side] = origin_in(f"femur_{side}", "pelvis")
        geo.knee_femur[side] = origin_in(f"tibia_{side}", f"femur_{side}")
        geo.knee_axis_femur[side] = axis_in(f"knee_{side}", f"femur_{side}")
        geo.ankle_tibia[side] = origin_in(f"talus_{side}", f"tibia_{side}")
        ank = axis_in(f"ankle_{side}", f"tibia_{side}")
        geo.ankle_axis_tibia[side] = ank * np.sign(ank[2] * s)
        geo.mtp_calcn[side] = origin_in(f"toes_{side}", f"calcn_{side}")
        mtp = axis_in(f"mtp_{side}", f"calcn_{side}")
        geo.mtp_axis_calcn[side] = mtp * np.sign(mtp[2] * s)
    torso_y = _vec(body("torso").getPositionInGround(state))[1]
    soles = []
    for side in _SIDES:
        toes = body(f"toes_{side}")
        soles.append(_vec(toes.getPositionInGround(state))[1] - SOLE_BELOW_MTP_M)
    sole = float(np.mean(soles))
    geo.torso_origin_height_m = float(torso_y - sole)
    geo.hip_height_m = float(np.mean([_vec(body(f"femur_{s}").getPositionInGround(state))[1] for s in _SIDES]) - sole)
    return geo


def marker_specs(geo: ModelGeometry, weights: dict[str, float] | None = None) -> list[MarkerSpec]:
    """The 30 markers of the protocol placed by the rules of this module's docstring, in protocol order."""
    w = dict(DEFAULT_WEIGHTS, **(weights or {}))
    r = R_MARKER_M
    out: dict[str, MarkerSpec] = {}

    def add(name: str, body: str, loc) -> None:
        out[name] = MarkerSpec(name, body, tuple(float(x) for x in loc), float(w[name]))

    hjc = np.mean([geo.hip_pelvis[s] * (1.0, 1.0, _SIDES[s]) for s in _SIDES], axis=0)  # as a right hip
    pw = abs(float(hjc[2])) / HJC_LATERAL_FRACTION_PW
    asis_xy = (hjc[0] + HJC_POSTERIOR_FRACTION_PW * pw, hjc[1] + HJC_DISTAL_FRACTION_PW * pw)
    pd = (HJC_POSTERIOR_FRACTION_PW * pw - HARRINGTON_X_OFFSET_M) / HARRINGTON_X_SLOPE_PD
    psis_y = asis_xy[1] + pd * np.tan(np.radians(STANDING_PELVIC_TILT_DEG))
    H = geo.hip_height_m / HIP_HEIGHT_FRACTION_H
    x_c7 = -(C7_BODY_BEHIND_LUMBOSACRAL_M + C7_SPINOUS_DEPTH_M + SKIN_BONY_M + r)  # torso frame
    x_acromion = x_c7 + C7_BEHIND_ACROMION_FRACTION_H * H
    for side, s in _SIDES.items():
        P = "R" if side == "r" else "L"
        lat = np.array([0.0, 0.0, s])
        # pelvis
        add(f"{P}ASIS", "pelvis", (asis_xy[0] + r + SKIN_ASIS_M, asis_xy[1], s * pw / 2))
        add(f"{P}PSIS", "pelvis", (asis_xy[0] - pd - r - SKIN_PSIS_M, psis_y, s * INTER_PSIS_FRACTION_PW * pw / 2))
        # femur (frame origin = hip centre)
        knee = geo.knee_femur[side]
        l_f = float(np.linalg.norm(knee))
        gt = np.array([-0.02 * l_f, -0.05 * l_f, s * 0.17 * l_f]) + (r + SKIN_GT_M) * lat
        add(f"{P}GT", f"femur_{side}", gt)
        kw = KNEE_WIDTH_FRACTION_LF * l_f
        e_knee = geo.knee_axis_femur[side] * np.sign(geo.knee_axis_femur[side][2] * s)
        add(f"{P}LE", f"femur_{side}", knee + (kw / 2 + r + SKIN_BONY_M) * e_knee)
        add(f"{P}ME", f"femur_{side}", knee - (kw / 2 + r + SKIN_BONY_M) * e_knee)
        # tibia
        ankle = geo.ankle_tibia[side]
        l_t = float(np.linalg.norm(ankle))
        hf = np.array([-0.035 * l_t, -0.11 * l_t, s * kw / 2]) + (r + SKIN_BONY_M) * lat
        add(f"{P}HF", f"tibia_{side}", hf)
        add(f"{P}TT", f"tibia_{side}", np.array([0.085 * l_t + r + SKIN_BONY_M, -0.17 * l_t, s * 0.025 * l_t]))
        mw = MALLEOLAR_WIDTH_FRACTION_LT * l_t
        e_ank = geo.ankle_axis_tibia[side]
        up = np.array([0.0, MALLEOLI_ABOVE_AXIS_M, 0.0])
        add(f"{P}LM", f"tibia_{side}", ankle + (mw / 2 + r + SKIN_BONY_M) * e_ank + up)
        add(f"{P}MM", f"tibia_{side}", ankle - (mw / 2 + r + SKIN_BONY_M) * e_ank + up)
        # foot
        mtp = geo.mtp_calcn[side]
        sole_y = mtp[1] - SOLE_BELOW_MTP_M
        heel_x = -0.08 * float(np.linalg.norm(mtp))
        foot_len = (mtp[0] - heel_x) / MT_HEADS_AT_FOOT_FRACTION
        bb = BALL_BREADTH_FRACTION_FOOT * foot_len
        add(f"{P}CA", f"calcn_{side}", (heel_x - r - SKIN_HEEL_M, sole_y + 0.025, 0.0))
        half = bb / 2 + r
        add(f"{P}IMH", f"calcn_{side}", (heel_x + BALL_LINE_MEDIAL_FRACTION * foot_len, sole_y + 0.025,
                                          mtp[2] - s * half))
        add(f"{P}VMH", f"calcn_{side}", (heel_x + BALL_LINE_LATERAL_FRACTION * foot_len, sole_y + 0.025,
                                          mtp[2] + s * half))
        add(f"{P}IIT", f"toes_{side}", (0.16 * foot_len, -SOLE_BELOW_MTP_M + 0.025, -s * 0.1 * bb))
        # shoulders
        add(f"{P}A", "torso", (x_acromion, ACROMION_FRACTION_H * H - geo.torso_origin_height_m + r + SKIN_BONY_M,
                               s * BIACROMIAL_FRACTION_H * H / 2))
    psis_x = out["RPSIS"].location_m[0]
    add("L5", "pelvis", (psis_x, psis_y + L5_ABOVE_PSIS_FRACTION_PW * pw, 0.0))
    add("C7", "torso", (x_c7, CERVICALE_FRACTION_H * H - geo.torso_origin_height_m, 0.0))
    return [out[name] for name in MARKERS]


def build_markerset(model, weights: dict[str, float] | None = None):
    """An ``opensim.MarkerSet`` of the protocol for ``model`` (path or ``opensim.Model``); markers not fixed."""
    import opensim as osim

    specs = marker_specs(read_geometry(model), weights)
    mset = osim.MarkerSet()
    for spec in specs:
        marker = osim.Marker()
        marker.setName(spec.name)
        marker.setParentFrameName(f"/bodyset/{spec.body}")
        marker.set_location(osim.Vec3(*spec.location_m))
        marker.set_fixed(False)
        mset.cloneAndAppend(marker)
    mset.setName(PROTOCOL)
    return mset


def write_markerset(model, out_xml: str | Path, weights: dict[str, float] | None = None) -> Path:
    """Write the protocol's MarkerSet XML for ``model`` to ``out_xml`` (folders created); returns the path."""
    out = Path(out_xml)
    out.parent.mkdir(parents=True, exist_ok=True)
    mset = build_markerset(model, weights)
    mset.printToXML(str(out))
    return out
