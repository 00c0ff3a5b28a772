"""Torch DeGrooteFregly2016 model against OpenSim 4.6's own DeGrooteFregly2016Muscle, float64.

Golden values come from OpenSim only. Models: gait2392 (Millard muscles, fiber damping 0.1, replaced by
OpenSim's replaceMuscles) with the 13 right knee muscles, and the wrist model (Schutte muscles, replaced from
their base properties) with ECRB, ECRL, ECU, FCR, FCU. A few properties are edited before initSystem so that
every parameter path is exercised (active_force_width_scale, fiber_damping, curve strains,
ignore_passive_fiber_force). What is checked where:

- ``test_curves``: every curve function OpenSim exposes, called directly (calcActiveForceLengthMultiplier[+
  Derivative], calcPassiveForceMultiplier[+Derivative], calcForceVelocityMultiplier, calcForceVelocityInverseCurve,
  calcTendonForceMultiplier[+Derivative], calcTendonForceLengthInverseCurve[+Derivative]) on 12,000 points per
  muscle over the curves' domain, and calcEquilibriumResidual (the full implicit-form model: lengths,
  pennation, velocities, all multipliers, damping, forces) on 12,000 random in-domain states per muscle.
- ``test_states``: the state-based path: coordinates + speeds (coupled coordinates set from their coupler
  functions), activation, normalised tendon force (and its derivative in implicit mode) set in a SimTK::State,
  realizeDynamics, and all 23 outputs of OPENSIM_GETTERS read per muscle (forces, multipliers, fiber length,
  pennation, velocities, tendon length, ...), for rigid tendon, compliant explicit and compliant implicit
  modes, >= 10,000 in-domain states per muscle and mode.
- ``test_equilibrium``: OpenSim's computeInitialFiberEquilibrium (bisection to 1e-10) against
  solve_norm_tendon_force on 1,000 states, and OpenSim's residual at the torch solution.
- ``test_activation_derivative``: OpenSim's activation state derivative (in a child process, because OpenSim
  4.6 caches the time constants in function statics for the whole process) on 2,000 states.

Relative error: |torch - opensim| <= 1e-9 |opensim| + floor, floor = 1e-13 x the field's largest magnitude
(only matters where a value crosses zero).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from pimsk.core import degroote as dg
from pimsk.core.activation import activation_derivative
from pimsk.core.muscle_state import compliant_tendon_state, rigid_tendon_state, solve_norm_tendon_force

pytestmark = [pytest.mark.opensim, pytest.mark.data]

RTOL = 1e-9
FLOOR = 1e-13
MIN_STATES = 10_000


@dataclass(frozen=True)
class Case:
    model: str
    muscles: tuple[str, ...]
    coordinates: tuple[str, ...]
    edits: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    speed_rad_s: float = 6.0


CASES = {
    "gait2392_knee": Case(
        "opensim-models/Models/Gait2392_Simbody/gait2392_millard2012muscle.osim",
        ("rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
         "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r"),
        ("hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r"),
        {"vas_int_r": {"active_force_width_scale": 1.5}, "bifemsh_r": {"active_force_width_scale": 1.25},
         "tfl_r": {"ignore_passive_fiber_force": True}},
    ),
    "wrist": Case(
        "opensim-models/Models/WristModel/wrist.osim",
        ("ECRB", "ECRL", "ECU_pre-surgery", "FCR", "FCU"),
        ("flexion", "deviation"),
        {"ECRL": {"active_force_width_scale": 1.3}, "FCR": {"fiber_damping": 0.05},
         "FCU": {"tendon_strain_at_one_norm_force": 0.04, "passive_fiber_strain_at_one_norm_force": 0.5}},
    ),
}
N_STATES = {"rigid": 11_000, "explicit": 12_000, "implicit": 11_000}


def build(osim, data_dir, case: Case, mode: str):
    """Trimmed DeGroote model in the given tendon mode, its initial state and the torch parameters."""
    from pimsk.osim.muscle_params import load_degroote_model, read_muscle_parameters

    model = load_degroote_model(data_dir / case.model, case.muscles)
    for name in case.muscles:
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(name))
        for prop, value in case.edits.get(name, {}).items():
            getattr(muscle, f"set_{prop}")(value)
        muscle.set_ignore_tendon_compliance(mode == "rigid")
        muscle.set_tendon_compliance_dynamics_mode("implicit" if mode == "implicit" else "explicit")
    state = model.initSystem()
    params = read_muscle_parameters(model, case.muscles)
    assert params.ignore_tendon_compliance.all() == (mode == "rigid")
    return model, state, params


def assert_close(name: str, got: np.ndarray, want: np.ndarray, mask: np.ndarray, rtol: float = RTOL) -> float:
    """Per-muscle check of ``got`` against ``want`` (n, n_muscles) where ``mask``; returns the max rel. error."""
    got, want = np.broadcast_arrays(got, want)
    assert np.isfinite(want[mask]).all(), f"{name}: OpenSim value not finite in domain"
    scale = np.max(np.where(mask, np.abs(want), 0.0), axis=0, keepdims=True)
    err = np.abs(got - want)
    bound = rtol * np.abs(want) + FLOOR * scale
    bad = mask & ~(err <= bound)
    if bad.any():
        k, j = np.argwhere(bad)[0]
        raise AssertionError(
            f"{name}: {bad.sum()} values differ, e.g. state {k} muscle {j}: torch {got[k, j]!r} vs OpenSim "
            f"{want[k, j]!r} (rel {err[k, j] / abs(want[k, j]):.2e})"
        )
    rel = np.where(mask & (np.abs(want) > 0), err / np.maximum(np.abs(want), 1e-300), 0.0)
    return float(rel.max())


def t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


@pytest.fixture(scope="module", params=sorted(CASES))
def case_name(request) -> str:
    return request.param


# ------------------------------------------------------------------------------------------ curves
def test_curves(opensim_module, data_dir, case_name):
    osim = opensim_module
    case = CASES[case_name]
    model, _, p = build(osim, data_dir, case, "explicit")
    n = 12_000
    rng = np.random.default_rng(1)
    lf = np.linspace(dg.DEGROOTE2016.min_norm_fiber_length, dg.DEGROOTE2016.max_norm_fiber_length, n)
    vf = np.linspace(-1.0, 1.0, n)
    fv = np.linspace(0.0, float(dg.force_velocity_multiplier(t(1.0))), n)
    ft = np.linspace(dg.DEGROOTE2016.min_norm_tendon_force, dg.DEGROOTE2016.max_norm_tendon_force, n)
    for j, name in enumerate(case.muscles):
        mu = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(name))
        q = p.select([name])
        e_t = float(q.tendon_strain_at_one_norm_force)
        lt = np.linspace(1.0, float(dg.tendon_force_length_inverse(t(5.0), e_t)), n)
        width = q.active_force_width_scale
        passive_strain = q.passive_fiber_strain_at_one_norm_force
        ignore_passive = bool(q.ignore_passive_fiber_force)
        checks = {
            "active_force_length": (lf, mu.calcActiveForceLengthMultiplier, dg.active_force_length_multiplier(t(lf), width)),
            "active_force_length_derivative": (
                lf, mu.calcActiveForceLengthMultiplierDerivative, dg.active_force_length_multiplier_derivative(t(lf), width)),
            "passive_force": (lf, mu.calcPassiveForceMultiplier,
                              0 * t(lf) if ignore_passive else dg.passive_force_multiplier(t(lf), passive_strain)),
            "passive_force_derivative": (lf, mu.calcPassiveForceMultiplierDerivative,
                                         0 * t(lf) if ignore_passive else dg.passive_force_multiplier_derivative(t(lf), passive_strain)),
            "force_velocity": (vf, mu.calcForceVelocityMultiplier, dg.force_velocity_multiplier(t(vf))),
            "force_velocity_inverse": (fv, mu.calcForceVelocityInverseCurve, dg.force_velocity_inverse(t(fv))),
            "tendon_force": (lt, mu.calcTendonForceMultiplier, dg.tendon_force_multiplier(t(lt), e_t)),
            "tendon_force_derivative": (lt, mu.calcTendonForceMultiplierDerivative, dg.tendon_force_multiplier_derivative(t(lt), e_t)),
            "tendon_force_inverse": (ft, mu.calcTendonForceLengthInverseCurve, dg.tendon_force_length_inverse(t(ft), e_t)),
        }
        for label, (x, fn, ours) in checks.items():
            want = np.array([fn(float(v)) for v in x])[:, None]
            assert_close(f"{name} {label}", ours.numpy()[:, None], want, np.ones_like(want, dtype=bool))

        # Full implicit-form model as a pure function: calcEquilibriumResidual(l_MT, v_MT, a, f~T, df~T/dt).
        l_opt, l_s = float(q.optimal_fiber_length_m), float(q.tendon_slack_length_m)
        w = float(q.fiber_width_m)
        f_t = rng.uniform(0.0, 2.0, n)
        df_t = rng.uniform(-3.0, 3.0, n)
        norm_fiber = rng.uniform(max(0.3, 1.05 * w / l_opt), 1.7, n)  # fiber longer than its height
        along = np.sqrt((norm_fiber * l_opt) ** 2 - w**2)
        l_mt = l_s * dg.tendon_force_length_inverse(t(f_t), e_t).numpy() + along
        v_mt = rng.uniform(-0.9, 0.9, n) * float(q.max_contraction_velocity_mps)
        act = rng.uniform(0.01, 1.0, n)
        want = np.array([mu.calcEquilibriumResidual(*map(float, args)) for args in zip(l_mt, v_mt, act, f_t, df_t)])
        state = compliant_tendon_state(
            t(l_mt)[:, None], t(v_mt)[:, None], t(act)[:, None], t(f_t)[:, None], q, t(df_t)[:, None]
        )
        ours = state.norm_tendon_force - state.fiber_force_along_tendon_n / q.max_isometric_force_n
        assert_close(f"{name} equilibrium residual", ours.numpy(), want[:, None], np.ones((n, 1), dtype=bool))
        # Normalised tendon velocity from the tendon-force derivative (implicit form): df~T/dt / f_T'(l~T).
        lt_perm = lt[rng.permutation(n)]
        want = np.array([mu.calcTendonForceLengthInverseCurveDerivative(float(d), float(x))
                         for d, x in zip(df_t, lt_perm)])
        ours = t(df_t) / dg.tendon_force_multiplier_derivative(t(lt_perm), e_t)
        assert_close(f"{name} tendon velocity", ours.numpy()[:, None], want[:, None], np.ones((n, 1), dtype=bool))


# ------------------------------------------------------------------------------------------ states
def _sample(case: Case, model, state, p, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from pimsk.osim.degroote_reference import sample_states

    s = sample_states(model, state, case.muscles, case.coordinates, p.tendon_slack_length_m.numpy(),
                      p.optimal_fiber_length_m.numpy(), n, rng, case.speed_rad_s)
    return s.q, s.u, s.activation, s.mtu_length_m


@pytest.mark.parametrize("mode", ["rigid", "explicit", "implicit"])
def test_states(opensim_module, data_dir, case_name, mode):
    from pimsk.osim.degroote_reference import OPENSIM_GETTERS, evaluate_states, explicit_tendon_forces

    osim = opensim_module
    case = CASES[case_name]
    model, state, p = build(osim, data_dir, case, mode)
    rng = np.random.default_rng({"rigid": 11, "explicit": 12, "implicit": 13}[mode])
    n = N_STATES[mode]
    q, u, act, l_mt = _sample(case, model, state, p, n, rng)
    f_t = df_t = None
    if mode != "rigid":
        f_t = explicit_tendon_forces(l_mt, act, p, rng) if mode == "explicit" else rng.uniform(0.0, 1.5, act.shape)
    if mode == "implicit":
        df_t = rng.uniform(-4.0, 4.0, act.shape)
    ref = evaluate_states(model, state, case.muscles, case.coordinates, q, u, act, f_t, df_t)

    l_mt, v_mt, a = t(ref["mtu_length_m"]), t(ref["mtu_velocity_mps"]), t(ref["activation"])
    if mode == "rigid":
        ours = rigid_tendon_state(l_mt, v_mt, a, p)
    elif mode == "explicit":
        ours = compliant_tendon_state(l_mt, v_mt, a, t(f_t), p)
    else:
        ours = compliant_tendon_state(l_mt, v_mt, a, t(f_t), p, t(df_t))

    lf, vf = ref["norm_fiber_length"], ref["norm_fiber_velocity"]
    # Domain: 0.2 <= l~f <= 1.8, |v~f| <= 1 and the MTU longer than the tendon (fiber along tendon > 0).
    in_domain = (lf >= 0.2) & (lf <= 1.8) & (np.abs(vf) <= 1.0) & (ref["fiber_length_along_tendon_m"] > 0)
    counts = in_domain.sum(axis=0)
    assert (counts >= MIN_STATES).all(), f"in-domain states per muscle {dict(zip(case.muscles, counts))}"
    worst = {}
    for name in OPENSIM_GETTERS:
        worst[name] = assert_close(f"{case_name}/{mode} {name}", getattr(ours, name).numpy(), ref[name], in_domain)
    print(f"{case_name}/{mode}: states per muscle {counts.min()}..{counts.max()}, worst rel. error "
          f"{max(worst.values()):.1e} ({max(worst, key=worst.get)})")


# ------------------------------------------------------------------------------------------ equilibrium
def test_equilibrium(opensim_module, data_dir, case_name):
    from pimsk.osim.degroote_reference import StateSetter

    osim = opensim_module
    case = CASES[case_name]
    model, state, p = build(osim, data_dir, case, "explicit")
    rng = np.random.default_rng(21)
    n = 1000
    q, u, act, _ = _sample(case, model, state, p, n, rng)
    setter = StateSetter(model, case.coordinates)
    muscles = [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(m)) for m in case.muscles]
    f_ref = np.full(act.shape, np.nan)
    inputs = np.empty((n, len(muscles), 3))
    for k in range(n):
        setter.set(state, q[k], u[k])
        for j, mu in enumerate(muscles):
            mu.setActivation(state, float(act[k, j]))
            model.realizeVelocity(state)
            inputs[k, j] = (mu.getLength(state), mu.getLengtheningSpeed(state), act[k, j])
            try:
                mu.computeInitialFiberEquilibrium(state)
            except RuntimeError:  # no sign change of the residual on [0, 5]
                continue
            f_ref[k, j] = mu.getNormalizedTendonForce(state)
    ok = np.isfinite(f_ref)
    assert ok.mean() > 0.9, f"OpenSim found an equilibrium in only {ok.mean():.0%} of states"
    sol = solve_norm_tendon_force(t(inputs[..., 0]), t(inputs[..., 1]), t(inputs[..., 2]), p)
    f_torch = sol.norm_tendon_force.detach().numpy()
    assert sol.converged[torch.as_tensor(ok)].all()
    # OpenSim bisects [0, 5] down to an interval of 1e-10: agreement to that interval.
    diff = np.abs(f_torch - f_ref)[ok]
    assert diff.max() <= 1.1e-10, f"max |f_T torch - f_T OpenSim| = {diff.max():.2e}"
    # OpenSim's own residual at the torch solution: equilibrium to round-off.
    residual = np.array([
        [muscles[j].calcEquilibriumResidual(*inputs[k, j], f_torch[k, j], 0.0) for j in range(len(muscles))]
        for k in range(n)
    ])
    assert np.abs(residual[ok]).max() <= 1e-12, f"OpenSim residual at torch solution {np.abs(residual[ok]).max():.1e}"


# ------------------------------------------------------------------------------------------ activation
_ACTIVATION_CHILD = r"""
import json, sys
import numpy as np
import opensim as osim
from pimsk.osim.logging import quiet_opensim
from pimsk.osim.muscle_params import load_degroote_model
quiet_opensim()
path, muscles, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
model = load_degroote_model(path, muscles)
state = model.initSystem()
objs = [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(m)) for m in muscles]
rng = np.random.default_rng(5)
e = rng.uniform(0.0, 1.0, (n, len(objs)))
a = rng.uniform(0.01, 1.0, (n, len(objs)))
out = np.empty_like(e)
for k in range(n):
    controls = model.updControls(state)
    for j, mu in enumerate(objs):
        mu.setControls(osim.Vector(1, float(e[k, j])), controls)
    model.setControls(state, controls)
    for j, mu in enumerate(objs):
        mu.setActivation(state, float(a[k, j]))
    model.computeStateVariableDerivatives(state)
    for j, mu in enumerate(objs):
        assert abs(mu.getExcitation(state) - e[k, j]) < 1e-15
        out[k, j] = mu.getStateVariableDerivativeValue(state, "activation")
print(json.dumps({"e": e.tolist(), "a": a.tolist(), "dadt": out.tolist()}))
"""


def test_activation_derivative(opensim_module, data_dir, case_name):
    from pimsk.osim.muscle_params import read_muscle_parameters

    case = CASES[case_name]
    path = data_dir / case.model
    p = read_muscle_parameters(path, case.muscles)
    # OpenSim 4.6 keeps the first muscle's constants in function statics: valid only if all muscles agree.
    for f in ("activation_time_constant_s", "deactivation_time_constant_s", "activation_dynamics_smoothing"):
        assert torch.unique(getattr(p, f)).numel() == 1, f
    run = subprocess.run(
        [sys.executable, "-c", _ACTIVATION_CHILD, str(path), ",".join(case.muscles), "2000"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    ref = json.loads(run.stdout.strip().splitlines()[-1])
    ours = activation_derivative(t(ref["e"]), t(ref["a"]), p.activation_time_constant_s,
                                 p.deactivation_time_constant_s, p.activation_dynamics_smoothing)
    want = np.array(ref["dadt"])
    assert_close(f"{case_name} activation derivative", ours.numpy(), want, np.ones_like(want, dtype=bool))
