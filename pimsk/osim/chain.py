"""Read an open chain (bodies distal to a joint) from an OpenSim model into a :class:`ChainSpec`.

The spec holds what :class:`pimsk.core.joint_dynamics.OpenChainDynamics` needs: joint geometry (offset
frames, spatial-transform axes and their functions), inertial parameters (mass, centre of mass, inertia about
the centre of mass), gravity, the root body's pose, coupled coordinates. Also: the net joint moments of an
inverse-dynamics ``.sto`` (``<coordinate>_moment`` columns) for tasks where external loads act.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.core.joint_dynamics import AxisSpec, BodySpec, ChainSpec, CouplerSpec
from pimsk.errors import FileFormatError, PimskError

_SPLINES = ("SimmSpline", "NaturalCubicSpline")


class ChainError(PimskError):
    """The requested chain cannot be read from the model."""


def _osim():
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    return osim


def load_model(model: Any) -> Any:
    """An ``opensim.Model`` from a path (or the model itself), with its system initialised."""
    osim = _osim()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise ChainError("model file not found", file=path)
        model = osim.Model(str(path))
    model.initSystem()
    return model


def _mat(rot: Any) -> list[list[float]]:
    return [[float(rot.get(i, j)) for j in range(3)] for i in range(3)]


def _vec(v: Any) -> list[float]:
    return [float(v.get(i)) for i in range(3)]


def function_spec(fn: Any, where: str = "") -> dict[str, Any]:
    """A JSON-able dict for an OpenSim Function of one argument (see ``AxisSpec``).

    Splines are stored as knots with OpenSim's own slopes (``calcDerivative``), which reproduces a cubic
    spline exactly on every interval; beyond the end knots OpenSim extrapolates linearly, and so does the spec.
    """
    osim = _osim()
    kind = fn.getConcreteClassName()
    if kind == "Constant":
        return {"kind": "constant", "value": float(osim.Constant.safeDownCast(fn).getValue())}
    if kind == "LinearFunction":
        f = osim.LinearFunction.safeDownCast(fn)
        return {"kind": "linear", "slope": float(f.getSlope()), "intercept": float(f.getIntercept())}
    if kind == "MultiplierFunction":
        f = osim.MultiplierFunction.safeDownCast(fn)
        return {"kind": "multiplier", "scale": float(f.getScale()), "function": function_spec(f.getFunction(), where)}
    if kind in _SPLINES:
        spline = getattr(osim, kind).safeDownCast(fn)
        xs = [float(spline.getX(i)) for i in range(spline.getSize())]
        order = osim.StdVectorInt([0])
        ys = [float(fn.calcValue(osim.Vector(1, x))) for x in xs]
        dys = [float(fn.calcDerivative(order, osim.Vector(1, x))) for x in xs]
        return {"kind": "hermite", "x": xs, "y": ys, "dydx": dys}
    if kind == "PiecewiseLinearFunction":
        f = osim.PiecewiseLinearFunction.safeDownCast(fn)
        xs = [float(f.getX(i)) for i in range(f.getSize())]
        return {"kind": "piecewise_linear", "x": xs, "y": [float(f.getY(i)) for i in range(f.getSize())]}
    raise ChainError(f"function type {kind} is not supported by the torch chain", field=where,
                     hint="supported: Constant, LinearFunction, MultiplierFunction, SimmSpline, "
                          "NaturalCubicSpline, PiecewiseLinearFunction")


def _joint_axes(osim: Any, joint: Any) -> tuple[list[AxisSpec], list[AxisSpec]]:
    kind = joint.getConcreteClassName()
    if kind == "WeldJoint":
        return [], []
    if kind == "PinJoint":
        name = joint.get_coordinates(0).getName()
        return [AxisSpec([0.0, 0.0, 1.0], {"kind": "linear", "slope": 1.0, "intercept": 0.0}, name)], []
    if kind == "SliderJoint":
        name = joint.get_coordinates(0).getName()
        return [], [AxisSpec([1.0, 0.0, 0.0], {"kind": "linear", "slope": 1.0, "intercept": 0.0}, name)]
    if kind == "CustomJoint":
        st = osim.CustomJoint.safeDownCast(joint).getSpatialTransform()
        rots, trans = [], []
        for k in range(6):
            ta = st.getTransformAxis(k)
            names = ta.getCoordinateNamesInArray()
            coords = [names.get(i) for i in range(names.getSize())]
            if len(coords) > 1:
                raise ChainError(f"joint {joint.getName()}: axis {ta.getName()} depends on {len(coords)} "
                                 "coordinates; only one is supported", field=joint.getName())
            where = f"{joint.getName()}/{ta.getName()}"
            spec = AxisSpec(_vec(ta.get_axis()), function_spec(ta.get_function(), where),
                            coords[0] if coords else None)
            (rots if k < 3 else trans).append(spec)
        return rots, trans
    raise ChainError(f"joint {joint.getName()} is a {kind}; the torch chain supports CustomJoint, PinJoint, "
                     "SliderJoint and WeldJoint", field=joint.getName())


def extract_chain(model: Any, root_body: str, coordinates: Sequence[str],
                  fixed: Mapping[str, float] | None = None) -> ChainSpec:
    """The chain of bodies below ``root_body`` with ``coordinates`` free and everything else fixed.

    model: path or ``opensim.Model`` (scaled). root_body: the body held fixed (e.g. ``radius``, ``femur_r``).
    coordinates: the independent coordinates that move. Coordinates coupled to them by an enforced
    CoordinateCouplerConstraint move with them; every other coordinate keeps ``fixed[name]`` or its
    default value (rad or m). The root's pose in ground is taken from the assembled model in that pose.
    """
    osim = _osim()
    model = load_model(model)
    fixed = dict(fixed or {})
    cs = model.getCoordinateSet()
    for name in list(coordinates) + list(fixed):
        if not cs.contains(name):
            raise ChainError(f"coordinate {name!r} not in model {model.getName()}", field=name)
    bodyset = model.getBodySet()
    if not bodyset.contains(root_body) and root_body != "ground":
        raise ChainError(f"body {root_body!r} not in model {model.getName()}", field=root_body)

    # couplers: dependent -> (independent, function, scale)
    couplers: dict[str, CouplerSpec] = {}
    for con in model.getConstraintSet():
        if not con.get_isEnforced():
            continue
        if con.getConcreteClassName() != "CoordinateCouplerConstraint":
            raise ChainError(f"constraint {con.getName()} ({con.getConcreteClassName()}) is not supported by "
                             "the torch chain", field=con.getName(), hint="disable it or use a serial chain")
        cc = osim.CoordinateCouplerConstraint.safeDownCast(con)
        ind = cc.getIndependentCoordinateNames()
        if ind.getSize() != 1:
            raise ChainError(f"coupler {cc.getName()} has {ind.getSize()} independent coordinates; one supported",
                             field=cc.getName())
        scale = float(osim.PropertyHelper.getValueDouble(cc.getPropertyByName("scale_factor")))
        couplers[cc.getDependentCoordinateName()] = CouplerSpec(
            dependent=cc.getDependentCoordinateName(), independent=ind.get(0),
            function=function_spec(cc.getFunction(), cc.getName()), scale=scale)

    state = model.initSystem()
    for name, value in fixed.items():
        cs.get(name).setValue(state, float(value), False)
    if model.getConstraintSet().getSize():
        model.assemble(state)
    model.realizePosition(state)

    # bodies below the root, parents first
    joint_of: dict[str, Any] = {}
    for j in model.getJointSet():
        joint_of.setdefault(j.getChildFrame().findBaseFrame().getName(), j)
    children: dict[str, list[str]] = {}
    for child, j in joint_of.items():
        children.setdefault(j.getParentFrame().findBaseFrame().getName(), []).append(child)
    order: list[str] = []
    frontier = list(children.get(root_body, []))
    while frontier:
        name = frontier.pop(0)
        order.append(name)
        frontier.extend(children.get(name, []))
    if not order:
        raise ChainError(f"no bodies below {root_body!r}", field=root_body)

    bodies: list[BodySpec] = []
    chain_coords: list[str] = []
    for name in order:
        j = joint_of[name]
        body = bodyset.get(name)
        rots, trans = _joint_axes(osim, j)
        for k in range(j.numCoordinates()):
            chain_coords.append(j.get_coordinates(k).getName())
        pf = j.getParentFrame().findTransformInBaseFrame()
        cf = j.getChildFrame().findTransformInBaseFrame()
        inertia = body.getInertia()
        mom, prod = _vec(inertia.getMoments()), _vec(inertia.getProducts())
        bodies.append(BodySpec(
            name=name, parent=j.getParentFrame().findBaseFrame().getName(), joint=j.getName(),
            mass_kg=float(body.getMass()), com_m=_vec(body.getMassCenter()),
            inertia_kgm2=[[mom[0], prod[0], prod[1]], [prod[0], mom[1], prod[2]], [prod[1], prod[2], mom[2]]],
            parent_offset_rotation=_mat(pf.R()), parent_offset_translation_m=_vec(pf.p()),
            child_offset_rotation=_mat(cf.R()), child_offset_translation_m=_vec(cf.p()),
            rotations=rots, translations=trans))

    coordinates = list(coordinates)
    for name in coordinates:
        if name not in chain_coords:
            raise ChainError(f"coordinate {name!r} does not move any body below {root_body!r}", field=name)
        if name in couplers:
            raise ChainError(f"coordinate {name!r} is dependent (coupler constraint); pass its independent "
                             f"coordinate {couplers[name].independent!r}", field=name)
    used_couplers, fixed_values = [], {}
    for name in chain_coords:
        if name in coordinates:
            continue
        if name in couplers and couplers[name].independent in coordinates:
            used_couplers.append(couplers[name])
        else:
            fixed_values[name] = float(cs.get(name).getValue(state))
    root = model.getGround() if root_body == "ground" else bodyset.get(root_body)
    x_root = root.getTransformInGround(state)
    ranges = {n: [float(cs.get(n).getRangeMin()), float(cs.get(n).getRangeMax())] for n in coordinates}
    rotational = {n: cs.get(n).getMotionType() == 1 for n in coordinates}
    return ChainSpec(root_body=root_body, root_rotation=_mat(x_root.R()), root_translation_m=_vec(x_root.p()),
                     gravity_m_s2=_vec(model.getGravity()), coordinates=coordinates, bodies=bodies,
                     couplers=used_couplers, fixed_coordinates=fixed_values, coordinate_ranges=ranges,
                     rotational=rotational, model=model.getName())


def read_id_moments(path: str | Path, coordinates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Net joint moments from an OpenSim inverse-dynamics ``.sto`` (for tasks where external loads act).

    Returns ``time_s`` (n_frames,) and ``moment`` (n_frames, n_coordinates): N m from the
    ``<coordinate>_moment`` columns of rotational coordinates, N from ``<coordinate>_force`` of translational ones.
    """
    from pimsk.io.storage import read_storage

    table = read_storage(path)
    cols = []
    for name in coordinates:
        for suffix in ("_moment", "_force"):
            if name + suffix in table.labels:
                cols.append(table.column(name + suffix))
                break
        else:
            raise FileFormatError(f"no column {name}_moment (or {name}_force)", file=path, field=name,
                                  hint="is this an inverse-dynamics output?")
    return table.time_s.copy(), np.stack(cols, axis=1) if cols else np.zeros((table.n_frames, 0))
