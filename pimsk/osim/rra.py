"""Residual reduction: make IK kinematics dynamically consistent with the measured external loads.

OpenSim's RRATool (CMC with joint actuators in place of muscles): tracks the coordinates while
minimising residual forces on the root body; optionally moves the mass centre of ``adjusted_com_body``
to remove the average residual moments and writes the adjusted model. Its ``<name>_Kinematics_q.sto``
is the usual desired kinematics for CMC.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pimsk.osim.cmc import CMC_OUTPUTS, build_tracking_setup, generated_inputs
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, run_setup
from pimsk.osim.storage import time_range as sto_time_range

ADJUSTED_MODEL = "model_adjusted.osim"


def run_rra(
    *,
    model: str | Path,
    desired_kinematics: str | Path,
    out_dir: str | Path,
    time_range: tuple[float, float] | None = None,
    tasks_file: str | Path | None = None,
    actuators_files: Sequence[str | Path] | None = None,
    replace_force_set: bool = True,
    external_loads: str | Path | None = None,
    constraints_file: str | Path | None = None,
    lowpass_hz: float | None = 6.0,
    adjust_com_body: str | None = None,
    com_adjustment_time_range: tuple[float, float] | None = None,
    solve_for_equilibrium: bool = False,
    integrator_tolerance: float = 1e-5,
    max_integrator_steps: int = 20000,
    min_integrator_step_s: float = 1e-8,
    max_integrator_step_s: float = 1.0,
    derivative_step: float = 1e-4,
    convergence_tolerance: float = 1e-5,
    output_precision: int = 8,
    task_weights: dict[str, float] | None = None,
    log_file: str | Path | None = None,
    name: str = "rra",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> ToolRun:
    """Run RRA over ``time_range`` (s; None = the whole kinematics file).

    ``adjust_com_body`` (e.g. ``"torso"``): write ``model_adjusted.osim`` with that body's mass centre
    moved (``extra["adjusted_model"]``). Tasks/actuators are generated (purpose ``rra``) when not given.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file).resolve() if log_file else out_dir / "rra.log"
    gen = generated_inputs(model, out_dir, purpose="rra", need_tasks=tasks_file is None,
                           need_actuators=actuators_files is None, log_file=log_file, task_weights=task_weights)
    tasks = Path(tasks_file) if tasks_file is not None else gen["tasks"]
    acts = list(actuators_files) if actuators_files is not None else [gen["actuators"]]
    t = time_range if time_range else sto_time_range(desired_kinematics)
    com_t = com_adjustment_time_range or (-1.0, -1.0)
    setup = build_tracking_setup(
        "RRATool", model=model, desired_kinematics=desired_kinematics, out_dir=out_dir, time_range=t,
        tasks_file=tasks, force_set_files=acts, replace_force_set=replace_force_set, external_loads=external_loads,
        constraints_file=constraints_file, lowpass_hz=lowpass_hz, solve_for_equilibrium=solve_for_equilibrium,
        integrator_tolerance=integrator_tolerance, max_integrator_steps=max_integrator_steps,
        min_integrator_step_s=min_integrator_step_s, max_integrator_step_s=max_integrator_step_s,
        derivative_step=derivative_step, convergence_tolerance=convergence_tolerance,
        output_precision=output_precision, analysis_step_interval=None, name=name, step="rra",
        rra_only={"adjust_com_to_reduce_residuals": adjust_com_body is not None,
                  "initial_time_for_com_adjustment": float(com_t[0]), "final_time_for_com_adjustment": float(com_t[1]),
                  "adjusted_com_body": adjust_com_body or "", "output_model_file": ADJUSTED_MODEL})
    expected = [f"{name}_{s}.sto" for s in CMC_OUTPUTS] + ([ADJUSTED_MODEL] if adjust_com_body else [])
    run = run_setup(setup, step="rra", out_dir=out_dir, log_file=log_file, expected=expected,
                    subject=subject, trial=trial, timeout_s=timeout_s)
    run.extra.update({"forces": out_dir / f"{name}_Actuation_force.sto", "controls": out_dir / f"{name}_controls.sto",
                      "states": out_dir / f"{name}_states.sto", "kinematics_q": out_dir / f"{name}_Kinematics_q.sto",
                      "residuals": out_dir / f"{name}_avgResiduals.txt",
                      **({"adjusted_model": out_dir / ADJUSTED_MODEL} if adjust_com_body else {}),
                      **{f"generated_{k}": v for k, v in gen.items()}})
    return run
