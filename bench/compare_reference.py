"""Our OpenSim steps (OpenSim 4.6) against the published ``OutputReference`` files (older OpenSim).

Prints per-column max/RMS differences for every step of the three published pipelines and writes
them as JSON. These are reported, not asserted: OutputReference was made with OpenSim 2.x-3.x and
older inputs, so differences are expected (see the notes printed with each pipeline).

    python bench/compare_reference.py                 # short CMC windows (~2 min on 2 cores)
    python bench/compare_reference.py --full          # published CMC windows (~5 min more)
    python bench/compare_reference.py --repeat        # also: two identical OpenSim runs, max |diff|

Writes results/benchmarks/compare_reference.json (``--json`` to change).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from pimsk.osim import published
from pimsk.osim.cmc import run_cmc
from pimsk.osim.compare import compare_tables, format_diffs, worst
from pimsk.osim.id import run_id
from pimsk.osim.ik import run_ik
from pimsk.osim.ik_tasks import read_ik_tasks
from pimsk.osim.rra import run_rra
from pimsk.osim.scale import read_manual_scales, read_measurements, run_scale
from pimsk.osim.so import run_so
from pimsk.paths import data_root, results_root

RESULTS: dict = {}


def record(pipeline: str, step: str, ref: Path, ours: Path, unit: str, columns=None) -> None:
    diffs = compare_tables(ref, ours, columns=columns)
    w = worst(diffs)
    print(format_diffs(diffs, f"\n[{pipeline} / {step}] {ours.name} vs OutputReference {ref.name}", unit))
    print(f"  worst: {w.label} max|d| = {w.max_abs:.4g} {unit}, rms {w.rms:.4g}")
    RESULTS.setdefault(pipeline, {})[step] = {
        "ref": str(ref), "ours": str(ours), "unit": unit,
        "worst": w.as_dict(), "columns": [d.as_dict() for d in diffs]}


def scales(path: Path) -> dict[str, list[float]]:
    return {(s.findtext("segment") or "").strip(): [float(v) for v in s.findtext("scales").split()]
            for s in ET.parse(path).getroot().iter("Scale")}


def marker_locations(model: Path) -> dict[str, np.ndarray]:
    text = model.read_text()
    return {m.group(1): np.array([float(v) for v in m.group(2).split()])
            for m in re.finditer(r'<Marker name="([^"]+)">.*?<location>([^<]+)</location>', text, re.S)}


def gait10dof(root: Path, work: Path, full: bool) -> None:
    ref = root / "opensim-models/Pipelines/Gait10dof18musc/OutputReference"
    inp = published.stage("gait10dof18musc", root, work / "g10_inputs")
    out = work / "g10"
    model = inp / "subject01.osim"
    grf = inp / "ExperimentalData/subject01_walk_grf.xml"
    ik = run_ik(model=model, trc=inp / "ExperimentalData/subject01_walk.trc", out_dir=out / "ik",
                tasks=read_ik_tasks(inp / "IK/walk_Setup_IK.xml"), time_range=(0, 2.5))
    record("gait10dof18musc", "ik", ref / "IK/subject01_walk_IK.mot", ik.outputs[0], "deg (m for tx/ty)")
    idr = run_id(model=model, coordinates=ik.outputs[0], out_dir=out / "id", external_loads=grf, time_range=(0, 2.5))
    record("gait10dof18musc", "id", ref / "ID/Results/subject01_walk_ID.sto", idr.outputs[0], "N·m")
    rra = run_rra(model=model, desired_kinematics=ik.outputs[0], out_dir=out / "rra", time_range=(0, 2.5),
                  tasks_file=inp / "gait10dof_Kinematics_Tracking_Tasks.xml",
                  actuators_files=[inp / "gait10dof_Reserve_Actuators.xml"], external_loads=grf, lowpass_hz=6.0,
                  output_precision=10)
    record("gait10dof18musc", "rra_q", ref / "RRA/Results/subject_adjusted_Kinematics_q.sto", rra.extra["kinematics_q"],
           "deg")
    record("gait10dof18musc", "rra_forces", ref / "RRA/Results/subject_adjusted_Actuation_force.sto",
           rra.extra["forces"], "N / N·m")
    t1 = 1.9 if full else 0.9
    cmc = run_cmc(model=model, desired_kinematics=ref / "RRA/Results/subject_adjusted_Kinematics_q.sto",
                  out_dir=out / "cmc", time_range=(0.6, t1), tasks_file=inp / "gait10dof_Kinematics_Tracking_Tasks.xml",
                  actuators_files=[inp / "gait10dof_Reserve_Actuators.xml"], external_loads=grf,
                  cmc_time_window_s=0.005, derivative_step=1e-5, convergence_tolerance=1e-5)
    record("gait10dof18musc", f"cmc_forces_0.6-{t1}", ref / "CMC/ResultsCMC/walk_subject_Actuation_force.sto",
           cmc.extra["forces"], "N")
    record("gait10dof18musc", f"cmc_q_0.6-{t1}", ref / "CMC/ResultsCMC/walk_subject_Kinematics_q.sto",
           cmc.extra["kinematics_q"], "deg")
    print("\nnotes (gait10dof18musc): OutputReference was made with OpenSim 3.x (setups Version 30000). IK and ID"
          " take the same inputs; CMC runs on the published RRA kinematics, so its force differences come from"
          " the optimiser and muscle model updates (Millard 2012 muscle defaults changed since), and CMC's"
          " muscle-force solution is not unique when reserves and redundant muscles share a joint.")


def gait2354(root: Path, work: Path, full: bool) -> None:
    ref = root / "opensim-models/Pipelines/Gait2354_Simbody/OutputReference"
    inp = published.stage("gait2354", root, work / "g2354_inputs")
    out = work / "g2354"
    setup = inp / "subject01_Setup_Scale.xml"
    grf = inp / "subject01_walk1_grf.xml"
    sc = run_scale(generic_model=inp / "gait2354_simbody.osim", static_trc=inp / "subject01_static.trc",
                   out_dir=out / "scale", mass_kg=72.6, height_m=1.8034, measurements=read_measurements(setup),
                   manual_scales=read_manual_scales(setup), tasks=read_ik_tasks(setup, "MarkerPlacer"),
                   time_range=(1, 2), placement_time_range=(1, 1.01), marker_set_file=inp / "gait2354_Scale_MarkerSet.xml",
                   subject="subject01")
    ours, old = scales(sc.scale_set), scales(ref / "subject01_scaleSet_applied.xml")
    sdiff = {b: float(np.max(np.abs(np.subtract(ours[b], old[b])))) for b in ours if b in old}
    print("\n[gait2354 / scale] scale factors vs OutputReference: max |diff| per body")
    for b, d in sdiff.items():
        print(f"  {b:<10} ours {ours[b][0]:.6f}  reference {old[b][0]:.6f}  |diff| {d:.2g}")
    print(sc.marker_table.read_text())
    mo, mr = marker_locations(sc.model), marker_locations(ref / "subject01_simbody.osim")
    moved = {k: float(np.linalg.norm(mo[k] - mr[k])) for k in mo if k in mr}
    top = sorted(moved.items(), key=lambda kv: -kv[1])[:8]
    print("[gait2354 / scale] placed marker locations vs OutputReference model (cm): "
          + ", ".join(f"{k} {v * 100:.2f}" for k, v in top))
    RESULTS.setdefault("gait2354", {})["scale"] = {
        "scale_factor_max_abs_diff": sdiff, "marker_rms_m": sc.marker_errors.total_rms_m,
        "marker_max_m": sc.marker_errors.total_max_m, "placed_marker_shift_m": moved}
    tasks = read_ik_tasks(inp / "subject01_Setup_IK.xml")
    ik_ref_model = run_ik(model=ref / "subject01_simbody.osim", trc=inp / "subject01_walk1.trc", out_dir=out / "ik_refmodel",
                          tasks=tasks, time_range=(0.4, 1.6), constraint_weight=20.0)
    record("gait2354", "ik_on_reference_model", ref / "subject01_walk1_ik.mot", ik_ref_model.outputs[0], "deg")
    ik = run_ik(model=sc.model, trc=inp / "subject01_walk1.trc", out_dir=out / "ik", tasks=tasks, time_range=(0.4, 1.6),
                constraint_weight=20.0)
    record("gait2354", "ik_on_our_model", ref / "subject01_walk1_ik.mot", ik.outputs[0], "deg")
    id_ref_inputs = run_id(model=ref / "subject01_simbody.osim", coordinates=ref / "subject01_walk1_ik.mot",
                           out_dir=out / "id_refinputs", external_loads=grf, time_range=(0.4, 1.6))
    record("gait2354", "id_on_reference_model_and_ik", ref / "ResultsInverseDynamics/inverse_dynamics.sto",
           id_ref_inputs.outputs[0], "N·m")
    idr = run_id(model=sc.model, coordinates=ik.outputs[0], out_dir=out / "id", external_loads=grf, time_range=(0.4, 1.6))
    record("gait2354", "id", ref / "ResultsInverseDynamics/inverse_dynamics.sto", idr.outputs[0], "N·m")
    rra = run_rra(model=sc.model, desired_kinematics=ik.outputs[0], out_dir=out / "rra", time_range=(0.75, 1.25),
                  tasks_file=inp / "gait2354_RRA_Tasks.xml", actuators_files=[inp / "gait2354_RRA_Actuators.xml"],
                  external_loads=grf, constraints_file=inp / "gait2354_RRA_ControlConstraints.xml", adjust_com_body="torso",
                  solve_for_equilibrium=True, integrator_tolerance=1e-3, min_integrator_step_s=1e-10)
    record("gait2354", "rra_q", ref / "ResultsRRA/subject01_walk1_RRA_Kinematics_q.sto", rra.extra["kinematics_q"], "deg")
    record("gait2354", "rra_forces", ref / "ResultsRRA/subject01_walk1_RRA_Actuation_force.sto", rra.extra["forces"],
           "N / N·m")
    t1 = 1.2 if full else 0.9
    cmc = run_cmc(model=rra.extra["adjusted_model"], desired_kinematics=rra.extra["kinematics_q"], out_dir=out / "cmc",
                  time_range=(0.8, t1), tasks_file=inp / "gait2354_CMC_Tasks.xml",
                  actuators_files=[inp / "gait2354_CMC_Actuators.xml"], external_loads=grf,
                  constraints_file=inp / "gait2354_CMC_ControlConstraints.xml", max_iterations=2000,
                  max_integrator_steps=30000, min_integrator_step_s=1e-10, analysis_step_interval=10)
    record("gait2354", f"cmc_forces_0.8-{t1}", ref / "ResultsCMC/subject01_walk1_Actuation_force.sto", cmc.extra["forces"],
           "N")
    record("gait2354", f"cmc_q_0.8-{t1}", ref / "ResultsCMC/subject01_walk1_Kinematics_q.sto", cmc.extra["kinematics_q"],
           "deg")
    print("\nnotes (gait2354): OutputReference is from OpenSim 2.x (setups Version 20302). Scale factors agree to"
          " the 6 printed digits. IK on the reference's own scaled model isolates the IK solver; IK on our scaled"
          " model adds the marker placement differences (OpenSim 4 places markers by IK with the 4.x solver)."
          " Downstream, ID/RRA/CMC inherit those kinematic differences.")


def arm26(root: Path, work: Path, full: bool) -> None:
    ref = root / "opensim-models/Tutorials/Computed_Muscle_Control/OutputReference"
    inp = published.stage("arm26", root, work / "arm_inputs")
    out = work / "arm"
    model = inp / "arm26.osim"
    ik = run_ik(model=model, trc=inp / "arm26_elbow_flex.trc", out_dir=out / "ik",
                tasks=read_ik_tasks(inp / "arm26_Setup_InverseKinematics.xml"), time_range=(0, 1))
    record("arm26", "ik", ref / "InverseKinematics/arm26_InverseKinematics.mot", ik.outputs[0], "deg")
    idr = run_id(model=model, coordinates=ik.outputs[0], out_dir=out / "id", time_range=(0, 1))
    record("arm26", "id", ref / "InverseDynamics/FilteredResults/arm26_InverseDynamics.sto", idr.outputs[0], "N·m")
    so = run_so(model=model, coordinates=ik.outputs[0], out_dir=out / "so", time_range=(0, 1))
    record("arm26", "so_forces", ref / "StaticOptimization/PhysiologicalResults/arm26_StaticOptimization_force.sto",
           so.outputs[1], "N")
    t1 = 1.0 if full else 0.3
    cmc = run_cmc(model=model, desired_kinematics=ik.outputs[0], out_dir=out / "cmc", time_range=(0, t1), lowpass_hz=6.0,
                  tasks_file=inp / "arm26_ComputedMuscleControl_Tasks.xml",
                  actuators_files=[inp / "arm26_Reserve_Actuators.xml"], max_iterations=100, min_integrator_step_s=1e-7,
                  analysis_step_interval=10)
    record("arm26", f"cmc_forces_0-{t1}", ref / "ComputedMuscleControl/Results/arm26_Actuation_force.sto",
           cmc.extra["forces"], "N")
    print("\nnotes (arm26): IK and ID agree exactly with OutputReference (made from the tutorial's InverseKinematics/"
          " model and markers; OutputReference's own copy of the .trc is 0.8 m off that model). SO and CMC muscle"
          " forces differ by ~10-25 N: Thelen2003 muscle and optimiser changes since OpenSim 2.x; the force"
          " sharing among the elbow muscles is not unique.")


def repeat(root: Path, work: Path, full: bool) -> None:
    """Run every published setup twice with plain OpenSim and report the largest difference."""
    print("\n=== two identical OpenSim runs (run-to-run tolerance) ===")
    windows = {("gait10dof18musc", "cmc"): {"final_time": "1.9" if full else "0.9"},
               ("gait2354", "cmc"): {"final_time": "1.2" if full else "0.9"},
               ("arm26", "cmc"): {"final_time": "1.0" if full else "0.3"}}
    for pipeline, steps in published.PIPELINES.items():
        dirs = [published.stage(pipeline, root, work / f"rep_{pipeline}_{k}") for k in (0, 1)]
        for step, st in steps.items():
            for d in dirs:
                published.run_published(d / st.setup, st.tool, overrides=windows.get((pipeline, step)))
        worst_all: dict[str, float] = {}
        for f in sorted(dirs[0].rglob("*.sto")) + sorted(dirs[0].rglob("*.mot")):
            twin = dirs[1] / f.relative_to(dirs[0])
            if not twin.exists() or f.name.endswith("_states.sto"):
                continue
            try:
                w = worst(compare_tables(f, twin))
            except Exception:  # inputs or files without common numeric columns
                continue
            worst_all[str(f.relative_to(dirs[0]))] = w.max_abs
        for k, v in worst_all.items():
            print(f"  {pipeline:<16} {k:<60} max|d| = {v:.3g}")
        RESULTS.setdefault("repeat", {})[pipeline] = worst_all


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="published CMC windows (slow)")
    p.add_argument("--repeat", action="store_true", help="also run every published setup twice and compare")
    p.add_argument("--only", choices=["gait10dof18musc", "gait2354", "arm26"], nargs="*", default=None)
    p.add_argument("--json", type=Path, default=results_root() / "benchmarks" / "compare_reference.json")
    p.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    args = p.parse_args(argv)
    root = data_root()
    if not root.is_dir():
        print(f"reference data not found at {root} (set PIMSK_DATA)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pimsk_cmpref_") as tmp:
        work = args.work or Path(tmp)
        todo = {"gait10dof18musc": gait10dof, "gait2354": gait2354, "arm26": arm26}
        for name, fn in todo.items():
            if args.only is None or name in args.only:
                fn(root, work, args.full)
        if args.repeat:
            repeat(root, work, args.full)
    RESULTS["meta"] = {"full": args.full, "wall_s": time.perf_counter() - t0}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(RESULTS, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else o))
    print(f"\nwrote {args.json} ({RESULTS['meta']['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
