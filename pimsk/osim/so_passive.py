"""Static optimization that keeps each muscle's passive fibre force (``pimsk so --method passive``).

OpenSim's StaticOptimization (StaticOptimizationTarget.cpp, 4.x) overrides each muscle's force with
``a * F_opt``, ``F_opt = calcInextensibleTendonActiveFiberForce(s, 1)`` (rigid tendon, force-length-velocity):
the passive fibre force is left out, so a muscle stretched into its passive range is credited with none of
the moment it makes. This variant solves, frame by frame (Anderson & Pandy 2001, Crowninshield & Brand 1981),

    min  sum_i |x_i|^p
    s.t. sum_i R_ci (x_i F_act,i + F_pas,i) + sum_k B_ck x_k F_opt,k = tau_c   (every free coordinate c)
         min_control_i <= x_i <= max_control_i

where for muscle ``i`` at the frame's pose and speeds: ``F_act,i`` the active fibre force along the tendon at
full activation, ``F_pas,i`` the passive fibre force along the tendon (elastic + damping), ``R_ci`` the moment
arm (OpenSim's ``computeMomentArm``); ``x_k F_opt,k`` a coordinate actuator (reserve) of optimal force
``F_opt,k``; ``tau`` the net generalized forces of inverse dynamics (OpenSim's InverseDynamicsSolver on the
model with muscles and actuators switched off, external loads on). Kinematics as OpenSim's tools take them:
the coordinates file padded, low-pass filtered (``Storage.lowpassIIR``) and fitted with 5th-order GCV splines
(q, dq/dt, d2q/dt2). ``tendon``: ``"rigid"`` evaluates the fibre at the rigid-tendon length (as OpenSim's SO);
``"equilibrium"`` then iterates: fibre-tendon equilibrium at the solved activations gives new ``F_act``,
``F_pas``, solved again (a fixed point, a few iterations). Reported force = tendon force ``x F_act + F_pas``.

Outputs in ``out_dir``, named as OpenSim's SO names them so downstream code does not care which ran:
``<name>_StaticOptimization_activation.sto``, ``<name>_StaticOptimization_force.sto`` (N; actuators N m),
plus ``<name>_StaticOptimization_passive_force.sto`` (N, the passive part) and ``<name>_so_passive.json``
(constraint violations, iterations). The setup is ``setup_<step>.xml`` (root ``PimskStaticOptimization``);
``pimsk so --setup`` reruns it. The OpenSim work runs in a child process (``pimsk.osim._run_tool so-passive``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pimsk.errors import ConfigError, FileFormatError
from pimsk.osim import setup_xml as sx
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, check_outputs, run_child

SETUP_TAG = "PimskStaticOptimization"
TENDON_MODES = ("rigid", "equilibrium")


@dataclass
class PassiveSOSettings:
    """Everything one run needs (paths absolute). ``time_range`` (s) None: the whole coordinates file;
    ``lowpass_hz`` None: no filter; ``include_passive`` False drops ``F_pas`` (OpenSim's formulation)."""

    model: Path
    coordinates: Path
    out_dir: Path
    time_range: tuple[float, float] | None = None
    external_loads: Path | None = None
    force_set_files: list[Path] = field(default_factory=list)
    replace_force_set: bool = False
    lowpass_hz: float | None = 6.0
    activation_exponent: float = 2.0
    use_muscle_physiology: bool = True
    include_passive: bool = True
    tendon: str = "rigid"
    max_equilibrium_iterations: int = 8
    name: str = "so"

    def output_names(self) -> dict[str, str]:
        return {"activation": f"{self.name}_StaticOptimization_activation.sto",
                "force": f"{self.name}_StaticOptimization_force.sto",
                "passive_force": f"{self.name}_StaticOptimization_passive_force.sto",
                "summary": f"{self.name}_so_passive.json"}


# --------------------------------------------------------------------------------------------------
# setup file

def write_setup(settings: PassiveSOSettings, path: str | Path) -> Path:
    """The settings as ``<OpenSimDocument><PimskStaticOptimization name=...>`` (paths absolute)."""
    tree, el = sx.document(SETUP_TAG, settings.name)
    sx.sub(el, "model_file", Path(settings.model))
    sx.sub(el, "coordinates_file", Path(settings.coordinates))
    sx.sub(el, "results_directory", Path(settings.out_dir))
    sx.sub(el, "time_range", list(settings.time_range) if settings.time_range else "")
    sx.sub(el, "external_loads_file", Path(settings.external_loads) if settings.external_loads else "")
    sx.sub(el, "force_set_files", sx.paths_text(settings.force_set_files))
    sx.sub(el, "replace_force_set", bool(settings.replace_force_set))
    sx.sub(el, "lowpass_cutoff_frequency_for_coordinates",
           float(settings.lowpass_hz) if settings.lowpass_hz else -1.0)
    sx.sub(el, "activation_exponent", float(settings.activation_exponent))
    sx.sub(el, "use_muscle_physiology", bool(settings.use_muscle_physiology))
    sx.sub(el, "include_passive_fiber_force", bool(settings.include_passive))
    sx.sub(el, "tendon", settings.tendon)
    sx.sub(el, "max_equilibrium_iterations", int(settings.max_equilibrium_iterations))
    return sx.write(tree, path)


def is_passive_setup(path: str | Path) -> bool:
    """True when ``path`` is a setup written by :func:`write_setup`."""
    tree = sx.parse(path)
    root = tree.getroot()
    return root.tag == SETUP_TAG or root.find(SETUP_TAG) is not None


def read_setup(path: str | Path) -> PassiveSOSettings:
    """Settings from a ``PimskStaticOptimization`` setup; relative paths are taken from its folder."""
    path = Path(path).resolve()
    root = sx.parse(path).getroot()
    el = root if root.tag == SETUP_TAG else root.find(SETUP_TAG)
    if el is None:
        raise FileFormatError(f"no <{SETUP_TAG}> element: not a passive static optimization setup", file=str(path))

    def text(tag: str, required: bool = False) -> str:
        node = el.find(tag)
        value = (node.text or "").strip() if node is not None else ""
        if required and not value:
            raise FileFormatError("missing", file=str(path), field=tag)
        return value

    def as_path(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else (path.parent / p).resolve()

    def as_bool(tag: str, default: bool) -> bool:
        value = text(tag).lower()
        return default if not value else value in ("true", "1", "yes")

    try:
        tr = [float(v) for v in text("time_range").split()]
        lowpass = float(text("lowpass_cutoff_frequency_for_coordinates") or -1.0)
        exponent = float(text("activation_exponent") or 2.0)
        iterations = int(text("max_equilibrium_iterations") or 8)
    except ValueError as exc:
        raise FileFormatError(f"not a number: {exc}", file=str(path)) from None
    if tr and len(tr) != 2:
        raise FileFormatError(f"expected two times, got {tr}", file=str(path), field="time_range")
    tendon = text("tendon") or "rigid"
    if tendon not in TENDON_MODES:
        raise FileFormatError(f"{tendon!r} is not one of {', '.join(TENDON_MODES)}", file=str(path), field="tendon")
    return PassiveSOSettings(
        model=as_path(text("model_file", True)),
        coordinates=as_path(text("coordinates_file", True)),
        out_dir=as_path(text("results_directory") or "."),
        time_range=(tr[0], tr[1]) if tr else None,
        external_loads=as_path(text("external_loads_file")) if text("external_loads_file") else None,
        force_set_files=[as_path(p) for p in text("force_set_files").split()],
        replace_force_set=as_bool("replace_force_set", False),
        lowpass_hz=lowpass if lowpass > 0 else None,
        activation_exponent=exponent,
        use_muscle_physiology=as_bool("use_muscle_physiology", True),
        include_passive=as_bool("include_passive_fiber_force", True),
        tendon=tendon,
        max_equilibrium_iterations=iterations,
        name=el.get("name") or "so",
    )


# --------------------------------------------------------------------------------------------------
# running (parent side)

def run_so_passive(
    *,
    model: str | Path,
    coordinates: str | Path,
    out_dir: str | Path,
    time_range: tuple[float, float] | None = None,
    external_loads: str | Path | None = None,
    force_set_files: Sequence[str | Path] = (),
    replace_force_set: bool = False,
    lowpass_hz: float | None = 6.0,
    activation_exponent: float = 2.0,
    use_muscle_physiology: bool = True,
    include_passive: bool = True,
    tendon: str = "rigid",
    log_file: str | Path | None = None,
    name: str = "so",
    step: str = "so",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> ToolRun:
    """Write ``out_dir/setup_<step>.xml`` and run it in a child process; ``outputs`` = [activation .sto,
    force .sto]; ``extra``: passive force .sto and the JSON summary."""
    if tendon not in TENDON_MODES:
        raise ConfigError(f"tendon {tendon!r} is not one of {', '.join(TENDON_MODES)}", subject=subject,
                          trial=trial, field="tendon")
    for path, what in ((Path(model), "model"), (Path(coordinates), "coordinates file")):
        if not path.is_file():
            raise FileFormatError(f"{what} not found", subject=subject, trial=trial, file=str(path))
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = PassiveSOSettings(
        model=Path(model).resolve(), coordinates=Path(coordinates).resolve(), out_dir=out,
        time_range=(float(time_range[0]), float(time_range[1])) if time_range else None,
        external_loads=Path(external_loads).resolve() if external_loads else None,
        force_set_files=[Path(p).resolve() for p in force_set_files], replace_force_set=replace_force_set,
        lowpass_hz=lowpass_hz, activation_exponent=activation_exponent,
        use_muscle_physiology=use_muscle_physiology, include_passive=include_passive, tendon=tendon, name=name)
    setup = write_setup(settings, out / f"setup_{step}.xml")
    return run_setup_file(setup, step=step, out_dir=out, log_file=log_file, subject=subject, trial=trial,
                          timeout_s=timeout_s)


def run_setup_file(setup: str | Path, *, step: str = "so", out_dir: str | Path | None = None,
                   log_file: str | Path | None = None, subject: str | None = None, trial: str | None = None,
                   timeout_s: float | None = DEFAULT_TIMEOUT_S) -> ToolRun:
    """Run a ``PimskStaticOptimization`` setup in a child; results in ``out_dir`` (default: the setup's
    ``results_directory``). A setup from elsewhere is first rewritten as ``out_dir/setup_<step>.xml``."""
    settings = read_setup(setup)
    setup = Path(setup).resolve()
    if out_dir is not None and Path(out_dir).resolve() != settings.out_dir:
        settings.out_dir = Path(out_dir).resolve()
    resolved = settings.out_dir / f"setup_{step}.xml"
    if resolved != setup:
        write_setup(settings, resolved)
    log = Path(log_file).resolve() if log_file else settings.out_dir / f"{step}.log"
    names = settings.output_names()
    outs = [settings.out_dir / names["activation"], settings.out_dir / names["force"]]
    extra = {"passive_force": settings.out_dir / names["passive_force"], "summary": settings.out_dir / names["summary"]}
    for p in [*outs, *extra.values()]:  # a stale file from an earlier run must not pass for this run's output
        if p.exists():
            p.unlink()
    wall = run_child(["so-passive", str(resolved)], log_file=log, cwd=settings.out_dir, timeout_s=timeout_s,
                     step=step, subject=subject, trial=trial, setup=resolved)
    check_outputs([*outs, *extra.values()], step=step, log_file=log, subject=subject, trial=trial, setup=resolved)
    return ToolRun(step=step, tool="PassiveStaticOptimization", setup=resolved, log_file=log,
                   out_dir=settings.out_dir, outputs=outs, wall_s=wall, extra=extra)


# --------------------------------------------------------------------------------------------------
# the optimization (numpy / scipy only)

def solve_frame(A: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray, exponent: float = 2.0,
                x0: np.ndarray | None = None) -> tuple[np.ndarray, float, bool]:
    """min sum |x|^p s.t. A x = b, lower <= x <= upper; returns (x, max |A x - b|, converged).

    A: (n_constraints, n_actuators), b: (n_constraints,). Scaled so each constraint row has unit norm.
    When the constraints cannot be met inside the bounds, the bounded least-squares compromise
    (constraint residual weighted 1e6 against the cost) is returned with converged False.
    """
    from scipy.optimize import lsq_linear, minimize

    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    scale = np.linalg.norm(A, axis=1)
    scale[scale == 0] = 1.0
    As, bs = A / scale[:, None], b / scale
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if x0 is None:
        x0 = np.clip(np.zeros(A.shape[1]), lo, hi)
    p = float(exponent)
    res = minimize(lambda x: float(np.sum(np.abs(x) ** p)), np.clip(x0, lo, hi),
                   jac=lambda x: p * np.sign(x) * np.abs(x) ** (p - 1.0), method="SLSQP",
                   bounds=list(zip(lo, hi)),
                   constraints=[{"type": "eq", "fun": lambda x: As @ x - bs, "jac": lambda x: As}],
                   options={"ftol": 1e-12, "maxiter": 300})
    x = np.clip(res.x, lo, hi)
    violation = float(np.max(np.abs(A @ x - b))) if len(b) else 0.0
    tol = 1e-6 * max(1.0, float(np.max(np.abs(b)))) if len(b) else 0.0
    if res.success and violation <= tol:
        return x, violation, True
    w = 1e3
    fallback = lsq_linear(np.vstack([w * As, np.eye(A.shape[1])]), np.concatenate([w * bs, np.zeros(A.shape[1])]),
                          bounds=(lo, hi), method="bvls")
    xf = np.clip(fallback.x, lo, hi)
    vf = float(np.max(np.abs(A @ xf - b)))
    return (x, violation, False) if violation <= vf else (xf, vf, False)


# --------------------------------------------------------------------------------------------------
# the OpenSim side (child process)

@dataclass
class _Kinematics:
    time_s: np.ndarray  # (n,)
    q: np.ndarray  # (n, n_coords) rad / m, coordinates in CoordinateSet order
    u: np.ndarray
    udot: np.ndarray


def _kinematics(osim, model, settings: PassiveSOSettings, coords: list) -> _Kinematics:
    """Filtered coordinates and their spline derivatives at the coordinates file's own frames inside the time
    range, as OpenSim's tools form them (pad half the record, IIR low-pass, degrees -> radians, GCV splines)."""
    from pimsk.osim.storage import read_storage

    raw = read_storage(settings.coordinates)
    t = raw.time_s
    if settings.time_range is not None:
        t0, t1 = settings.time_range
        if t1 <= t0:
            raise ConfigError(f"time range {t0}..{t1} s is empty", file=str(settings.coordinates), field="time_range")
        t = t[(t >= t0 - 1e-9) & (t <= t1 + 1e-9)]
    if t.size < 2:
        raise FileFormatError("fewer than two frames inside the time range", file=str(settings.coordinates))
    sto = osim.Storage(str(settings.coordinates))
    if settings.lowpass_hz:
        sto.pad(sto.getSize() // 2)
        sto.lowpassIIR(float(settings.lowpass_hz))
    if sto.isInDegrees():
        model.getSimbodyEngine().convertDegreesToRadians(sto)
    splines = osim.GCVSplineSet(5, sto)
    names = [splines.get(i).getName() for i in range(splines.getSize())]
    d1, d2 = osim.StdVectorInt([0]), osim.StdVectorInt([0, 0])
    n, m = t.size, len(coords)
    q, u, udot = np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m))
    for j, c in enumerate(coords):
        label = next((lab for lab in (c.getName(), c.getAbsolutePathString() + "/value") if lab in names), None)
        if label is None:  # a coordinate the file lacks stays at its default (as OpenSim's tools do)
            q[:, j] = c.getDefaultValue()
            continue
        f = splines.get(label)
        for k, tk in enumerate(t):
            x = osim.Vector(1, float(tk))
            q[k, j] = f.calcValue(x)
            u[k, j] = f.calcDerivative(d1, x)
            udot[k, j] = f.calcDerivative(d2, x)
    return _Kinematics(t, q, u, udot)


def _load_model(osim, settings: PassiveSOSettings, rigid: bool, actuators_off: bool = False):
    """The model with the settings' force sets and external loads; ``rigid``: tendons made inextensible;
    ``actuators_off``: every muscle and actuator switched off (the model inverse dynamics runs on)."""
    model = osim.Model(str(settings.model))
    if settings.replace_force_set:
        model.updForceSet().clearAndDestroy()
    for path in settings.force_set_files:
        fs = osim.ForceSet(str(path), True)
        for i in range(fs.getSize()):
            model.addForce(fs.get(i).clone())
    if settings.external_loads is not None:
        loads = osim.ExternalLoads(str(settings.external_loads), True)
        data = Path(loads.getDataFileName())
        if not data.is_absolute():  # relative to the ExternalLoads file, as OpenSim's tools read it
            loads.setDataFileName(str((settings.external_loads.parent / data).resolve()))
        model.addModelComponent(loads)
    if rigid:
        muscles = model.updMuscles()
        for i in range(muscles.getSize()):
            muscles.get(i).set_ignore_tendon_compliance(True)
    if actuators_off:
        fs = model.updForceSet()
        for i in range(fs.getSize()):
            if osim.Actuator.safeDownCast(fs.get(i)) is not None:
                fs.get(i).set_appliesForce(False)
    model.finalizeConnections()
    state = model.initSystem()
    model.setAllControllersEnabled(False)
    return model, state


def _actuators(osim, model, settings: PassiveSOSettings):
    """(muscles, coordinate actuators) of the force set; any other scalar actuator is refused."""
    muscles, coord_acts = [], []
    fs = model.getForceSet()
    for i in range(fs.getSize()):
        f = fs.get(i)
        if not f.get_appliesForce():
            continue
        mus = osim.Muscle.safeDownCast(f)
        if mus is not None:
            muscles.append(mus)
            continue
        ca = osim.CoordinateActuator.safeDownCast(f)
        if ca is not None:
            coord_acts.append(ca)
            continue
        if osim.ScalarActuator.safeDownCast(f) is not None:
            raise ConfigError(f"actuator {f.getName()!r} ({f.getConcreteClassName()}) is not supported by the "
                              "passive method (muscles and CoordinateActuators only)", file=str(settings.model),
                              hint="use `pimsk so --method opensim` for models with point or torque actuators")
    return muscles, coord_acts


def _coordinates(model, state) -> tuple[list, np.ndarray]:
    """(coordinates in CoordinateSet order, index of each one's speed in the state's U vector)."""
    cs = model.getCoordinateSet()
    coords = [cs.get(i) for i in range(cs.getSize())]
    probe = state
    if probe.getNU() != len(coords):
        raise ConfigError(f"{probe.getNU()} mobilities but {len(coords)} coordinates: the passive method needs one "
                          "coordinate per mobility (no quaternion joints)", file=model.getInputFileName())
    for j, c in enumerate(coords):
        c.setSpeedValue(probe, float(j + 1))
    order = np.rint(np.asarray(probe.getU().to_numpy())).astype(int) - 1
    for c in coords:  # locked coordinates keep speed 0; the others are set frame by frame
        c.setSpeedValue(probe, 0.0)
    u_index = np.empty(len(coords), dtype=int)
    u_index[order] = np.arange(len(coords))
    return coords, u_index


def _set_kinematics(model, state, coords, free_idx, kin: _Kinematics, k: int) -> None:
    state.setTime(float(kin.time_s[k]))
    for j in free_idx:
        coords[j].setValue(state, float(kin.q[k, j]), False)
        coords[j].setSpeedValue(state, float(kin.u[k, j]))
    model.realizeVelocity(state)


def _muscle_terms(model, state, muscles, activations: np.ndarray | None, use_physiology: bool,
                  include_passive: bool) -> tuple[np.ndarray, np.ndarray]:
    """(F_act, F_pas) along the tendon, N, per muscle at this state. activations None: rigid tendon at
    full activation; else fibre-tendon equilibrium at these activations (capacity = active force / a)."""
    n = len(muscles)
    f_act, f_pas = np.zeros(n), np.zeros(n)
    eval_a = np.ones(n) if activations is None else np.maximum(activations, 1e-3)
    for i, m in enumerate(muscles):
        m.setActivation(state, float(eval_a[i]))
    if activations is not None:
        model.equilibrateMuscles(state)
    model.realizeDynamics(state)
    for i, m in enumerate(muscles):
        if use_physiology:
            f_act[i] = m.getActiveFiberForceAlongTendon(state) / eval_a[i]
        else:
            f_act[i] = m.getMaxIsometricForce()
        if include_passive:
            f_pas[i] = m.getPassiveFiberForceAlongTendon(state)
    return f_act, f_pas


def solve_setup(setup: str | Path) -> dict:
    """Run a ``PimskStaticOptimization`` setup in this process (the child); write the outputs; return the
    summary."""
    import opensim as osim

    from pimsk.io.containers import Table
    from pimsk.io.storage import write_storage

    t_start = time.perf_counter()
    settings = read_setup(setup)
    model, state = _load_model(osim, settings, rigid=True)
    coords, u_index = _coordinates(model, state)
    free_idx = [j for j, c in enumerate(coords) if not c.isConstrained(state)]
    if not free_idx:
        raise ConfigError("the model has no free coordinate to solve for", file=str(settings.model))
    muscles, coord_acts = _actuators(osim, model, settings)
    kin = _kinematics(osim, model, settings, coords)
    n, nm, na = kin.time_s.size, len(muscles), len(coord_acts)
    path_to_idx = {c.getAbsolutePathString(): j for j, c in enumerate(coords)}
    act_coord = [path_to_idx.get(ca.getCoordinate().getAbsolutePathString()) for ca in coord_acts]
    f_opt_act = np.array([ca.getOptimalForce() for ca in coord_acts])
    lower = np.array([a.getMinControl() for a in [*muscles, *coord_acts]])
    upper = np.array([a.getMaxControl() for a in [*muscles, *coord_acts]])
    print(f"[pimsk] passive static optimization: {nm} muscles, {na} coordinate actuators, "
          f"{len(free_idx)} free coordinates ({', '.join(coords[j].getName() for j in free_idx)}), {n} frames, "
          f"tendon {settings.tendon}, passive force {'in' if settings.include_passive else 'out'}", flush=True)

    # inverse dynamics with every muscle and actuator off (external loads and other forces on)
    id_model, id_state = _load_model(osim, settings, rigid=True, actuators_off=True)
    id_coords, id_u_index = _coordinates(id_model, id_state)
    solver = osim.InverseDynamicsSolver(id_model)
    tau = np.zeros((n, len(free_idx)))
    R = np.zeros((n, len(free_idx), nm))
    f_act = np.zeros((n, nm))
    f_pas = np.zeros((n, nm))
    for k in range(n):
        _set_kinematics(id_model, id_state, id_coords, free_idx, kin, k)
        udot = np.zeros(id_state.getNU())
        udot[id_u_index] = kin.udot[k]
        gen = np.asarray(solver.solve(id_state, osim.Vector(udot.tolist())).to_numpy())
        tau[k] = gen[id_u_index[free_idx]]
        _set_kinematics(model, state, coords, free_idx, kin, k)
        for c_i, j in enumerate(free_idx):
            for i, m in enumerate(muscles):
                R[k, c_i, i] = m.computeMomentArm(state, coords[j])
        f_act[k], f_pas[k] = _muscle_terms(model, state, muscles, None, settings.use_muscle_physiology,
                                           settings.include_passive)
    B = np.zeros((len(free_idx), na))
    for k_a, j in enumerate(act_coord):
        if j in free_idx:
            B[free_idx.index(j), k_a] = f_opt_act[k_a]

    def solve_all(fa: np.ndarray, fp: np.ndarray, x_prev: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        x = np.zeros((n, nm + na))
        viol = np.zeros(n)
        failed = 0
        guess = None
        for k in range(n):
            A = np.hstack([R[k] * fa[k][None, :], B])
            b = tau[k] - R[k] @ fp[k]
            x0 = x_prev[k] if x_prev is not None else guess
            x[k], viol[k], ok = solve_frame(A, b, lower, upper, settings.activation_exponent, x0)
            failed += not ok
            guess = x[k]
        return x, viol, failed

    x, viol, failed = solve_all(f_act, f_pas, None)
    iterations = 0
    change = math.nan
    if settings.tendon == "equilibrium" and nm:
        eq_model, eq_state = _load_model(osim, settings, rigid=False)
        eq_coords, _ = _coordinates(eq_model, eq_state)
        eq_muscles, _ = _actuators(osim, eq_model, settings)
        for iterations in range(1, settings.max_equilibrium_iterations + 1):
            fa, fp = np.zeros_like(f_act), np.zeros_like(f_pas)
            for k in range(n):
                _set_kinematics(eq_model, eq_state, eq_coords, free_idx, kin, k)
                fa[k], fp[k] = _muscle_terms(eq_model, eq_state, eq_muscles, x[k, :nm],
                                             settings.use_muscle_physiology, settings.include_passive)
            x_new, viol, failed = solve_all(fa, fp, x)
            change = float(np.max(np.abs(x_new[:, :nm] - x[:, :nm])))
            x, f_act, f_pas = x_new, fa, fp
            print(f"[pimsk] equilibrium iteration {iterations}: max activation change {change:.2e}", flush=True)
            if change < 1e-4:
                break
    force = np.hstack([x[:, :nm] * f_act + f_pas, x[:, nm:] * f_opt_act[None, :]])
    labels = [a.getName() for a in [*muscles, *coord_acts]]
    names = settings.output_names()
    out = settings.out_dir
    write_storage(out / names["activation"], Table(kin.time_s, x, labels, name="Static Optimization"))
    write_storage(out / names["force"], Table(kin.time_s, force, labels, name="Static Optimization forces"))
    write_storage(out / names["passive_force"], Table(kin.time_s, f_pas, [m.getName() for m in muscles],
                                                      name="Static Optimization passive fiber forces"))
    scale = np.maximum(np.abs(tau).max(axis=0), 1e-9)
    summary = {
        "method": "passive", "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()
                                          if k not in ("force_set_files",)},
        "force_set_files": [str(p) for p in settings.force_set_files],
        "n_frames": int(n), "free_coordinates": [coords[j].getName() for j in free_idx],
        "muscles": [m.getName() for m in muscles], "coordinate_actuators": [a.getName() for a in coord_acts],
        "frames_not_converged": int(failed),
        "max_constraint_violation": float(viol.max()) if n else 0.0,
        "max_constraint_violation_pct_of_peak_moment": float(100.0 * (viol[:, None] / scale).max()) if n else 0.0,
        "equilibrium_iterations": iterations, "last_activation_change": change,
        "peak_passive_force_n": {m.getName(): float(f_pas[:, i].max()) for i, m in enumerate(muscles)},
        "wall_s": time.perf_counter() - t_start,
    }
    (out / names["summary"]).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"[pimsk] done in {summary['wall_s']:.2f} s: {failed} frames not converged, max constraint violation "
          f"{summary['max_constraint_violation']:.3g} N m", flush=True)
    if failed:
        print(f"[pimsk] warning: {failed} of {n} frames could not meet the joint moments within the activation "
              "bounds (add reserve actuators with --actuators)", flush=True)
    return summary

