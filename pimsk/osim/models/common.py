"""Building blocks shared by the code-built generic models (bodies, pins, muscles, markers, wraps).

Everything here only assembles OpenSim components from plain numbers; the numbers and their
sources live in the model modules (``leg.py``, ``wrist.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

Vec = tuple[float, float, float]

# Standard gravity (m/s^2), CGPM 1901.
GRAVITY_M_S2 = 9.80665
#: lowest excitation/activation of every muscle: the resting tone of a relaxed muscle, equal to the floor of
#: OpenSim's CMC (CMC.cpp MIN_CMC_CONTROL_VALUE) and of the synthetic excitations (pimsk.synth.excitation), so
#: SO, CMC and the forward simulation share one lower bound
MIN_CONTROL = 0.02


@dataclass(frozen=True)
class SegmentSpec:
    """Rigid segment: mass (kg), centre of mass (m, body frame), principal moments of inertia about the
    centre of mass (kg m^2, body axes x, y, z)."""

    name: str
    mass_kg: float
    com_m: Vec
    inertia_kg_m2: Vec


@dataclass(frozen=True)
class WrapCylinderSpec:
    """Wrap cylinder fixed to ``body``: centre ``translation_m``, axis = body z rotated by ``rotation_rad``
    (body-fixed x-y-z), ``radius_m``, ``length_m``; ``quadrant`` restricts the side the path wraps on
    ("+x", "-x", ... or "all")."""

    name: str
    body: str
    translation_m: Vec
    radius_m: float
    length_m: float
    quadrant: str = "all"
    rotation_rad: Vec = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class MuscleSpec:
    """One muscle-tendon unit for a ``DeGrooteFregly2016Muscle``.

    f_max_n: maximal isometric force (N); l_opt_m: optimal fibre length (m); l_slack_m: tendon slack
    length (m); pennation_rad: pennation at optimal fibre length; path: (body, point in body frame, m)
    from origin to insertion; wraps: names of wrap objects the path may wrap over, in order;
    wrap_range: (first, last) 1-based path-point indices the wraps apply to (all segments if None);
    v_max_lopt_s: maximal contraction velocity (optimal fibre lengths per second).
    """

    name: str
    f_max_n: float
    l_opt_m: float
    l_slack_m: float
    pennation_rad: float
    path: tuple[tuple[str, Vec], ...]
    wraps: tuple[str, ...] = ()
    v_max_lopt_s: float = 10.0
    wrap_range: tuple[int, int] | None = None  # 1-based path points between which the wraps act


@dataclass(frozen=True)
class MarkerSpec:
    """A skin marker: name, body, location in the body frame (m)."""

    name: str
    body: str
    location_m: Vec


def vec3(v: Sequence[float]):
    """opensim.Vec3 from three floats."""
    import opensim as osim

    return osim.Vec3(float(v[0]), float(v[1]), float(v[2]))


def make_body(seg: SegmentSpec):
    """opensim.Body from a SegmentSpec (principal axes along the body axes)."""
    import opensim as osim

    ixx, iyy, izz = seg.inertia_kg_m2
    return osim.Body(seg.name, seg.mass_kg, vec3(seg.com_m), osim.Inertia(ixx, iyy, izz, 0.0, 0.0, 0.0))


def add_pin(model, name: str, parent, loc_in_parent_m: Vec, child, coord_name: str,
            range_rad: tuple[float, float], default_rad: float = 0.0,
            orient_in_parent_rad: Vec = (0.0, 0.0, 0.0), loc_in_child_m: Vec = (0.0, 0.0, 0.0),
            orient_in_child_rad: Vec = (0.0, 0.0, 0.0)):
    """Add a PinJoint (rotation about the joint frames' common z axis) and name its coordinate."""
    import opensim as osim

    joint = osim.PinJoint(name, parent, vec3(loc_in_parent_m), vec3(orient_in_parent_rad),
                          child, vec3(loc_in_child_m), vec3(orient_in_child_rad))
    coord = joint.updCoordinate()
    coord.setName(coord_name)
    coord.setRangeMin(range_rad[0])
    coord.setRangeMax(range_rad[1])
    coord.setDefaultValue(default_rad)
    model.addJoint(joint)
    return joint


def add_wrap_cylinder(model, spec: WrapCylinderSpec) -> None:
    """Attach a WrapCylinder to its body."""
    import opensim as osim

    cyl = osim.WrapCylinder()
    cyl.setName(spec.name)
    cyl.set_radius(spec.radius_m)
    cyl.set_length(spec.length_m)
    cyl.set_translation(vec3(spec.translation_m))
    cyl.set_xyz_body_rotation(vec3(spec.rotation_rad))
    cyl.set_quadrant(spec.quadrant)
    model.updBodySet().get(spec.body).addWrapObject(cyl)


def add_muscle(model, spec: MuscleSpec, *, compliant_tendon: bool = True, min_control: float = MIN_CONTROL):
    """Add a DeGrooteFregly2016Muscle (De Groote et al. 2016, Ann Biomed Eng 44:2922) with the spec's path.

    Tendon compliance uses the explicit normalised-tendon-force state (OpenSim's forward-simulation mode);
    ``min_control`` (:data:`MIN_CONTROL`) keeps activation above zero (the inverse force-velocity curve stays
    defined) and is the lower bound static optimization and CMC give the muscle.
    """
    import opensim as osim

    m = osim.DeGrooteFregly2016Muscle()
    m.setName(spec.name)
    m.set_max_isometric_force(spec.f_max_n)
    m.set_optimal_fiber_length(spec.l_opt_m)
    m.set_tendon_slack_length(spec.l_slack_m)
    m.set_pennation_angle_at_optimal(spec.pennation_rad)
    m.set_max_contraction_velocity(spec.v_max_lopt_s)
    m.set_ignore_tendon_compliance(not compliant_tendon)
    m.set_tendon_compliance_dynamics_mode("explicit")
    m.setMinControl(min_control)
    m.setMaxControl(1.0)
    bodies = model.getBodySet()
    for i, (body, point) in enumerate(spec.path):
        m.addNewPathPoint(f"{spec.name}-P{i + 1}", bodies.get(body), vec3(point))
    path = m.updGeometryPath()
    for wrap_name in spec.wraps:
        owner = _wrap_owner(model, wrap_name)
        path.addPathWrap(owner.getWrapObject(wrap_name))
        if spec.wrap_range is not None:
            wrap = path.updWrapSet().get(path.getWrapSet().getSize() - 1)
            wrap.set_range(0, spec.wrap_range[0])
            wrap.set_range(1, spec.wrap_range[1])
    model.addForce(m)
    return m


def _wrap_owner(model, wrap_name: str):
    bodies = model.getBodySet()
    for i in range(bodies.getSize()):
        body = bodies.get(i)
        if body.getWrapObject(wrap_name) is not None:
            return body
    raise KeyError(f"wrap object {wrap_name!r} is on no body")


def add_markers(model, markers: Iterable[MarkerSpec]) -> None:
    """Add skin markers (fixed in their body frames)."""
    import opensim as osim

    bodies = model.getBodySet()
    for mk in markers:
        model.addMarker(osim.Marker(mk.name, bodies.get(mk.body), vec3(mk.location_m)))


def inertia_from_radii(mass_kg: float, length_m: float, radii_frac: Vec) -> Vec:
    """Principal moments (kg m^2) from radii of gyration given as fractions of the segment length."""
    return tuple(mass_kg * (r * length_m) ** 2 for r in radii_frac)  # type: ignore[return-value]


def finalize(model, path: Path | str | None):
    """finalizeConnections, check that the system builds, optionally print the model to ``path``."""
    model.finalizeConnections()
    model.initSystem()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.printToXML(str(path))
    return model

