"""Sample muscle-tendon lengths and moment arms from an OpenSim model over its coordinates' ranges.

For each muscle: find the coordinates it crosses (joints between the bodies its path touches, the coordinates
of moving and conditional path points, dependent coordinates replaced by their independent ones, then kept
only where OpenSim's moment arm is non-zero somewhere in the range); sample those coordinates (Latin
hypercube or grid, seeded); set them, let OpenSim enforce the model's constraints (``Model.assemble``) and
record ``Muscle.getLength`` and ``Muscle.computeMomentArm`` (or, cheaper for large training sets, central
differences of ``getLength``) at the assembled pose.

Arrays are sample-first: ``q`` (n_samples, n_coordinates) rad or m, ``length_m`` (n_samples, n_muscles),
``moment_arm_m`` (n_samples, n_muscles, n_coordinates) (zero where a muscle does not cross a coordinate).
``breaks`` lists, per muscle, the coordinate values where the path changes abruptly (ConditionalPathPoint
switches, MovingPathPoint spline kinks); the surrogate fits one polynomial per interval between them.
``joints`` names each sampled coordinate's joint (the surrogate may fit a sum of per-joint polynomials).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import FileFormatError, PimskError


# OpenSim's ConditionalPathPoint::isActive widens the point's coordinate range by this (rad or m).
CONDITIONAL_TOLERANCE = 1e-5


class PathSamplingError(PimskError):
    """The muscles or coordinates asked for cannot be sampled from the model."""


@dataclass
class PathSamples:
    """OpenSim path samples (see module docstring for shapes and units)."""

    model: str
    muscles: list[str]
    coordinates: list[str]
    crossed: dict[str, list[str]]
    q: np.ndarray
    length_m: np.ndarray
    moment_arm_m: np.ndarray
    range_min: np.ndarray
    range_max: np.ndarray
    fixed_coordinates: dict[str, float] = field(default_factory=dict)
    method: str = "lhs"
    seed: int = 0
    breaks: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    joints: dict[str, str] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.q.shape[0])

    def save_npz(self, path: str | Path) -> None:
        """Write every field to one ``.npz`` (names and dicts as JSON strings)."""
        import json

        np.savez(path, q=self.q, length_m=self.length_m, moment_arm_m=self.moment_arm_m,
                 range_min=self.range_min, range_max=self.range_max,
                 meta=np.array(json.dumps({
                     "model": self.model, "muscles": self.muscles, "coordinates": self.coordinates,
                     "crossed": self.crossed, "fixed_coordinates": self.fixed_coordinates,
                     "method": self.method, "seed": self.seed, "breaks": self.breaks, "joints": self.joints})))

    @classmethod
    def load_npz(cls, path: str | Path) -> "PathSamples":
        import json

        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                return cls(q=data["q"], length_m=data["length_m"], moment_arm_m=data["moment_arm_m"],
                           range_min=data["range_min"], range_max=data["range_max"], **meta)
        except (OSError, KeyError, ValueError) as exc:
            raise FileFormatError(f"not a path-samples file: {exc}", file=path) from None

    def concatenate(self, other: "PathSamples") -> "PathSamples":
        """These samples followed by ``other``'s (same muscles, coordinates and crossings; e.g. extra poses
        drawn over a narrower range). The ranges, breaks and the rest are this set's."""
        if other.muscles != self.muscles or other.coordinates != self.coordinates or other.crossed != self.crossed:
            raise PathSamplingError("cannot concatenate path samples of different muscles or coordinates",
                                    hint=f"{self.muscles} / {self.coordinates} vs "
                                         f"{other.muscles} / {other.coordinates}")
        return dataclasses.replace(self, q=np.vstack([self.q, other.q]),
                                   length_m=np.vstack([self.length_m, other.length_m]),
                                   moment_arm_m=np.concatenate([self.moment_arm_m, other.moment_arm_m]))

    def muscle_view(self, muscle: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """One muscle's crossed coordinates, q (n, d), length (n,), moment arms (n, d)."""
        m = self.muscles.index(muscle)
        cols = [self.coordinates.index(c) for c in self.crossed[muscle]]
        return list(self.crossed[muscle]), self.q[:, cols], self.length_m[:, m], self.moment_arm_m[:, m][:, cols]


def _osim():
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    return osim


def load_model(model: Any) -> Any:
    """An ``opensim.Model`` from a path or the model itself (system initialised)."""
    osim = _osim()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise PathSamplingError("model file not found", file=path)
        try:
            model = osim.Model(str(path))
        except Exception as exc:  # OpenSim raises RuntimeError with its own text
            raise PathSamplingError(f"OpenSim cannot read the model: {exc}", file=path) from None
    model.initSystem()
    return model


def _coupler_map(osim: Any, model: Any) -> dict[str, list[str]]:
    """dependent coordinate -> its independent coordinates (enforced CoordinateCouplerConstraints)."""
    out: dict[str, list[str]] = {}
    for con in model.getConstraintSet():
        if con.get_isEnforced() and con.getConcreteClassName() == "CoordinateCouplerConstraint":
            cc = osim.CoordinateCouplerConstraint.safeDownCast(con)
            names = cc.getIndependentCoordinateNames()
            out[cc.getDependentCoordinateName()] = [names.get(i) for i in range(names.getSize())]
    return out


def _path_bodies_and_coords(osim: Any, muscle: Any) -> tuple[set[str], set[str]]:
    """Bodies the path touches (points and wrap objects) and coordinates of moving/conditional points."""
    path = muscle.getGeometryPath()
    bodies: set[str] = set()
    coords: set[str] = set()
    pps = path.getPathPointSet()
    for i in range(pps.getSize()):
        p = pps.get(i)
        bodies.add(p.getParentFrame().findBaseFrame().getName())
        kind = p.getConcreteClassName()
        if kind == "ConditionalPathPoint":
            coords.add(osim.ConditionalPathPoint.safeDownCast(p).getCoordinate().getName())
        elif kind == "MovingPathPoint":
            mp = osim.MovingPathPoint.safeDownCast(p)
            for getter in ("getXCoordinate", "getYCoordinate", "getZCoordinate"):
                try:
                    coords.add(getattr(mp, getter)().getName())
                except Exception:  # an axis without a coordinate
                    pass
    wraps = path.getWrapSet()
    for i in range(wraps.getSize()):
        wo = wraps.get(i).getWrapObject()
        if wo is not None:
            bodies.add(wo.getFrame().findBaseFrame().getName())
    return bodies, coords


def topological_crossings(model: Any, muscles: Sequence[str]) -> dict[str, list[str]]:
    """Per muscle: independent coordinates of the joints between its path's bodies (model order)."""
    osim = _osim()
    model = load_model(model)
    joint_of: dict[str, Any] = {}
    for j in model.getJointSet():
        joint_of.setdefault(j.getChildFrame().findBaseFrame().getName(), j)

    def ancestry(body: str) -> list[str]:
        """Joints from the body up to ground (child first)."""
        out = []
        seen = set()
        while body in joint_of and body not in seen:
            seen.add(body)
            j = joint_of[body]
            out.append(j.getName())
            body = j.getParentFrame().findBaseFrame().getName()
        return out

    couplers = _coupler_map(osim, model)
    order = [c.getName() for c in model.getCoordinateSet()]
    jointset = model.getJointSet()
    result: dict[str, list[str]] = {}
    all_muscles = model.getMuscles()
    for name in muscles:
        if not all_muscles.contains(name):
            raise PathSamplingError(f"muscle {name!r} not in model {model.getName()}", field=name,
                                    hint="names are case-sensitive")
        bodies, coords = _path_bodies_and_coords(osim, all_muscles.get(name))
        chains = [ancestry(b) for b in bodies]
        common = set.intersection(*(set(c) for c in chains)) if chains else set()
        joints = set().union(*(set(c) for c in chains)) - common
        for jn in joints:
            j = jointset.get(jn)
            for k in range(j.numCoordinates()):
                coords.add(j.get_coordinates(k).getName())
        independent: set[str] = set()
        stack = list(coords)
        while stack:
            c = stack.pop()
            if c in couplers:
                stack.extend(x for x in couplers[c] if x not in independent)
            else:
                independent.add(c)
        result[name] = [c for c in order if c in independent]
    return result


def _spline_kinks(osim: Any, fn: Any, min_spacing: float) -> list[float]:
    """Mid-points of clusters of spline knots closer than ``min_spacing``: the cubic bends within a fraction
    of a degree there (a kink in practice; e.g. the knee knots at 0, 1e-4, 3e-4 rad of gait2392's quadriceps)."""
    kind = fn.getConcreteClassName()
    if kind == "MultiplierFunction":
        return _spline_kinks(osim, osim.MultiplierFunction.safeDownCast(fn).getFunction(), min_spacing)
    if kind not in ("SimmSpline", "NaturalCubicSpline"):
        return []
    spline = getattr(osim, kind).safeDownCast(fn)
    xs = [float(spline.getX(i)) for i in range(spline.getSize())]
    out, i = [], 0
    while i < len(xs) - 1:
        j = i
        while j < len(xs) - 1 and xs[j + 1] - xs[j] < min_spacing:
            j += 1
        if j > i:
            out.append(0.5 * (xs[i] + xs[j]))
        i = j + 1
    return out


def conditional_breaks(model: Any, muscles: Sequence[str],
                       kink_spacing: float = 1e-3) -> dict[str, dict[str, list[float]]]:
    """Per muscle: coordinate -> values where its path changes abruptly (rad or m).

    These are the range bounds of ConditionalPathPoints where OpenSim switches the via point on or off (so
    length and moment arm jump): ``ConditionalPathPoint::isActive`` is true on [range_min - 1e-5,
    range_max + 1e-5], so the switches are there; and clusters of MovingPathPoint spline knots closer than
    ``kink_spacing`` (a kink). The surrogate fits one polynomial per interval between them.
    """
    osim = _osim()
    model = load_model(model)
    out: dict[str, dict[str, list[float]]] = {}
    for name in muscles:
        pps = model.getMuscles().get(name).getGeometryPath().getPathPointSet()
        per: dict[str, set[float]] = {}
        for i in range(pps.getSize()):
            p = pps.get(i)
            kind = p.getConcreteClassName()
            if kind == "ConditionalPathPoint":  # active on [range_min - 1e-5, range_max + 1e-5] (OpenSim)
                cp = osim.ConditionalPathPoint.safeDownCast(p)
                per.setdefault(cp.getCoordinate().getName(), set()).update(
                    (float(cp.get_range(0)) - CONDITIONAL_TOLERANCE, float(cp.get_range(1)) + CONDITIONAL_TOLERANCE))
            elif kind == "MovingPathPoint":
                mp = osim.MovingPathPoint.safeDownCast(p)
                for axis in ("X", "Y", "Z"):
                    try:
                        coord = getattr(mp, f"get{axis}Coordinate")().getName()
                        fn = getattr(mp, f"get_{axis.lower()}_location")()
                    except Exception:  # no coordinate on this axis
                        continue
                    per.setdefault(coord, set()).update(_spline_kinks(osim, fn, kink_spacing))
        out[name] = {c: sorted(v) for c, v in per.items() if v}
    return out


def _linear(osim: Any, fn: Any, lo: float, hi: float) -> tuple[float, float] | None:
    """(slope, intercept) of an OpenSim Function of one variable that is linear on [lo, hi], else None."""
    def value(x: float) -> float:
        return float(fn.calcValue(osim.Vector(1, float(x))))

    intercept = value(0.0)
    slope = value(1.0) - intercept
    probes = np.linspace(lo, hi, 9)
    if np.allclose([value(x) for x in probes], slope * probes + intercept, rtol=0.0, atol=1e-12):
        return slope, intercept
    return None


def _joint_rotations(osim: Any, joint: Any, cs: Any) -> list[tuple[list[float], str | None, float, float]] | None:
    """A joint's transform as body-fixed rotations (axis in F, coordinate or None, slope, intercept), or None
    where it is not that (a translation that moves with a coordinate, a non-linear rotation function,
    a joint type other than CustomJoint / PinJoint)."""
    kind = joint.getConcreteClassName()
    if kind == "PinJoint":  # rotation about F's z axis by the coordinate
        return [([0.0, 0.0, 1.0], joint.get_coordinates(0).getName(), 1.0, 0.0)]
    if kind != "CustomJoint":
        return None
    transform = osim.CustomJoint.safeDownCast(joint).getSpatialTransform()
    rotations = []
    for i in range(6):
        axis_def = transform.getTransformAxis(i)
        names = axis_def.getCoordinateNamesInArray()
        coords = [names.get(k) for k in range(names.getSize())]
        if i >= 3:  # translations: constant only
            if coords:
                return None
            continue
        axis = [float(axis_def.getAxis().get(k)) for k in range(3)]
        fn = axis_def.getFunction()
        if not coords:
            rotations.append((axis, None, 0.0, float(fn.calcValue(osim.Vector(1, 0.0)))))
            continue
        if len(coords) != 1:
            return None
        c = cs.get(coords[0])
        line = _linear(osim, fn, float(c.getRangeMin()), float(c.getRangeMax()))
        if line is None:
            return None
        rotations.append((axis, coords[0], *line))
    return rotations


def exact_segments(model: Any, crossed: Mapping[str, Sequence[str]], n_check: int = 64, seed: int = 0,
                   tol_m: float = 1e-9) -> dict[str, list[Any]]:
    """Per muscle of ``crossed``: its straight path segments whose length the surrogate can compute exactly
    (:class:`pimsk.core.path_surrogate.ExactSegment`); muscles without one map to an empty list.

    A segment qualifies where two consecutive points of the path are fixed ``PathPoint``s (not conditional
    or moving) on the two bodies of one joint, no wrap object of the path acts between them, the joint is a
    CustomJoint (or PinJoint) whose rotations are linear in one coordinate each (or constant) and whose
    translations do not move, and every coordinate turning it is one the muscle crosses (``crossed``,
    independent coordinates). Each is then checked against OpenSim itself: at ``n_check`` poses of the
    joint's coordinates (seeded, over their ranges) the segment's length must equal the distance between
    OpenSim's two path points to ``tol_m``, else it is left out.
    """
    from pimsk.core.path_surrogate import ExactSegment, exact_segment_length

    osim = _osim()
    model = load_model(model)
    state = model.initSystem()
    cs = model.getCoordinateSet()
    dependent = set(_coupler_map(osim, model))
    joints = {(j.getParentFrame().findBaseFrame().getName(), j.getChildFrame().findBaseFrame().getName()): j
              for j in model.getJointSet()}
    out: dict[str, list[Any]] = {}
    for name, muscle_coords in crossed.items():
        if not model.getMuscles().contains(name):
            raise PathSamplingError(f"muscle {name!r} not in model {model.getName()}", field=name)
        path = model.getMuscles().get(name).getGeometryPath()
        points = path.getPathPointSet()
        wraps = path.getWrapSet()
        wrapped = []  # 1-based inclusive point ranges a wrap object acts on (-1: the path's end)
        for w in range(wraps.getSize()):
            start, stop = int(wraps.get(w).get_range(0)), int(wraps.get(w).get_range(1))
            wrapped.append((1 if start < 1 else start, points.getSize() if stop < 1 else stop))
        out[name] = []
        for i in range(points.getSize() - 1):
            first, second = points.get(i), points.get(i + 1)
            if first.getConcreteClassName() != "PathPoint" or second.getConcreteClassName() != "PathPoint":
                continue
            if any(start <= i + 1 and i + 2 <= stop for start, stop in wrapped):
                continue
            bodies = (first.getParentFrame().findBaseFrame().getName(),
                      second.getParentFrame().findBaseFrame().getName())
            joint, ends = joints.get(bodies), (first, second)
            if joint is None and bodies[::-1] in joints:
                joint, ends = joints[bodies[::-1]], (second, first)
            if joint is None:
                continue
            rotations = _joint_rotations(osim, joint, cs)
            if rotations is None or any(c is not None and (c in dependent or c not in muscle_coords)
                                        for _, c, _, _ in rotations):
                continue
            frame_f, frame_m = joint.getParentFrame(), joint.getChildFrame()
            model.realizePosition(state)
            station = [np.array([e.getParentFrame().findStationLocationInAnotherFrame(
                state, osim.PathPoint.safeDownCast(e).get_location(), frame).get(k) for k in range(3)])
                for e, frame in zip(ends, (frame_f, frame_m))]
            turning = [cs.get(c) for _, c, _, _ in rotations if c is not None]
            lo = np.array([c.getRangeMin() for c in turning])
            hi = np.array([c.getRangeMax() for c in turning])
            poses = lo + _design("lhs", n_check, len(turning), seed) * (hi - lo)
            translation = None
            osim_length = np.empty(n_check)
            for row, pose in enumerate(poses):
                _set_pose(model, state, turning, pose, assemble=False)
                x_fm = frame_m.findTransformBetween(state, frame_f)
                p_fm = np.array([x_fm.p().get(k) for k in range(3)])
                translation = p_fm if translation is None else translation
                if not np.allclose(p_fm, translation, rtol=0.0, atol=tol_m):
                    break
                ground = [np.array([e.getLocationInGround(state).get(k) for k in range(3)]) for e in ends]
                osim_length[row] = np.linalg.norm(ground[1] - ground[0])
            else:
                segment = ExactSegment(station[0].tolist(), station[1].tolist(), translation.tolist(),
                                       [r[0] for r in rotations], [r[1] for r in rotations],
                                       [r[2] for r in rotations], [r[3] for r in rotations],
                                       name=f"{first.getName()} -> {second.getName()} across {joint.getName()}")
                names = [c.getName() for c in turning]
                length, _ = exact_segment_length(segment, names, poses)
                if np.abs(length - osim_length).max() <= tol_m:
                    out[name].append(segment)
            for c in turning:  # back to the default pose
                c.setValue(state, c.getDefaultValue(), False)
    return out


def _set_pose(model: Any, state: Any, coords: list[Any], values: np.ndarray, assemble: bool) -> None:
    for c, v in zip(coords, values):
        c.setValue(state, float(v), False)
    if assemble:
        model.assemble(state)
    model.realizePosition(state)


def _design(method: str, n: int, d: int, seed: int) -> np.ndarray:
    """(n, d) points in [0, 1]^d."""
    if d == 0:
        return np.zeros((n, 0))
    if method == "lhs":
        from scipy.stats import qmc

        return qmc.LatinHypercube(d=d, seed=np.random.default_rng(seed)).random(n)
    if method == "random":
        return np.random.default_rng(seed).random((n, d))
    if method == "grid":
        per = max(2, int(round(n ** (1.0 / d))))
        axes = [np.linspace(0.0, 1.0, per)] * d
        return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    raise PathSamplingError(f"unknown sampling method {method!r}", field="method", hint="lhs, random or grid")


def _difference_moment_arms(model: Any, state: Any, coords: list[Any], q: np.ndarray, length: np.ndarray,
                            objs: list[Any], muscles: Sequence[str], crossed: Mapping[str, Sequence[str]],
                            col: Mapping[str, int], breaks: Mapping[str, Mapping[str, Sequence[float]]],
                            step: float, assemble: bool) -> np.ndarray:
    """(n_muscles, n_coordinates) moment arms -dl/dq at pose ``q`` by differences of OpenSim lengths: central,
    or one-sided (away from the switch) where a muscle's path switch lies within ``step`` of q_j."""
    arms = np.zeros((len(muscles), len(coords)))
    for j, coord in enumerate(coords):
        name = coord.getName()
        users = [k for k, m in enumerate(muscles) if name in crossed[m]]
        if not users:
            continue
        sides = {}
        for sign in (1.0, -1.0):
            pose = q.copy()
            pose[j] += sign * step
            _set_pose(model, state, coords, pose, assemble)
            sides[sign] = np.array([objs[k].getLength(state) for k in users])
        for u, k in enumerate(users):
            near = [b for b in breaks.get(muscles[k], {}).get(name, []) if abs(b - q[j]) <= 2.0 * step]
            if not near:
                slope = (sides[1.0][u] - sides[-1.0][u]) / (2.0 * step)
            elif near[0] > q[j]:  # q + step crosses the switch: backward difference
                slope = (length[k] - sides[-1.0][u]) / step
            else:  # q - step crosses it: forward difference (pieces are closed below: lower <= q)
                slope = (sides[1.0][u] - length[k]) / step
            arms[k, j] = -slope
    _set_pose(model, state, coords, q, assemble)
    return arms


def _fill_pieces(targets: np.ndarray, lo: np.ndarray, hi: np.ndarray, names: list[str], muscles: Sequence[str],
                 breaks: Mapping[str, Mapping[str, Sequence[float]]], min_per_piece: int, seed: int) -> np.ndarray:
    """``targets`` plus Latin-hypercube poses inside every muscle piece (box between path switches) that
    holds fewer than ``min_per_piece`` of them."""
    extra = [targets]
    for k, m in enumerate(muscles):
        per = breaks.get(m, {})
        if not per:
            continue
        axes = []
        for c, vals in per.items():
            edges = [lo[names.index(c)], *sorted(vals), hi[names.index(c)]]
            axes.append([(names.index(c), a, b) for a, b in zip(edges[:-1], edges[1:])])
        for p, box in enumerate(product(*axes)):
            pool = np.vstack(extra)
            inside = np.ones(len(pool), dtype=bool)
            for j, a, b in box:
                inside &= (pool[:, j] >= a) & (pool[:, j] < b)
            need = min_per_piece - int(inside.sum())
            if need <= 0:
                continue
            box_lo, box_hi = lo.copy(), hi.copy()
            for j, a, b in box:
                box_lo[j], box_hi[j] = a, b
            unit = _design("lhs", need, len(names), seed + 1009 * (k + 1) + 17 * p)
            extra.append(box_lo + unit * (box_hi - box_lo))
    return np.vstack(extra)


def sample_paths(model: Any, muscles: Sequence[str], n_samples: int, seed: int = 0, method: str = "lhs",
                 coordinates: Sequence[str] | None = None, ranges: Mapping[str, Sequence[float]] | None = None,
                 fixed: Mapping[str, float] | None = None, crossed: Mapping[str, Sequence[str]] | None = None,
                 moment_arm_tol_m: float = 1e-5, n_probe: int = 64, moment_arms: str = "opensim",
                 difference_step: float = 1e-5, min_per_piece: int = 0) -> PathSamples:
    """Lengths and moment arms of ``muscles`` at ``n_samples`` poses.

    coordinates: restrict the sampled coordinates to these (others stay at ``fixed`` or default values),
    e.g. ``["flexion", "deviation"]`` for the wrist muscles that also cross the elbow. ranges: override a
    coordinate's range (rad or m). crossed: give the per-muscle coordinates instead of detecting them;
    detected coordinates are kept only where ``|moment arm|`` exceeds ``moment_arm_tol_m`` at one of
    ``n_probe`` probe poses. method: ``lhs`` (Latin hypercube), ``random`` or ``grid``.

    moment_arms: ``"opensim"`` (``Muscle.computeMomentArm``, the reference) or ``"difference"``: central
    differences of OpenSim's own ``getLength`` with step ``difference_step`` (rad or m), one-sided where a
    path switch (``breaks``) lies within the step; for the moment arms that OpenSim defines as -dl/dq (all
    paths of independent coordinates) this agrees with computeMomentArm to ~1e-8 m at about a tenth of the
    cost, so large training sets are cheap. Held-out (test) samples should keep ``"opensim"``.

    min_per_piece: where a muscle's path switches split its range into pieces (``breaks``) and the design
    puts fewer than this many poses into a piece (a short interval, e.g. knee hyperextension 0..10 deg), add
    poses there (Latin hypercube inside the piece, every other coordinate over its range) so that each
    piece's own polynomial has samples to fit; the result then has more than ``n_samples`` poses.
    """
    if moment_arms not in ("opensim", "difference"):
        raise PathSamplingError(f"unknown moment_arms {moment_arms!r}", field="moment_arms",
                                hint="opensim or difference")
    osim = _osim()
    model = load_model(model)
    cs = model.getCoordinateSet()
    fixed = dict(fixed or {})
    for name in list(fixed) + list(coordinates or []) + list(ranges or {}):
        if not cs.contains(name):
            raise PathSamplingError(f"coordinate {name!r} not in model {model.getName()}", field=name)
    state = model.initSystem()
    assemble = any(c.get_isEnforced() for c in model.getConstraintSet())
    muscleset = model.getMuscles()

    if crossed is None:
        topo = topological_crossings(model, muscles)
        if coordinates is not None:
            topo = {m: [c for c in cs_ if c in coordinates] for m, cs_ in topo.items()}
        crossed_ = {m: list(v) for m, v in topo.items()}
        probe_names = sorted({c for v in topo.values() for c in v}, key=lambda c: cs.getIndex(c))
    else:
        crossed_ = {m: list(crossed[m]) for m in muscles}
        probe_names = []

    def bounds(name: str) -> tuple[float, float]:
        if ranges and name in ranges:
            lo, hi = (float(x) for x in ranges[name])
        else:
            c = cs.get(name)
            lo, hi = float(c.getRangeMin()), float(c.getRangeMax())
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise PathSamplingError(f"coordinate {name} has no usable range [{lo}, {hi}]", field=name,
                                    hint="pass ranges={name: (min, max)}")
        return lo, hi

    for name, value in fixed.items():
        cs.get(name).setValue(state, float(value), False)

    if probe_names:  # keep a coordinate only where the moment arm is non-zero somewhere
        lo = np.array([bounds(c)[0] for c in probe_names])
        hi = np.array([bounds(c)[1] for c in probe_names])
        unit = np.vstack([_design("lhs", n_probe, len(probe_names), seed + 7919), np.full((1, len(probe_names)), 0.5)])
        coords = [cs.get(c) for c in probe_names]
        peak = {m: np.zeros(len(crossed_[m])) for m in muscles}
        for row in lo + unit * (hi - lo):
            _set_pose(model, state, coords, row, assemble)
            for m in muscles:
                mu = muscleset.get(m)
                for k, c in enumerate(crossed_[m]):
                    peak[m][k] = max(peak[m][k], abs(mu.computeMomentArm(state, cs.get(c))))
        crossed_ = {m: [c for c, p in zip(crossed_[m], peak[m]) if p > moment_arm_tol_m] for m in muscles}
    for m in muscles:
        if not crossed_[m]:
            raise PathSamplingError(f"muscle {m} crosses none of the sampled coordinates", field=m,
                                    hint="check --coordinates")

    names = sorted({c for v in crossed_.values() for c in v}, key=lambda c: cs.getIndex(c))
    dependent = set(_coupler_map(osim, model))
    lo = np.array([bounds(c)[0] for c in names])
    hi = np.array([bounds(c)[1] for c in names])
    unit = _design(method, n_samples, len(names), seed)
    targets = lo + unit * (hi - lo)
    coords = [cs.get(c) for c in names]
    col = {c: i for i, c in enumerate(names)}
    objs = [muscleset.get(m) for m in muscles]
    breaks: dict[str, dict[str, list[float]]] = {}
    for m, per in conditional_breaks(model, muscles).items():
        inside = {c: [v for v in vals if lo[col[c]] < v < hi[col[c]]]
                  for c, vals in per.items() if c in crossed_[m]}
        breaks[m] = {c: v for c, v in inside.items() if v}
    if min_per_piece > 0:
        targets = _fill_pieces(targets, lo, hi, names, muscles, breaks, min_per_piece, seed)
    n = targets.shape[0]
    q = np.empty((n, len(names)))
    length = np.empty((n, len(muscles)))
    arms = np.zeros((n, len(muscles), len(names)))
    for i in range(n):
        _set_pose(model, state, coords, targets[i], assemble)
        q[i] = [c.getValue(state) for c in coords]
        for k, (m, mu) in enumerate(zip(muscles, objs)):
            length[i, k] = mu.getLength(state)
            if moment_arms == "opensim":
                for c in crossed_[m]:
                    arms[i, k, col[c]] = mu.computeMomentArm(state, coords[col[c]])
        if moment_arms == "difference":
            arms[i] = _difference_moment_arms(model, state, coords, q[i], length[i], objs, muscles, crossed_, col,
                                              breaks, difference_step, assemble)
    if not np.all(np.isfinite(length)) or not np.all(np.isfinite(arms)):
        raise PathSamplingError("OpenSim returned non-finite lengths or moment arms", file=model.getName())
    return PathSamples(model=model.getName(), muscles=list(muscles), coordinates=names, breaks=breaks,
                       crossed={m: crossed_[m] for m in muscles}, q=q, length_m=length, moment_arm_m=arms,
                       range_min=lo, range_max=hi,
                       fixed_coordinates={c.getName(): float(c.getValue(state)) for c in cs
                                          if c.getName() not in names and c.getName() not in dependent},
                       method=method, seed=seed, joints={c: cs.get(c).getJoint().getName() for c in names})
