"""Inverse kinematics: marker trajectories (.trc) -> joint coordinates (.mot, degrees) + marker errors.

Outputs in ``out_dir``: ``coordinates.mot``, ``<name>_ik_marker_errors.sto`` (OpenSim's per-frame total
squared error, RMS and max, m), and with ``marker_table`` the per-marker errors
``marker_errors.tsv`` (RMS/max per marker) and ``marker_errors.sto`` (per frame, m).
"""

from __future__ import annotations

import math
from pathlib import Path

from pimsk.osim import setup_xml as sx
from pimsk.osim.ik_tasks import IKTasks, ik_task_set_element
from pimsk.osim.marker_errors import MarkerErrors, compute_marker_errors
from pimsk.osim.model_info import read_model_info
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, run_setup

OUTPUT_MOTION = "coordinates.mot"


def build_ik_setup(
    *,
    model: str | Path,
    trc: str | Path,
    out_dir: str | Path,
    tasks: IKTasks,
    time_range: tuple[float, float] | None = None,
    accuracy: float = 1e-5,
    constraint_weight: float = math.inf,
    coordinate_file: str | Path | None = None,
    report_marker_locations: bool = False,
    name: str = "ik",
    step: str = "ik",
) -> Path:
    """Write ``out_dir/setup_<step>.xml`` for OpenSim's InverseKinematicsTool; return its path.

    ``time_range`` (s): None = the whole marker file.
    """
    out_dir = Path(out_dir).resolve()
    tree, tool = sx.document("InverseKinematicsTool", name)
    sx.sub(tool, "results_directory", out_dir)
    sx.sub(tool, "model_file", Path(model))
    sx.sub(tool, "constraint_weight", float(constraint_weight))
    sx.sub(tool, "accuracy", float(accuracy))
    tool.append(ik_task_set_element(tasks))
    sx.sub(tool, "marker_file", Path(trc))
    sx.sub(tool, "coordinate_file", Path(coordinate_file) if coordinate_file else "Unassigned")
    sx.sub(tool, "time_range", list(time_range) if time_range else [-math.inf, math.inf])
    sx.sub(tool, "report_errors", True)
    sx.sub(tool, "output_motion_file", OUTPUT_MOTION)
    sx.sub(tool, "report_marker_locations", bool(report_marker_locations))
    return sx.write(tree, out_dir / f"setup_{step}.xml")


def default_tasks(model: str | Path, log_file: str | Path | None = None) -> IKTasks:
    """Every marker of the model, weight 1 (no coordinate tasks)."""
    return IKTasks(markers={m: 1.0 for m in read_model_info(model, log_file=log_file).markers})


def run_ik(
    *,
    model: str | Path,
    trc: str | Path,
    out_dir: str | Path,
    tasks: IKTasks | None = None,
    time_range: tuple[float, float] | None = None,
    accuracy: float = 1e-5,
    constraint_weight: float = math.inf,
    coordinate_file: str | Path | None = None,
    marker_table: bool = True,
    max_marker_rms_m: float | None = None,
    max_marker_error_m: float | None = None,
    log_file: str | Path | None = None,
    name: str = "ik",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> ToolRun:
    """Run IK; return the ToolRun (``outputs[0]`` = coordinates.mot; ``extra``: error files).

    ``tasks`` None = every model marker with weight 1. With ``marker_table`` the per-marker error
    table is computed too and checked against the optional thresholds (m).
    """
    out_dir = Path(out_dir).resolve()
    log_file = Path(log_file).resolve() if log_file else out_dir / "ik.log"
    out_dir.mkdir(parents=True, exist_ok=True)
    if tasks is None:
        tasks = default_tasks(model, log_file)
    setup = build_ik_setup(model=model, trc=trc, out_dir=out_dir, tasks=tasks, time_range=time_range,
                           accuracy=accuracy, constraint_weight=constraint_weight,
                           coordinate_file=coordinate_file, name=name)
    run = run_setup(setup, step="ik", out_dir=out_dir, log_file=log_file,
                    expected=[OUTPUT_MOTION, f"{name}_ik_marker_errors.sto"],
                    subject=subject, trial=trial, timeout_s=timeout_s)
    run.extra["frame_errors"] = out_dir / f"{name}_ik_marker_errors.sto"
    if marker_table:
        from pimsk.osim.storage import time_range as sto_range

        t0, t1 = sto_range(run.outputs[0])
        errs: MarkerErrors = compute_marker_errors(
            model=model, trc=trc, time_range=(t0, t1), tasks=tasks, work_dir=out_dir, log_file=log_file,
            accuracy=accuracy, constraint_weight=constraint_weight, subject=subject, trial=trial)
        errs.write(out_dir / "marker_errors.tsv", out_dir / "marker_errors.sto")
        run.extra["marker_table"] = out_dir / "marker_errors.tsv"
        run.extra["marker_errors"] = out_dir / "marker_errors.sto"
        errs.check(max_marker_rms_m, max_marker_error_m, what="IK marker errors", subject=subject, trial=trial,
                   file=trc)
    return run
