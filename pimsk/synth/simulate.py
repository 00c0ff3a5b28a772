"""Forward simulation of a trial model driven by known excitations (OpenSim Manager), sampled on a
uniform time grid; a static trial is the model held in a pose."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from pimsk.errors import OpenSimToolError
from pimsk.synth.excitation import ExcitationPattern

CONTROL_STEP_S = 1e-3  # excitations reach the controller as a piecewise-linear function on this grid


@dataclass
class SimResult:
    """Time-first arrays of one trial, SI units (rad, rad/s, N, m, N m).

    states: (n, n_states) every OpenSim state variable (``state_names``) - enough to replay the trial;
    q/u/udot: (n, n_coords); excitation/activation/tendon_force_n/fiber_length_m: (n, n_muscles);
    moment_arm_m: (n, n_free, n_muscles); muscle_moment_nm: (n, n_free) sum of moment arm x tendon force
    over muscles, for the unlocked coordinates ``free_coordinates``; markers_m: (n, n_markers, 3) in
    OpenSim ground.
    """

    time_s: np.ndarray
    state_names: list[str]
    states: np.ndarray
    coordinates: list[str]
    q: np.ndarray
    u: np.ndarray
    udot: np.ndarray
    muscles: list[str]
    excitation: np.ndarray
    activation: np.ndarray
    tendon_force_n: np.ndarray
    fiber_length_m: np.ndarray
    free_coordinates: list[str]
    moment_arm_m: np.ndarray
    muscle_moment_nm: np.ndarray
    marker_names: list[str]
    markers_m: np.ndarray
    wall_s: float
    integrator: dict[str, object] = field(default_factory=dict)


def _names(component_set) -> list[str]:
    return [component_set.get(i).getName() for i in range(component_set.getSize())]


def _add_controller(model, pattern: ExcitationPattern, duration_s: float) -> np.ndarray:
    """Attach a PrescribedController; return the (n_knots,) control grid it interpolates."""
    import opensim as osim

    grid = np.arange(0.0, duration_s + 2 * CONTROL_STEP_S, CONTROL_STEP_S)
    values = pattern.evaluate(grid)
    ctrl = osim.PrescribedController()
    ctrl.setName("synth_excitations")
    muscles = model.getMuscles()
    for j, name in enumerate(pattern.muscles):
        ctrl.addActuator(muscles.get(name))
        f = osim.PiecewiseLinearFunction()
        for t, e in zip(grid, values[:, j]):
            f.addPoint(float(t), float(e))
        ctrl.prescribeControlForActuator(name, f)
    model.addController(ctrl)
    return grid


def _record(model, s, muscles, coords, free, markers, row: dict[str, list]) -> None:
    """Append one sample; ``muscles`` empty for a static trial."""
    model.realizeAcceleration(s)
    row["states"].append(np.array(model.getStateVariableValues(s).to_numpy()))
    row["q"].append([c.getValue(s) for c in coords])
    row["u"].append([c.getSpeedValue(s) for c in coords])
    row["udot"].append([c.getAccelerationValue(s) for c in coords])
    row["e"].append([m.getExcitation(s) for m in muscles])
    row["a"].append([m.getActivation(s) for m in muscles])
    row["f"].append([m.getTendonForce(s) for m in muscles])
    row["lm"].append([m.getFiberLength(s) for m in muscles])
    r = np.array([[m.computeMomentArm(s, c) for m in muscles] for c in free]).reshape(len(free), len(muscles))
    row["r"].append(r)
    row["mk"].append([[mk.getLocationInGround(s)[k] for k in range(3)] for mk in markers])


def simulate(model, pattern: ExcitationPattern | None, duration_s: float, rate_hz: float,
             method: str = "RungeKuttaMerson", accuracy: float = 1e-5, label: str = "") -> SimResult:
    """Run ``model`` (not yet initialised) from its default pose with muscles in equilibrium.

    pattern None: a static trial (no integration; the pose is held; no muscle quantities).
    Samples at ``k / rate_hz`` for ``k = 0 .. round(duration_s * rate_hz)``. Raises OpenSimToolError
    naming ``label`` on failure.
    """
    import opensim as osim

    n = int(round(duration_s * rate_hz)) + 1
    times = np.arange(n) / rate_hz
    if pattern is not None:
        _add_controller(model, pattern, float(times[-1]))
    try:
        s = model.initSystem()
    except Exception as exc:  # noqa: BLE001 - OpenSim raises RuntimeError with its own text
        raise OpenSimToolError(f"model does not initialise: {exc}", trial=label) from None
    muscles = [model.getMuscles().get(i) for i in range(model.getMuscles().getSize())] if pattern else []
    coord_set = model.getCoordinateSet()
    coords = [coord_set.get(i) for i in range(coord_set.getSize())]
    free = [c for c in coords if not c.getDefaultLocked()]
    markers = [model.getMarkerSet().get(i) for i in range(model.getMarkerSet().getSize())]
    if pattern is not None:
        e0 = pattern.evaluate([0.0])[0]
        for m in muscles:
            m.setActivation(s, float(e0[pattern.muscles.index(m.getName())]))
    if muscles:
        model.equilibrateMuscles(s)

    rows: dict[str, list] = {k: [] for k in ("states", "q", "u", "udot", "e", "a", "f", "lm", "r", "mk")}
    t0 = time.perf_counter()
    integ: dict[str, object] = {}
    if pattern is None:
        for t in times:
            s.setTime(float(t))
            _record(model, s, muscles, coords, free, markers, rows)
    else:
        manager = osim.Manager(model)
        manager.setIntegratorMethod(getattr(osim.Manager, f"IntegratorMethod_{method}"))
        manager.setIntegratorAccuracy(accuracy)
        s.setTime(0.0)
        manager.initialize(s)
        _record(model, s, muscles, coords, free, markers, rows)
        for t in times[1:]:
            try:
                s = manager.integrate(float(t))
            except Exception as exc:  # noqa: BLE001
                raise OpenSimToolError(
                    f"forward simulation failed at t = {t:.3f} s: {exc}", trial=label,
                    hint="lower the excitation amplitudes or tighten synth.integrator.accuracy") from None
            _record(model, s, muscles, coords, free, markers, rows)
        integ = {"method": method, "accuracy": accuracy, "control_step_s": CONTROL_STEP_S}
    wall = time.perf_counter() - t0
    names = model.getStateVariableNames()
    mnames = [m.getName() for m in muscles]
    nm = len(mnames)
    f = np.asarray(rows["f"], dtype=float).reshape(n, nm)
    r = np.asarray(rows["r"], dtype=float).reshape(n, len(free), nm)
    return SimResult(
        time_s=times,
        state_names=[names.get(i) for i in range(names.getSize())],
        states=np.asarray(rows["states"], dtype=float),
        coordinates=[c.getName() for c in coords],
        q=np.asarray(rows["q"], dtype=float),
        u=np.asarray(rows["u"], dtype=float),
        udot=np.asarray(rows["udot"], dtype=float),
        muscles=mnames,
        excitation=np.asarray(rows["e"], dtype=float).reshape(n, nm),
        activation=np.asarray(rows["a"], dtype=float).reshape(n, nm),
        tendon_force_n=f,
        fiber_length_m=np.asarray(rows["lm"], dtype=float).reshape(n, nm),
        free_coordinates=[c.getName() for c in free],
        moment_arm_m=r,
        muscle_moment_nm=np.einsum("tcm,tm->tc", r, f),
        marker_names=[mk.getName() for mk in markers],
        markers_m=np.asarray(rows["mk"], dtype=float).reshape(n, len(markers), 3),
        wall_s=wall,
        integrator=integ,
    )
