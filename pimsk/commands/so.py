"""`pimsk so`: static optimization -> muscle activations and forces."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.commands import _osim_common as c

HELP = "static optimization: coordinates (+ GRF) -> muscle activations and forces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="scaled model .osim")
    parser.add_argument("--coordinates", type=Path, help="coordinates .mot (IK output)")
    parser.add_argument("--external-loads", type=Path, default=None, help="ExternalLoads .xml (GRF)")
    parser.add_argument("--actuators", type=Path, nargs="*", default=[],
                        help="extra force set files (reserves / residuals)")
    parser.add_argument("--reserves", choices=("auto", "none"), default="auto",
                        help="auto: when no --actuators are given, generate weak reserves for every coordinate and "
                             "residuals on the floating base from the model (as for CMC); none: the model's forces only")
    parser.add_argument("--allow-failed-frames", type=int, default=0,
                        help="frames where OpenSim's optimizer may fail before the step is an error (default 0)")
    parser.add_argument("--replace-force-set", action="store_true",
                        help="use only --actuators, not the model's own forces")
    c.time_range_arg(parser)
    c.lowpass_arg(parser, 6.0)
    parser.add_argument("--activation-exponent", type=float, default=2.0, help="exponent of the activation cost")
    parser.add_argument("--no-muscle-physiology", action="store_true",
                        help="ignore force-length-velocity (ideal force generators)")
    parser.add_argument("--method", choices=("opensim", "passive"), default="opensim",
                        help="opensim: OpenSim's StaticOptimization (leaves passive fibre force out); passive: "
                             "the same problem with each muscle's passive fibre force kept (pimsk.osim.so_passive)")
    parser.add_argument("--tendon", choices=("rigid", "equilibrium"), default="rigid",
                        help="--method passive: fibre state from a rigid tendon (as OpenSim's SO) or from "
                             "fibre-tendon equilibrium at the solved activations")
    c.trial_model_args(parser)
    c.add_common(parser)


def run(args: argparse.Namespace) -> int:
    if args.setup:
        from pimsk.osim.so_passive import is_passive_setup, run_setup_file

        if is_passive_setup(args.setup):
            return c.report(run_setup_file(args.setup, out_dir=args.out, log_file=args.log, subject=args.subject,
                                           trial=args.trial, timeout_s=args.timeout_s))
        return c.report(c.run_setup_as_is(args, "so"))
    c.require(args, "so", "model", "coordinates")
    from pimsk.osim.so import run_so

    model = c.trial_model(args, args.model)
    actuators = list(args.actuators)
    if not actuators and args.reserves == "auto" and args.method == "opensim":
        from pimsk.osim.cmc_defaults import write_actuators
        from pimsk.osim.model_info import read_model_info

        args.out.mkdir(parents=True, exist_ok=True)
        info = read_model_info(model, log_file=args.log or args.out / "so_reserves.log")
        actuators = [write_actuators(info, args.out / "so_actuators.xml", purpose="cmc")]
    result = run_so(model=model, coordinates=args.coordinates, out_dir=args.out,
                    time_range=tuple(args.time_range) if args.time_range else None,
                    external_loads=args.external_loads, force_set_files=actuators,
                    replace_force_set=args.replace_force_set, lowpass_hz=c.lowpass(args.lowpass_hz),
                    activation_exponent=args.activation_exponent,
                    use_muscle_physiology=not args.no_muscle_physiology, log_file=args.log,
                    subject=args.subject, trial=args.trial, timeout_s=args.timeout_s, method=args.method,
                    tendon=args.tendon, max_failed_frames=args.allow_failed_frames)
    return c.report(result)
