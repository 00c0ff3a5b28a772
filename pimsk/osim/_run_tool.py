"""Child-process entry: everything that calls into OpenSim's C++ runs here, never in the caller.

    python -m pimsk.osim._run_tool tool SETUP.xml --cls CMCTool [--print-resolved OUT.xml]
    python -m pimsk.osim._run_tool marker-errors SPEC.json
    python -m pimsk.osim._run_tool degroote MODEL_IN MODEL_OUT
    python -m pimsk.osim._run_tool model-info MODEL OUT.json
    python -m pimsk.osim._run_tool so-passive SETUP.xml

The caller (``pimsk.osim.runner``) sends stdout/stderr to the step's log file, so OpenSim's console log
lands there; OpenSim's own ``opensim.log`` file sink is removed before anything is logged.
Exit status: 0 success, 3 the tool reported failure, 4 an exception (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path


_KEEP: list[object] = []


def _osim(level: str = "info"):
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim(level)
    return osim


def _mark_all_set(obj, depth: int = 0) -> None:
    """Mark every property as set so ``printToXML`` records defaults too (the full resolved setup)."""
    for i in range(obj.getNumProperties()):
        prop = obj.updPropertyByIndex(i)
        prop.setValueIsDefault(False)
        if depth < 6 and prop.isObjectProperty():
            for j in range(prop.size()):
                try:
                    _mark_all_set(prop.updValueAsObject(j), depth + 1)
                except Exception:  # an object the bindings cannot reach stays as OpenSim prints it
                    pass


def cmd_tool(args: argparse.Namespace) -> int:
    setup = Path(args.setup).resolve()
    os.chdir(setup.parent)  # ScaleTool prefixes the setup's folder to every path: run from there
    osim = _osim(args.level)
    cls = getattr(osim, args.cls)
    t0 = time.perf_counter()
    tool = cls(setup.name)
    if args.print_resolved:
        _mark_all_set(tool)
        tool.printToXML(str(Path(args.print_resolved).resolve()))
    print(f"[pimsk] running {args.cls} from {setup}", flush=True)
    ok = bool(tool.run())
    _KEEP.append(tool)  # no teardown before os._exit (see the note at the end of this file)
    print(f"[pimsk] {args.cls} returned {ok} after {time.perf_counter() - t0:.3f} s", flush=True)
    return 0 if ok else 3


def _coordinate_refs(osim, model, coord_tasks: dict) -> object:
    refs = osim.SimTKArrayCoordinateReference()
    cs = model.getCoordinateSet()
    for name, task in coord_tasks.items():
        if float(task.get("weight", 1.0)) <= 0 or not task.get("apply", True):
            continue
        if not cs.contains(name):
            raise KeyError(f"coordinate task {name!r}: no such coordinate in the model")
        kind = task.get("value_type", "default_value")
        if kind == "default_value":
            value = cs.get(name).getDefaultValue()
        elif kind == "manual_value":
            value = float(task["value"])
        else:
            raise ValueError(f"coordinate task {name!r}: value_type {kind!r} is not supported here")
        ref = osim.CoordinateReference(name, osim.Constant(value))
        ref.setWeight(float(task.get("weight", 1.0)))
        refs.push_back(ref)
    return refs


def cmd_marker_errors(args: argparse.Namespace) -> int:
    """Solve IK frame by frame (OpenSim's InverseKinematicsSolver, as the IK tool does) and report
    every weighted marker's distance to its experimental position (m), per frame."""
    spec = json.loads(Path(args.spec).read_text())
    osim = _osim("warn")
    model = osim.Model(spec["model"])
    state = model.initSystem()
    weights = osim.SetMarkerWeights()
    for name, w in spec["markers"].items():
        if w > 0:
            weights.cloneAndAppend(osim.MarkerWeight(name, float(w)))
    mref = osim.MarkersReference(spec["trc"], weights)
    crefs = _coordinate_refs(osim, model, spec.get("coordinates", {}))
    cw = spec.get("constraint_weight", math.inf)
    solver = osim.InverseKinematicsSolver(model, mref, crefs, math.inf if cw is None else float(cw))
    solver.setAccuracy(float(spec.get("accuracy", 1e-5)))
    times = list(mref.getMarkerTable().getIndependentColumn())
    t0, t1 = spec["time_range"]
    eps = 1e-9
    frames = [t for t in times if t0 - eps <= t <= t1 + eps]
    if not frames:
        raise ValueError(f"no marker frames between {t0} and {t1} s in {spec['trc']}")
    errors = osim.SimTKArrayDouble()
    rows = []
    state.setTime(frames[0])
    solver.assemble(state)
    names: list[str] = []
    for k, t in enumerate(frames):
        state.setTime(t)
        solver.track(state)
        solver.computeCurrentMarkerErrors(errors)
        if k == 0:
            names = [solver.getMarkerNameForIndex(i) for i in range(solver.getNumMarkersInUse())]
        rows.append([t] + [errors.getElt(i) for i in range(errors.size())])
    Path(spec["out"]).write_text(json.dumps({"markers": names, "rows": rows}))
    print(f"[pimsk] marker errors: {len(names)} markers x {len(frames)} frames", flush=True)
    return 0


def cmd_degroote(args: argparse.Namespace) -> int:
    """Replace every muscle by DeGrooteFregly2016Muscle and print the model: Millard2012/Thelen2003 by OpenSim's
    own replaceMuscles, other types from their base Muscle properties (pimsk.osim.muscle_params)."""
    osim = _osim("info")
    from pimsk.osim.muscle_params import MAPPED, replace_with_degroote

    model = osim.Model(args.model_in)
    model.initSystem()
    current = model.getMuscles()
    base_only = sorted({f"{current.get(i).getConcreteClassName()}"
                        for i in range(current.getSize())
                        if current.get(i).getConcreteClassName() not in ("DeGrooteFregly2016Muscle", *MAPPED)})
    replace_with_degroote(model)
    if base_only:
        print(f"[pimsk] warning: muscles of type {', '.join(base_only)} converted from their base Muscle properties "
              "(max isometric force, optimal fiber and tendon slack length, pennation, max contraction velocity, "
              "path); their other properties take DeGrooteFregly2016Muscle defaults", flush=True)
    model.finalizeConnections()
    model.initSystem()
    muscles = model.getMuscles()
    others = [muscles.get(i).getName() + ":" + muscles.get(i).getConcreteClassName()
              for i in range(muscles.getSize())
              if muscles.get(i).getConcreteClassName() != "DeGrooteFregly2016Muscle"]
    if others:
        print(f"[pimsk] muscles not replaced: {', '.join(others)}", file=sys.stderr, flush=True)
        return 3
    model.printToXML(str(Path(args.model_out).resolve()))
    print(f"[pimsk] replaced {muscles.getSize()} muscles by DeGrooteFregly2016Muscle", flush=True)
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    """Coordinates (joint, motion type, locked, coupled), root joint and mass of a model, as JSON."""
    osim = _osim("warn")
    model = osim.Model(args.model)
    state = model.initSystem()
    coupled: set[str] = set()
    cset = model.getConstraintSet()
    for i in range(cset.getSize()):
        c = osim.CoordinateCouplerConstraint.safeDownCast(cset.get(i))
        if c is not None:
            coupled.add(c.getDependentCoordinateName())
    coords = []
    for c in model.getCoordinateSet():
        joint = c.getJoint()
        mt = c.getMotionType()
        coords.append({
            "name": c.getName(),
            "joint": joint.getName(),
            "parent": joint.getParentFrame().findBaseFrame().getName(),
            "child": joint.getChildFrame().findBaseFrame().getName(),
            "motion": {osim.Coordinate.Rotational: "rotational", osim.Coordinate.Translational: "translational",
                       osim.Coordinate.Coupled: "coupled"}.get(mt, "other"),
            "locked": bool(c.get_locked()),
            "prescribed": bool(c.get_prescribed()),
            "dependent": c.getName() in coupled,
            "default_value": c.getDefaultValue(),
            "range": [c.getRangeMin(), c.getRangeMax()],
        })
    bodies = {}
    for b in model.getBodySet():
        com = b.getMassCenter()
        bodies[b.getName()] = {"mass_kg": b.getMass(), "com_m": [com.get(0), com.get(1), com.get(2)]}
    ground = model.getGround().getName()
    root_joints = [j.getName() for j in model.getJointSet()
                   if j.getParentFrame().findBaseFrame().getName() == ground]
    forces = model.getForceSet()
    com = model.calcMassCenterPosition(state)
    info = {
        "name": model.getName(),
        "mass_kg": model.getTotalMass(state),
        "gravity": [model.getGravity().get(i) for i in range(3)],
        "ground": ground,
        "root_joints": root_joints,
        "com_default_m": [com.get(0), com.get(1), com.get(2)],
        "coordinates": coords,
        "markers": [mk.getName() for mk in model.getMarkerSet()],
        "bodies": bodies,
        "muscles": [model.getMuscles().get(i).getName() for i in range(model.getMuscles().getSize())],
        "actuators": [forces.get(i).getName() for i in range(forces.getSize())
                      if osim.Actuator.safeDownCast(forces.get(i)) is not None],
    }
    Path(args.out).write_text(json.dumps(info, indent=1))
    return 0


def cmd_so_passive(args: argparse.Namespace) -> int:
    """Static optimization with passive fibre force (pimsk.osim.so_passive) from its setup file."""
    _osim()
    from pimsk.osim.so_passive import solve_setup

    solve_setup(args.setup)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pimsk.osim._run_tool")
    s = p.add_subparsers(dest="cmd", required=True)
    t = s.add_parser("tool")
    t.add_argument("setup")
    t.add_argument("--cls", required=True)
    t.add_argument("--print-resolved", default=None)
    t.add_argument("--level", default="info")
    t.set_defaults(func=cmd_tool)
    m = s.add_parser("marker-errors")
    m.add_argument("spec")
    m.set_defaults(func=cmd_marker_errors)
    d = s.add_parser("degroote")
    d.add_argument("model_in")
    d.add_argument("model_out")
    d.set_defaults(func=cmd_degroote)
    i = s.add_parser("model-info")
    i.add_argument("model")
    i.add_argument("out")
    i.set_defaults(func=cmd_model_info)
    so = s.add_parser("so-passive")
    so.add_argument("setup")
    so.set_defaults(func=cmd_so_passive)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # the parent reads the message from the log
        print(f"[pimsk] error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 4


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    try:  # flush C stdout/stderr (OpenSim's console log), which os._exit would drop
        import ctypes

        libc = ctypes.CDLL(None)
        for stream in ("stdout", "stderr"):
            libc.fflush(ctypes.c_void_p.in_dll(libc, stream))
    except (OSError, AttributeError, ValueError):
        pass
    # Leave without flushing OpenSim's other C streams: RRA/CMC keep a FILE* on *_states.sto holding
    # a stub header (UNKNOWN, nRows=0, ...) that a normal exit flushes over the head of the finished
    # file. os._exit drops it. (The runner still checks and repairs the file, e.g. after a crash.)
    os._exit(code)
