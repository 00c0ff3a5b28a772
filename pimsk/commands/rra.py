"""`pimsk rra`: residual reduction -> dynamically consistent kinematics (and a COM-adjusted model)."""

from __future__ import annotations

import argparse

from pimsk.commands import _osim_common as c
from pimsk.commands.cmc import actuators, add_tracking_arguments

HELP = "residual reduction: IK kinematics + GRF -> adjusted kinematics (and model)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_tracking_arguments(parser, "rra")
    parser.add_argument("--adjust-com-body", default=None,
                        help="move this body's mass centre to cut mean residual moments (e.g. torso)")
    c.add_common(parser)


def run(args: argparse.Namespace) -> int:
    if args.setup:
        return c.report(c.run_setup_as_is(args, "rra"))
    c.require(args, "rra", "model", "kinematics")
    from pimsk.osim.rra import run_rra

    result = run_rra(model=args.model, desired_kinematics=args.kinematics, out_dir=args.out,
                     time_range=tuple(args.time_range) if args.time_range else None, tasks_file=args.tasks,
                     actuators_files=actuators(args), external_loads=args.external_loads,
                     constraints_file=args.constraints, lowpass_hz=c.lowpass(args.lowpass_hz),
                     adjust_com_body=args.adjust_com_body, integrator_tolerance=args.integrator_tolerance,
                     log_file=args.log, subject=args.subject, trial=args.trial, timeout_s=args.timeout_s)
    return c.report(result)
