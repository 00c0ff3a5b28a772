"""Computed muscle control: desired kinematics (+ external loads) -> muscle excitations, activations, forces.

OpenSim's CMCTool (Thelen & Anderson 2006): a PD tracking law on the coordinates (tasks, kp, kv) gives
desired accelerations; a static optimisation over ``cmc_time_window`` finds actuator controls that
produce them; forward integration follows. Tasks and reserve/residual actuators are generated from the
model (:mod:`pimsk.osim.cmc_defaults`) when none are given.

Outputs in ``out_dir`` (name = ``name``): ``<name>_Actuation_force.sto`` (muscle forces N, reserves
N·m), ``<name>_controls.sto`` (excitations), ``<name>_states.sto`` (coordinates, speeds, activations,
fiber lengths; header repaired if OpenSim overwrote it at exit), ``<name>_Kinematics_q.sto`` (degrees),
``<name>_pErr.sto`` (tracking errors).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from pimsk.osim import setup_xml as sx
from pimsk.osim.cmc_defaults import write_actuators, write_cmc_tasks
from pimsk.osim.model_info import read_model_info
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, run_setup
from pimsk.osim.storage import time_range as sto_time_range

CMC_OUTPUTS = ("Actuation_force", "controls", "states", "Kinematics_q")


def _analyses(step_interval: int | None) -> list[ET.Element]:
    """Kinematics + Actuation analyses reporting every ``step_interval``-th step (None: the tool's own)."""
    if step_interval is None:
        return []
    out = []
    for kind in ("Kinematics", "Actuation"):
        a = ET.Element(kind, name=kind)
        sx.sub(a, "on", True)
        sx.sub(a, "start_time", -math.inf)
        sx.sub(a, "end_time", math.inf)
        sx.sub(a, "step_interval", int(step_interval))
        sx.sub(a, "in_degrees", True)
        if kind == "Kinematics":
            sx.sub(a, "coordinates", "all")
        out.append(a)
    return out


def build_tracking_setup(
    tool_tag: str,
    *,
    model: str | Path,
    desired_kinematics: str | Path,
    out_dir: str | Path,
    time_range: tuple[float, float],
    tasks_file: str | Path,
    force_set_files: Sequence[str | Path],
    replace_force_set: bool,
    external_loads: str | Path | None,
    constraints_file: str | Path | None,
    lowpass_hz: float | None,
    solve_for_equilibrium: bool,
    integrator_tolerance: float,
    max_integrator_steps: int,
    min_integrator_step_s: float,
    max_integrator_step_s: float,
    derivative_step: float,
    convergence_tolerance: float,
    output_precision: int,
    analysis_step_interval: int | None,
    name: str,
    step: str,
    cmc_only: dict[str, object] | None = None,
    rra_only: dict[str, object] | None = None,
) -> Path:
    """Write ``out_dir/setup_<step>.xml`` for a CMCTool or RRATool (shared property layout)."""
    out_dir = Path(out_dir).resolve()
    tree, tool = sx.document(tool_tag, name)
    sx.sub(tool, "model_file", Path(model))
    sx.sub(tool, "replace_force_set", bool(replace_force_set))
    sx.sub(tool, "force_set_files", sx.paths_text(force_set_files))
    sx.sub(tool, "results_directory", out_dir)
    sx.sub(tool, "output_precision", int(output_precision))
    sx.sub(tool, "initial_time", float(time_range[0]))
    sx.sub(tool, "final_time", float(time_range[1]))
    sx.sub(tool, "solve_for_equilibrium_for_auxiliary_states", bool(solve_for_equilibrium))
    sx.sub(tool, "maximum_number_of_integrator_steps", int(max_integrator_steps))
    sx.sub(tool, "maximum_integrator_step_size", float(max_integrator_step_s))
    sx.sub(tool, "minimum_integrator_step_size", float(min_integrator_step_s))
    sx.sub(tool, "integrator_error_tolerance", float(integrator_tolerance))
    sx.analysis_set(tool, _analyses(analysis_step_interval))
    sx.empty_controller_set(tool)
    sx.sub(tool, "external_loads_file", Path(external_loads) if external_loads else "")
    sx.sub(tool, "desired_points_file", "")
    sx.sub(tool, "desired_kinematics_file", Path(desired_kinematics))
    sx.sub(tool, "task_set_file", Path(tasks_file))
    sx.sub(tool, "constraints_file", Path(constraints_file) if constraints_file else "")
    sx.sub(tool, "lowpass_cutoff_frequency", float(lowpass_hz) if lowpass_hz else -1.0)
    for key, value in (cmc_only or {}).items():
        sx.sub(tool, key, value)
    sx.sub(tool, "optimizer_algorithm", "ipopt")
    sx.sub(tool, "numerical_derivative_step_size", float(derivative_step))
    sx.sub(tool, "optimization_convergence_tolerance", float(convergence_tolerance))
    for key, value in (rra_only or {}).items():
        sx.sub(tool, key, value)
    sx.sub(tool, "use_verbose_printing", False)
    return sx.write(tree, out_dir / f"setup_{step}.xml")


def generated_inputs(model: str | Path, out_dir: Path, *, purpose: str, need_tasks: bool, need_actuators: bool,
                     log_file: Path, task_weights: dict[str, float] | None = None) -> dict[str, Path]:
    """Write ``<purpose>_tasks.xml`` / ``<purpose>_actuators.xml`` generated from the model."""
    if not (need_tasks or need_actuators):
        return {}
    info = read_model_info(model, log_file=log_file)
    out = {}
    if need_tasks:
        out["tasks"] = write_cmc_tasks(info, out_dir / f"{purpose}_tasks.xml", weights=task_weights)
    if need_actuators:
        out["actuators"] = write_actuators(info, out_dir / f"{purpose}_actuators.xml", purpose=purpose)
    return out


def run_cmc(
    *,
    model: str | Path,
    desired_kinematics: str | Path,
    out_dir: str | Path,
    time_range: tuple[float, float] | None = None,
    tasks_file: str | Path | None = None,
    actuators_files: Sequence[str | Path] | None = None,
    replace_force_set: bool = False,
    external_loads: str | Path | None = None,
    constraints_file: str | Path | None = None,
    rra_controls_file: str | Path | None = None,
    lowpass_hz: float | None = None,
    cmc_time_window_s: float = 0.01,
    use_fast_target: bool = True,
    solve_for_equilibrium: bool = True,
    integrator_tolerance: float = 1e-5,
    max_integrator_steps: int = 20000,
    min_integrator_step_s: float = 1e-8,
    max_integrator_step_s: float = 1.0,
    derivative_step: float = 1e-4,
    convergence_tolerance: float = 1e-4,
    max_iterations: int = 1000,
    output_precision: int = 8,
    analysis_step_interval: int | None = None,
    task_weights: dict[str, float] | None = None,
    log_file: str | Path | None = None,
    name: str = "cmc",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> ToolRun:
    """Run CMC over ``time_range`` (s; None = the whole desired kinematics).

    ``tasks_file`` None: track every free coordinate (kp 100, kv 20, ``task_weights`` or 1).
    ``actuators_files`` None: generated reserves/residuals; ``()`` = none added.
    Settings default to OpenSim 4.6's own CMCTool defaults. ``outputs``: forces, controls, states, q.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file).resolve() if log_file else out_dir / "cmc.log"
    gen = generated_inputs(model, out_dir, purpose="cmc", need_tasks=tasks_file is None,
                           need_actuators=actuators_files is None, log_file=log_file, task_weights=task_weights)
    tasks = Path(tasks_file) if tasks_file is not None else gen["tasks"]
    acts = list(actuators_files) if actuators_files is not None else [gen["actuators"]]
    t = time_range if time_range else sto_time_range(desired_kinematics)
    setup = build_tracking_setup(
        "CMCTool", model=model, desired_kinematics=desired_kinematics, out_dir=out_dir, time_range=t,
        tasks_file=tasks, force_set_files=acts, replace_force_set=replace_force_set, external_loads=external_loads,
        constraints_file=constraints_file, lowpass_hz=lowpass_hz, solve_for_equilibrium=solve_for_equilibrium,
        integrator_tolerance=integrator_tolerance, max_integrator_steps=max_integrator_steps,
        min_integrator_step_s=min_integrator_step_s, max_integrator_step_s=max_integrator_step_s,
        derivative_step=derivative_step, convergence_tolerance=convergence_tolerance,
        output_precision=output_precision, analysis_step_interval=analysis_step_interval, name=name, step="cmc",
        cmc_only={"rra_controls_file": Path(rra_controls_file) if rra_controls_file else "",
                  "cmc_time_window": float(cmc_time_window_s), "use_fast_optimization_target": bool(use_fast_target),
                  "optimizer_max_iterations": int(max_iterations), "optimizer_print_level": 0})
    run = run_setup(setup, step="cmc", out_dir=out_dir, log_file=log_file,
                    expected=[f"{name}_{s}.sto" for s in CMC_OUTPUTS], subject=subject, trial=trial,
                    timeout_s=timeout_s)
    run.extra.update({"forces": out_dir / f"{name}_Actuation_force.sto", "controls": out_dir / f"{name}_controls.sto",
                      "states": out_dir / f"{name}_states.sto", "kinematics_q": out_dir / f"{name}_Kinematics_q.sto",
                      **{f"generated_{k}": v for k, v in gen.items()}})
    return run
