"""States per second: batched torch DeGrooteFregly2016 model (CPU) vs OpenSim's per-state API loop.

Same states and muscles on both sides (gait2392 right knee muscles; wrist muscles), in these modes:

- rigid:       OpenSim with ignore_tendon_compliance: set pose + speeds + activation, realizeDynamics,
               read every muscle's tendon and fiber force  |  torch ``rigid_tendon_forces``.
- explicit:    compliant tendon, normalised tendon force given (OpenSim's state variable): set it too,
               realizeDynamics, read tendon + fiber force  |  torch ``compliant_tendon_forces``.
- equilibrium: compliant tendon solved for muscle-tendon equilibrium: OpenSim computeInitialFiberEquilibrium
               per muscle (bisection), then read tendon and fiber force  |  torch ``equilibrium_forces``
               (fixed Newton steps, float32 steps first in float64, one check, safeguarded fallback).
- walk:        equilibrium on a time series (gait2392 knee muscles only): the kinematics of the Rajagopal
               example3DWalking trial (coordinates.sto, resampled at 100 Hz; walker-knee flexion sign flipped
               to gait2392's) with activations from its processed EMG (electromyography.sto; each gait2392
               knee muscle takes its own or its synergist's channel, scaled to [0.02, 1]): states as training
               sees them (a batch of walks, (copies, time, muscle)) instead of random ones.

The torch model takes MTU length and velocity (read from OpenSim on the same states) as inputs; the OpenSim
loop also computes the muscle paths from the pose, so its pose-only cost (set pose, realizeVelocity, read
length and lengthening speed) is reported separately. A state is one time sample of all muscles of the set.
Timing: process CPU time (both sides single-threaded by default; on a shared machine CPU time is steadier
than wall time, which the JSON also records as ``ratio_wall_*``), best of ``--repeats`` passes on both
sides; the first torch call of each variant (compile for the compiled ones) is reported as ``first_call_s``
(seconds, or less where inductor's on-disk cache already holds the kernels). The torch outputs are checked
against OpenSim's on the same states (max |F torch - F OpenSim| / F_max over tendon and fiber force, where
OpenSim found a value).

Run: ``python bench/bench_muscle.py [--states 2000] [--copies 100] [--threads 1] [--repeats 3]
[--sets gait2392_knee wrist] [--modes rigid explicit equilibrium walk] [--variants f32_compiled ...]``
(defaults: everything); writes results/benchmarks/bench_muscle.json (``--out`` elsewhere for partial runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pimsk.core.muscle_state import compliant_tendon_forces, equilibrium_forces, rigid_tendon_forces
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
WALK_DIR = "opensim-core/OpenSim/Examples/Moco/example3DWalking"
# gait2392 knee muscle -> EMG channels of electromyography.sto (own muscle, else its synergist).
WALK_EMG = {
    "rect_fem_r": ["rectus_femoris"], "vas_med_r": ["vastus_medius"],
    "vas_int_r": ["vastus_medius", "vastus_lateralis"], "vas_lat_r": ["vastus_lateralis"],
    "bifemlh_r": ["biceps_femoris"], "bifemsh_r": ["biceps_femoris"],
    "semimem_r": ["medial_hamstrings"], "semiten_r": ["medial_hamstrings"], "med_gas_r": ["gastrocnemius"],
    "lat_gas_r": ["gastrocnemius"], "sar_r": ["rectus_femoris"], "grac_r": ["medial_hamstrings"],
    "tfl_r": ["gluteus_medius"],
}
MODES = ["rigid", "explicit", "equilibrium", "walk"]
VARIANTS = ["f64_eager", "f64_compiled", "f32_eager", "f32_compiled"]


def build(path: Path, muscles: list[str], mode: str):
    import opensim as osim

    from pimsk.osim.muscle_params import load_degroote_model, read_muscle_parameters

    model = load_degroote_model(path, muscles)
    for name in muscles:
        mu = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(name))
        mu.set_ignore_tendon_compliance(mode == "rigid")
        # Equilibrium: implicit form with d f~T/dt = 0 (what computeInitialFiberEquilibrium solves), so the
        # fiber velocity is v_MT cos(alpha) on both sides.
        mu.set_tendon_compliance_dynamics_mode("explicit" if mode == "explicit" else "implicit")
    state = model.initSystem()
    return model, state, read_muscle_parameters(model, muscles)


def walk_states(muscles: list[str], coordinates: list[str], rate_hz: float = 100.0):
    """(q, u, activation) of the example3DWalking trial at ``rate_hz`` for the gait2392 knee set."""
    from pimsk.io.storage import read_storage
    from pimsk.osim.degroote_reference import SampledStates

    kin = read_storage(data_root() / WALK_DIR / "coordinates.sto")
    emg = read_storage(data_root() / WALK_DIR / "electromyography.sto")
    t = np.arange(kin.time_s[0] + 0.01, kin.time_s[-1] - 0.01, 1.0 / rate_hz)
    columns = []
    for name in coordinates:
        col = next(i for i, label in enumerate(kin.labels) if label.endswith(f"/{name}/value"))
        columns.append(np.interp(t, kin.time_s, kin.data[:, col]))
    q = np.stack(columns, axis=1)
    q[:, coordinates.index("knee_angle_r")] *= -1.0  # walker knee: flexion positive; gait2392: negative
    u = np.gradient(q, t, axis=0)
    labels = list(emg.labels)
    act = np.stack([
        np.mean([np.interp(t, emg.time_s, emg.data[:, labels.index(c)]) for c in WALK_EMG[m]], axis=0) for m in muscles
    ], axis=1)
    act = np.clip(0.02 + 0.98 * act / act.max(axis=0), 0.02, 1.0)
    return SampledStates(q, u, act, np.full_like(act, np.nan))


def opensim_loop(model, state, muscles, coordinates, states, mode: str, f_t=None) -> tuple[float, float, np.ndarray]:
    """CPU and wall-clock seconds per state of the OpenSim loop and (tendon, fiber) forces (2, n, m)."""
    import opensim as osim

    from pimsk.osim.degroote_reference import StateSetter

    setter = StateSetter(model, coordinates)
    objs = [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(n)) for n in muscles]
    n, m = states.activation.shape
    force = np.empty((2, n, m))
    start, wall = time.process_time(), time.perf_counter()
    for k in range(n):
        setter.set(state, states.q[k], states.u[k])
        for j, mu in enumerate(objs):
            mu.setActivation(state, float(states.activation[k, j]))
            if mode == "explicit":
                mu.setNormalizedTendonForce(state, float(f_t[k, j]))
        failed = []
        if mode in ("equilibrium", "walk"):
            for j, mu in enumerate(objs):
                try:
                    mu.computeInitialFiberEquilibrium(state)
                except RuntimeError:  # no sign change of the residual on [0, 5]: no equilibrium
                    failed.append(j)
        model.realizeDynamics(state)
        force[0, k] = [mu.getTendonForce(state) for mu in objs]
        force[1, k] = [mu.getFiberForce(state) for mu in objs]
        force[:, k, failed] = np.nan
    return (time.process_time() - start) / n, (time.perf_counter() - wall) / n, force


def mtu_kinematics(model, state, muscles, coordinates, states) -> tuple[float, np.ndarray]:
    """CPU seconds per state to set the pose and read MTU length and lengthening speed (path geometry only),
    and those (l_MT, v_MT) inputs (n, m, 2)."""
    import opensim as osim

    from pimsk.osim.degroote_reference import StateSetter

    setter = StateSetter(model, coordinates)
    objs = [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(n)) for n in muscles]
    kin = np.empty((len(states.q), len(muscles), 2))
    start = time.process_time()
    for k in range(len(states.q)):
        setter.set(state, states.q[k], states.u[k])
        model.realizeVelocity(state)
        kin[k] = [(mu.getLength(state), mu.getLengtheningSpeed(state)) for mu in objs]
    return (time.process_time() - start) / len(states.q), kin


def best_of(fn, repeats: int) -> tuple[float, float]:
    """Smallest CPU time and smallest wall-clock time of ``repeats`` calls of ``fn()``."""
    best, best_wall = float("inf"), float("inf")
    for _ in range(repeats):
        start, wall = time.process_time(), time.perf_counter()
        fn()
        best, best_wall = min(best, time.process_time() - start), min(best_wall, time.perf_counter() - wall)
    return best, best_wall


def norm_error(a: np.ndarray, b: np.ndarray, f_max_n: np.ndarray) -> float:
    """Max |a - b| / F_max where OpenSim found a value (normalised force error)."""
    ok = np.isfinite(b)
    return float(np.max((np.abs(a - b) / f_max_n)[ok]))


def torch_function(mode: str, p, compiled: bool):
    """The torch model for ``mode``: (l_MT, v_MT, a[, f~T]) -> (tendon force, fiber force) in N.

    Both forces are returned (as OpenSim's loop reads both) so that nothing of the fiber model can be left
    out (in the explicit mode the tendon force alone is just F_max f~T). The forces-only functions are the
    library's fast paths (same curves as the full ``*_state`` functions, tested against them); with
    ``compiled`` they run torch.compile'd kernels (the equilibrium solver's fallback has a data-dependent
    size, so each function compiles its own kernels)."""
    if mode == "rigid":
        def fn(l, v, a):
            return rigid_tendon_forces(l, v, a, p, compile=compiled)
    elif mode == "explicit":
        def fn(l, v, a, f):
            return compliant_tendon_forces(l, v, a, f, p, compile=compiled)
    else:
        def fn(l, v, a):
            return equilibrium_forces(l, v, a, p, compile=compiled)
    return fn


def measure_torch(row: dict, mode: str, p, base: list[np.ndarray], big_shape, force_osim, args) -> None:
    """Fill ``row`` with states/s, ratio, error and first-call time of the four torch variants."""
    f_max = p.max_isometric_force_n.numpy()
    n_states = int(np.prod(big_shape[:-1]))
    for dtype in (torch.float64, torch.float32):
        q = p.to(dtype=dtype)
        big = [torch.as_tensor(x, dtype=dtype).repeat(*big_shape[:-2], 1, 1).reshape(big_shape) for x in base]
        tag = "f64" if dtype == torch.float64 else "f32"
        for compiled in (False, True):
            if compiled:
                torch._dynamo.reset()  # fresh compile for this shape and dtype (static shapes, compile time)
            key = f"{tag}_{'compiled' if compiled else 'eager'}"
            if key not in args.variants:
                continue
            fn = torch_function(mode, q, compiled)
            with torch.no_grad():
                start = time.process_time()
                out = fn(*big)  # compiles on first call
                row[f"first_call_s_{key}"] = time.process_time() - start
                sec, wall = best_of(lambda: fn(*big), args.repeats)
            n_base = base[0].shape[0]
            force_torch = torch.stack([o.reshape(-1, o.shape[-1])[:n_base] for o in out]).double().numpy()
            row[f"torch_{key}_states_per_s"] = n_states / sec
            row[f"ratio_{key}"] = n_states / sec * row["opensim_sec_per_state"]
            row[f"ratio_wall_{key}"] = n_states / wall * row["opensim_wall_sec_per_state"]
            row[f"max_norm_force_error_{key}"] = norm_error(force_torch, force_osim, f_max)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=2000, help="states in the OpenSim loop")
    parser.add_argument("--copies", type=int, default=100, help="torch batch = states x copies")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (OpenSim loop is 1 thread)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per side (best taken)")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS), help="muscle sets (default all)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES,
                        help="modes (default all; walk runs for gait2392_knee only)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS,
                        help="torch variants (default all)")
    parser.add_argument("--out", type=Path, default=results_root() / "benchmarks" / "bench_muscle.json")
    args = parser.parse_args()

    from pimsk.osim.degroote_reference import explicit_tendon_forces, sample_states
    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    torch.set_num_threads(args.threads)
    rows = []
    for set_name in args.sets:
        rel_path, muscles, coordinates = SETS[set_name]
        path = data_root() / rel_path
        modes = [m for m in args.modes if m != "walk" or set_name == "gait2392_knee"]
        for mode in modes:
            model, state, p = build(path, muscles, mode)
            rng = np.random.default_rng(0)
            if mode == "walk":
                states = walk_states(muscles, coordinates)
            else:
                states = sample_states(model, state, muscles, coordinates, p.tendon_slack_length_m.numpy(),
                                       p.optimal_fiber_length_m.numpy(), args.states, rng)
            f_t = (explicit_tendon_forces(states.mtu_length_m, states.activation, p, rng)
                   if mode == "explicit" else None)
            sec_per_state = wall_per_state = float("inf")
            for _ in range(args.repeats):
                sec, wall, force_osim = opensim_loop(model, state, muscles, coordinates, states, mode, f_t)
                sec_per_state, wall_per_state = min(sec_per_state, sec), min(wall_per_state, wall)
            pose_sec, kin = mtu_kinematics(model, state, muscles, coordinates, states)
            n = len(states.q)
            row = {
                "set": set_name, "mode": mode, "muscles": len(muscles), "opensim_states": n,
                "opensim_sec_per_state": sec_per_state, "opensim_states_per_s": 1.0 / sec_per_state,
                "opensim_wall_sec_per_state": wall_per_state,
                "opensim_pose_only_states_per_s": 1.0 / pose_sec,
                "opensim_failed_fraction": float(np.mean(~np.isfinite(force_osim[0]))),
            }
            base = [kin[..., 0], kin[..., 1], states.activation] + ([f_t] if f_t is not None else [])
            if mode == "walk":  # (copies, time, muscle): a batch of walks
                copies = max(1, args.states * args.copies // n)
                shape = (copies, n, len(muscles))
                row["torch_batch"] = list(shape)
                measure_torch(row, "equilibrium", p, base, shape, force_osim, args)
            else:
                shape = (args.copies, n, len(muscles))
                row["torch_batch"] = [args.copies * n, len(muscles)]
                measure_torch(row, mode, p, base, shape, force_osim, args)
            rows.append(row)
            print(f"done {set_name}/{mode}", flush=True)

    header = f"{'set':14s} {'mode':11s} {'musc':>4s} {'OpenSim st/s':>12s} {'pose-only':>9s} " + " ".join(
        f"{v + ' st/s':>18s} {'ratio':>6s} {'err':>7s}" for v in args.variants
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = " ".join(
            f"{r[f'torch_{v}_states_per_s']:18.0f} {r[f'ratio_{v}']:5.0f}x {r[f'max_norm_force_error_{v}']:7.0e}"
            for v in args.variants
        )
        print(f"{r['set']:14s} {r['mode']:11s} {r['muscles']:4d} {r['opensim_states_per_s']:12.0f} "
              f"{r['opensim_pose_only_states_per_s']:9.0f} {cells}")
    print("first call (compile) s: " + "; ".join(
        f"{r['set']}/{r['mode']}: " + " ".join(f"{k[len('first_call_s_'):]}={v:.1f}" for k, v in r.items()
                                               if k.startswith("first_call_s_") and "compiled" in k)
        for r in rows))
    print("ratio = torch states/s over OpenSim per-state loop states/s (same states, same muscles, same run, CPU "
          "time, best of passes); err = max |F torch - F OpenSim| / F_max over tendon and fiber force")
    meta = {
        "torch": torch.__version__, "threads": args.threads, "repeats": args.repeats,
        "machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
        "clock": "ratio_*: time.process_time (CPU time of this process), best of repeats, both sides; "
                 "ratio_wall_*: the same with wall-clock time (time.perf_counter), shared machines inflate it",
        "note": "state = one time sample of all muscles of the set; torch inputs are MTU length/velocity and "
                "activation (path geometry not included on the torch side; OpenSim pose-only rate given); "
                "compiled = torch.compile (inductor, fused C++ kernels); equilibrium = equilibrium_forces; "
                "walk = example3DWalking kinematics + EMG at 100 Hz",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
