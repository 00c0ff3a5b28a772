"""`pimsk cmc`: computed muscle control -> excitations, activations (states) and muscle forces."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.commands import _osim_common as c

HELP = "computed muscle control: kinematics (+ GRF) -> muscle forces, controls, states"


def add_tracking_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """Arguments shared by `pimsk cmc` and `pimsk rra`."""
    parser.add_argument("--model", type=Path, help="scaled model .osim")
    parser.add_argument("--kinematics", type=Path, help="desired kinematics .mot/.sto (IK or RRA output)")
    parser.add_argument("--tasks", type=Path, default=None,
                        help="CMC_TaskSet .xml; default: generated, tracking every free coordinate")
    parser.add_argument("--actuators", type=Path, nargs="*", default=None,
                        help="reserve/residual force set files; default: generated from the model")
    parser.add_argument("--no-actuators", action="store_true", help="add no reserves or residuals")
    parser.add_argument("--external-loads", type=Path, default=None, help="ExternalLoads .xml (GRF)")
    parser.add_argument("--constraints", type=Path, default=None, help="ControlSet of control bounds")
    c.time_range_arg(parser)
    c.lowpass_arg(parser, None if verb == "cmc" else 6.0)
    parser.add_argument("--integrator-tolerance", type=float, default=1e-5, help="integrator error tolerance")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_tracking_arguments(parser, "cmc")
    parser.add_argument("--cmc-window-s", type=float, default=0.01, help="CMC look-ahead window (s)")
    parser.add_argument("--slow-target", action="store_true", help="use the slow (robust) optimization target")
    parser.add_argument("--degroote", action="store_true",
                        help="replace the model's muscles by DeGrooteFregly2016Muscle before CMC")
    c.trial_model_args(parser)
    c.add_common(parser)


def actuators(args: argparse.Namespace) -> list[Path] | None:
    return [] if args.no_actuators else args.actuators


def run(args: argparse.Namespace) -> int:
    if args.setup:
        return c.report(c.run_setup_as_is(args, "cmc"))
    c.require(args, "cmc", "model", "kinematics")
    from pimsk.osim.cmc import run_cmc

    model = c.trial_model(args, args.model)
    if args.degroote:
        from pimsk.osim.degroote import replace_muscles_degroote

        args.out.mkdir(parents=True, exist_ok=True)
        model = replace_muscles_degroote(model, args.out / "model_degroote.osim",
                                         log_file=args.log or args.out / "cmc.log", subject=args.subject)
    result = run_cmc(model=model, desired_kinematics=args.kinematics, out_dir=args.out,
                     time_range=tuple(args.time_range) if args.time_range else None, tasks_file=args.tasks,
                     actuators_files=actuators(args), external_loads=args.external_loads,
                     constraints_file=args.constraints, lowpass_hz=c.lowpass(args.lowpass_hz),
                     cmc_time_window_s=args.cmc_window_s, use_fast_target=not args.slow_target,
                     integrator_tolerance=args.integrator_tolerance, log_file=args.log, subject=args.subject,
                     trial=args.trial, timeout_s=args.timeout_s)
    return c.report(result)
