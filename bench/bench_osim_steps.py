"""Wall time per OpenSim step for Gait10dof18musc: our functions vs OpenSim run from the published setup.

Both sides run the same OpenSim 4.6 tool in a child process; ours adds building/resolving the setup,
re-printing it with every setting and checking/repairing the outputs. ``frames`` are the trial's marker
frames (60 Hz) inside each step's time window; ``frames/s`` = frames / wall time.

    python bench/bench_osim_steps.py                     # IK, ID, RRA 0-2.5 s, CMC 0.6-1.9 s (published)
    python bench/bench_osim_steps.py --cmc-end 0.9       # a shorter CMC window
    python bench/bench_osim_steps.py --degroote          # also CMC with DeGrooteFregly2016 muscles

Prints a table and writes results/benchmarks/osim_steps.json (``--json`` to change).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pimsk.osim import published
from pimsk.osim.cmc import run_cmc
from pimsk.osim.compare import compare_tables
from pimsk.osim.degroote import replace_muscles_degroote
from pimsk.osim.id import run_id
from pimsk.osim.ik import run_ik
from pimsk.osim.ik_tasks import read_ik_tasks
from pimsk.osim.rra import run_rra
from pimsk.paths import data_root, results_root

RATE_HZ = 60.0


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cmc-end", type=float, default=1.9, help="CMC final time (s); published 1.9")
    p.add_argument("--repeat", type=int, default=3, help="runs of IK and ID (median reported)")
    p.add_argument("--degroote", action="store_true", help="also time CMC with DeGrooteFregly2016 muscles")
    p.add_argument("--json", type=Path, default=results_root() / "benchmarks" / "osim_steps.json")
    args = p.parse_args(argv)
    root = data_root()
    if not root.is_dir():
        print(f"reference data not found at {root} (set PIMSK_DATA)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="pimsk_bench_") as tmp:
        work = Path(tmp)
        ref = published.stage("gait10dof18musc", root, work / "ref")
        inp = published.stage("gait10dof18musc", root, work / "inp")
        steps = published.PIPELINES["gait10dof18musc"]
        model = inp / "subject01.osim"
        grf = inp / "ExperimentalData/subject01_walk_grf.xml"
        tasks = read_ik_tasks(inp / steps["ik"].setup)
        cmc_window = (0.6, args.cmc_end)
        state: dict = {}

        def ours_ik():
            state["ik"] = run_ik(model=model, trc=inp / "ExperimentalData/subject01_walk.trc", out_dir=work / "o/ik",
                                 tasks=tasks, time_range=(0, 2.5), marker_table=False)

        def ours_id():
            run_id(model=model, coordinates=state["ik"].outputs[0], out_dir=work / "o/id", external_loads=grf,
                   time_range=(0, 2.5))

        def ours_rra():
            run_rra(model=model, desired_kinematics=state["ik"].outputs[0], out_dir=work / "o/rra", time_range=(0, 2.5),
                    tasks_file=inp / "gait10dof_Kinematics_Tracking_Tasks.xml",
                    actuators_files=[inp / "gait10dof_Reserve_Actuators.xml"], external_loads=grf, output_precision=10)

        def ours_cmc(model_file=model, out="cmc"):
            state[out] = run_cmc(model=model_file,
                                 desired_kinematics=inp / "RRA/Results/subject_adjusted_Kinematics_q.sto",
                                 out_dir=work / "o" / out, time_range=cmc_window,
                                 tasks_file=inp / "gait10dof_Kinematics_Tracking_Tasks.xml",
                                 actuators_files=[inp / "gait10dof_Reserve_Actuators.xml"], external_loads=grf,
                                 cmc_time_window_s=0.005, derivative_step=1e-5, convergence_tolerance=1e-5)

        plan = [
            ("ik", (0.0, 2.5), args.repeat, lambda: published.run_published(ref / steps["ik"].setup, steps["ik"].tool),
             ours_ik),
            ("id", (0.0, 2.5), args.repeat, lambda: published.run_published(ref / steps["id"].setup, steps["id"].tool),
             ours_id),
            ("rra", (0.0, 2.5), 1, lambda: published.run_published(ref / steps["rra"].setup, steps["rra"].tool),
             ours_rra),
            ("cmc", cmc_window, 1, lambda: published.run_published(ref / steps["cmc"].setup, "CMCTool",
                                                                  overrides={"final_time": str(cmc_window[1])}),
             ours_cmc),
        ]
        for step, (t0, t1), n, run_ref, run_ours in plan:
            t_ref = statistics.median(timed(run_ref) for _ in range(n))
            t_ours = statistics.median(timed(run_ours) for _ in range(n))
            frames = int(round((t1 - t0) * RATE_HZ)) + 1
            rows.append({"trial": "gait10dof18musc/walk", "step": step, "window_s": [t0, t1], "frames": frames,
                         "opensim_s": t_ref, "ours_s": t_ours, "ratio": t_ours / t_ref,
                         "opensim_frames_per_s": frames / t_ref, "ours_frames_per_s": frames / t_ours, "runs": n})
        if args.degroote:
            dg = replace_muscles_degroote(model, work / "o/subject01_degroote.osim", log_file=work / "o/degroote.log")
            t_dg = timed(lambda: ours_cmc(dg, "cmc_degroote"))
            base = next(r for r in rows if r["step"] == "cmc")
            frames = base["frames"]
            diffs = compare_tables(state["cmc"].extra["forces"], state["cmc_degroote"].extra["forces"])
            muscles = {d.label: {"max_abs_n": d.max_abs, "rel_to_range": d.max_abs / d.ref_range if d.ref_range else None}
                       for d in diffs if not d.label.endswith(("reserve", "FX", "FY", "MZ"))}
            rows.append({"trial": "gait10dof18musc/walk", "step": "cmc_degroote", "window_s": list(cmc_window),
                         "frames": frames, "opensim_s": base["opensim_s"], "ours_s": t_dg,
                         "ratio": t_dg / base["opensim_s"], "opensim_frames_per_s": base["opensim_frames_per_s"],
                         "ours_frames_per_s": frames / t_dg, "runs": 1, "slowdown_vs_millard": t_dg / base["ours_s"],
                         "force_change_vs_millard": muscles})
    print(f"{'trial':<22} {'step':<13} {'window s':<11} {'frames':>6} {'OpenSim s':>10} {'ours s':>8} "
          f"{'ratio':>6} {'fps OpenSim':>11} {'fps ours':>9}")
    for r in rows:
        print(f"{r['trial']:<22} {r['step']:<13} {r['window_s'][0]:.1f}-{r['window_s'][1]:<7.2f} {r['frames']:>6} "
              f"{r['opensim_s']:>10.2f} {r['ours_s']:>8.2f} {r['ratio']:>6.2f} {r['opensim_frames_per_s']:>11.1f} "
              f"{r['ours_frames_per_s']:>9.1f}")
    for r in rows:
        if "force_change_vs_millard" in r:
            print(f"DeGroote CMC: {r['slowdown_vs_millard']:.2f}x the Millard CMC time; max force change per muscle "
                  "(N, fraction of the Millard range):")
            for m, d in r["force_change_vs_millard"].items():
                rel = f"{d['rel_to_range']:.2f}" if d["rel_to_range"] is not None else "-"
                print(f"  {m:<14} {d['max_abs_n']:8.1f} N  {rel}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "note": __doc__.splitlines()[0]}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
