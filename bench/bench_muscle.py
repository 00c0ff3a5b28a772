"""States per second: batched torch DeGrooteFregly2016 model (CPU) vs OpenSim's per-state API loop.

Same states and muscles on both sides (gait2392 right knee muscles; wrist muscles), in three modes:

- rigid:       OpenSim with ignore_tendon_compliance: set pose + speeds + activation, realizeDynamics,
               read every muscle's tendon and fiber force  |  torch ``rigid_tendon_state``.
- explicit:    compliant tendon, normalised tendon force given (OpenSim's state variable): set it too,
               realizeDynamics, read tendon + fiber force  |  torch ``compliant_tendon_state``.
- equilibrium: compliant tendon solved for muscle-tendon equilibrium: OpenSim computeInitialFiberEquilibrium
               per muscle (bisection), then read tendon and fiber force  |  torch ``equilibrium_state`` (Newton).

The torch model takes MTU length and velocity (read from OpenSim on the same states) as inputs; the OpenSim
loop also computes the muscle paths from the pose, so its pose-only cost (set pose, realizeVelocity, read
length and lengthening speed) is reported separately. A state is one time sample of all muscles of the set.
The torch outputs are checked against OpenSim's on the same states (max relative error printed).

Run: ``python bench/bench_muscle.py [--states 2000] [--copies 100] [--threads 1]``; writes
results/benchmarks/bench_muscle.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pimsk.core.muscle_state import compliant_tendon_state, equilibrium_state, rigid_tendon_state
from pimsk.paths import data_root, results_root

SETS = {
    "gait2392_knee": (
        "opensim-models/Models/Gait2392_Simbody/gait2392_millard2012muscle.osim",
        ["rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
         "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r"],
        ["hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r"],
    ),
    "wrist": (
        "opensim-models/Models/WristModel/wrist.osim",
        ["ECRB", "ECRL", "ECU_pre-surgery", "FCR", "FCU"],
        ["flexion", "deviation"],
    ),
}


def build(path: Path, muscles: list[str], mode: str):
    import opensim as osim

    from pimsk.osim.muscle_params import load_degroote_model, read_muscle_parameters

    model = load_degroote_model(path, muscles)
    for name in muscles:
        mu = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(name))
        mu.set_ignore_tendon_compliance(mode == "rigid")
        # Equilibrium: implicit form with d f~T/dt = 0 (what computeInitialFiberEquilibrium solves), so the
        # fiber velocity is v_MT cos(alpha) on both sides.
        mu.set_tendon_compliance_dynamics_mode("implicit" if mode == "equilibrium" else "explicit")
    state = model.initSystem()
    return model, state, read_muscle_parameters(model, muscles)


def opensim_loop(model, state, muscles, coordinates, states, mode: str, f_t=None) -> tuple[float, np.ndarray, np.ndarray]:
    """Seconds per state of the OpenSim loop, (tendon, fiber) forces (2, n, m), (l_MT, v_MT) inputs (n, m, 2)."""
    import opensim as osim

    from pimsk.osim.degroote_reference import StateSetter

    setter = StateSetter(model, coordinates)
    objs = [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(n)) for n in muscles]
    n, m = states.activation.shape
    force = np.empty((2, n, m))
    kin = np.empty((n, m, 2))
    start = time.perf_counter()
    for k in range(n):
        setter.set(state, states.q[k], states.u[k])
        for j, mu in enumerate(objs):
            mu.setActivation(state, float(states.activation[k, j]))
            if mode == "explicit":
                mu.setNormalizedTendonForce(state, float(f_t[k, j]))
        failed = []
        if mode == "equilibrium":
            for j, mu in enumerate(objs):
                try:
                    mu.computeInitialFiberEquilibrium(state)
                except RuntimeError:  # no sign change of the residual on [0, 5]: no equilibrium
                    failed.append(j)
        model.realizeDynamics(state)
        force[0, k] = [mu.getTendonForce(state) for mu in objs]
        force[1, k] = [mu.getFiberForce(state) for mu in objs]
        force[:, k, failed] = np.nan
    elapsed = time.perf_counter() - start
    for k in range(n):  # inputs for torch, outside the timed loop
        setter.set(state, states.q[k], states.u[k])
        model.realizeVelocity(state)
        kin[k] = [(mu.getLength(state), mu.getLengtheningSpeed(state)) for mu in objs]
    return elapsed / n, force, kin


def pose_only_loop(model, state, muscles, coordinates, states) -> float:
    """Seconds per state to set the pose and read MTU length and lengthening speed (path geometry only)."""
    import opensim as osim

    from pimsk.osim.degroote_reference import StateSetter

    setter = StateSetter(model, coordinates)
    objs = [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(n)) for n in muscles]
    start = time.perf_counter()
    for k in range(len(states.q)):
        setter.set(state, states.q[k], states.u[k])
        model.realizeVelocity(state)
        _ = [(mu.getLength(state), mu.getLengtheningSpeed(state)) for mu in objs]
    return (time.perf_counter() - start) / len(states.q)


def torch_rate(fn, args: list[torch.Tensor], n_states: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` states per second of ``fn(*args)`` (no autograd)."""
    best = float("inf")
    with torch.no_grad():
        fn(*args)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            best = min(best, time.perf_counter() - start)
    return n_states / best


def norm_error(a: np.ndarray, b: np.ndarray, f_max_n: np.ndarray) -> float:
    """Max |a - b| / F_max where OpenSim found a value (normalised force error)."""
    ok = np.isfinite(b)
    return float(np.max((np.abs(a - b) / f_max_n)[ok]))


def torch_function(mode: str, p, compiled: bool):
    """The torch model for ``mode``: (l_MT, v_MT, a[, f~T]) -> (tendon force, fiber force) in N, (2, n, m).

    Both forces are returned (as OpenSim's loop reads both) so that a compiler cannot drop the fiber model
    (in the explicit mode the tendon force alone is just F_max f~T)."""
    if mode == "rigid":
        def fn(l, v, a):
            s = rigid_tendon_state(l, v, a, p)
            return torch.stack([s.tendon_force_n, s.fiber_force_n])
    elif mode == "explicit":
        def fn(l, v, a, f):
            s = compliant_tendon_state(l, v, a, f, p)
            return torch.stack([s.tendon_force_n, s.fiber_force_n])
    else:
        def fn(l, v, a):
            s = equilibrium_state(l, v, a, p, compile=compiled)
            return torch.stack([s.tendon_force_n, s.fiber_force_n])
        return fn  # the solver compiles its own pieces (its loop has a data-dependent exit)
    return torch.compile(fn) if compiled else fn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=2000, help="states in the OpenSim loop")
    parser.add_argument("--copies", type=int, default=100, help="torch batch = states x copies")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (OpenSim loop is 1 thread)")
    parser.add_argument("--out", type=Path, default=results_root() / "benchmarks" / "bench_muscle.json")
    args = parser.parse_args()

    from pimsk.osim.degroote_reference import explicit_tendon_forces, sample_states
    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    torch.set_num_threads(args.threads)
    rows = []
    for set_name, (rel_path, muscles, coordinates) in SETS.items():
        path = data_root() / rel_path
        for mode in ("rigid", "explicit", "equilibrium"):
            model, state, p = build(path, muscles, mode)
            rng = np.random.default_rng(0)
            states = sample_states(model, state, muscles, coordinates, p.tendon_slack_length_m.numpy(),
                                   p.optimal_fiber_length_m.numpy(), args.states, rng)
            f_t = (explicit_tendon_forces(states.mtu_length_m, states.activation, p, rng)
                   if mode == "explicit" else None)
            sec_per_state, force_osim, kin = opensim_loop(model, state, muscles, coordinates, states, mode, f_t)
            pose_sec = pose_only_loop(model, state, muscles, coordinates, states)
            row = {
                "set": set_name, "mode": mode, "muscles": len(muscles), "opensim_states": args.states,
                "opensim_states_per_s": 1.0 / sec_per_state, "opensim_pose_only_states_per_s": 1.0 / pose_sec,
            }
            f_max = p.max_isometric_force_n.numpy()
            for dtype in (torch.float64, torch.float32):
                q = p.to(dtype=dtype)
                base = [torch.as_tensor(x, dtype=dtype) for x in (kin[..., 0], kin[..., 1], states.activation)]
                if f_t is not None:
                    base.append(torch.as_tensor(f_t, dtype=dtype))
                big = [x.repeat(args.copies, 1) for x in base]
                tag = "f64" if dtype == torch.float64 else "f32"
                for compiled in (False, True):
                    fn = torch_function(mode, q, compiled)
                    start = time.perf_counter()
                    with torch.no_grad():
                        fn(*big)  # compiles on first call
                        force_torch = fn(*base).double().numpy()
                    key = f"{tag}_{'compiled' if compiled else 'eager'}"
                    if compiled:
                        row[f"compile_s_{tag}"] = time.perf_counter() - start
                    rate = torch_rate(fn, big, args.states * args.copies)
                    row[f"torch_{key}_states_per_s"] = rate
                    row[f"ratio_{key}"] = rate * sec_per_state
                    row[f"max_norm_force_error_{key}"] = norm_error(force_torch, force_osim, f_max)
            rows.append(row)
            print(f"done {set_name}/{mode}", flush=True)

    variants = ["f64_eager", "f64_compiled", "f32_eager", "f32_compiled"]
    header = f"{'set':14s} {'mode':11s} {'musc':>4s} {'OpenSim st/s':>12s} {'pose-only':>9s} " + " ".join(
        f"{v + ' st/s':>18s} {'ratio':>6s} {'err':>7s}" for v in variants
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = " ".join(
            f"{r[f'torch_{v}_states_per_s']:18.0f} {r[f'ratio_{v}']:5.0f}x {r[f'max_norm_force_error_{v}']:7.0e}"
            for v in variants
        )
        print(f"{r['set']:14s} {r['mode']:11s} {r['muscles']:4d} {r['opensim_states_per_s']:12.0f} "
              f"{r['opensim_pose_only_states_per_s']:9.0f} {cells}")
    print("ratio = torch states/s over OpenSim per-state loop states/s (same states, same muscles, same run); "
          "err = max |F torch - F OpenSim| / F_max over tendon and fiber force")
    meta = {
        "torch": torch.__version__, "threads": args.threads, "torch_batch_states": args.states * args.copies,
        "machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
        "note": "state = one time sample of all muscles of the set; torch inputs are MTU length/velocity and "
                "activation (path geometry not included on the torch side; OpenSim pose-only rate given); "
                "compiled = torch.compile (inductor, fused C++ kernels); ratios from one run",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
