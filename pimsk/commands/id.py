"""`pimsk id`: coordinates + external loads -> net joint moments (moments.sto)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.commands import _osim_common as c

HELP = "inverse dynamics: coordinates .mot + ExternalLoads .xml -> moments.sto (N·m)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="scaled model .osim")
    parser.add_argument("--coordinates", type=Path, help="coordinates .mot (IK output)")
    parser.add_argument("--external-loads", type=Path, default=None, help="ExternalLoads .xml (GRF)")
    c.time_range_arg(parser)
    c.lowpass_arg(parser, 6.0)
    parser.add_argument("--exclude-forces", nargs="*", default=["Muscles"],
                        help="forces left out of the dynamics (default: Muscles)")
    c.trial_model_args(parser)
    c.add_common(parser)


def run(args: argparse.Namespace) -> int:
    if args.setup:
        return c.report(c.run_setup_as_is(args, "id"))
    c.require(args, "id", "model", "coordinates")
    from pimsk.osim.id import run_id

    result = run_id(model=c.trial_model(args, args.model), coordinates=args.coordinates, out_dir=args.out,
                    external_loads=args.external_loads,
                    time_range=tuple(args.time_range) if args.time_range else None,
                    lowpass_hz=c.lowpass(args.lowpass_hz), forces_to_exclude=args.exclude_forces,
                    log_file=args.log, subject=args.subject, trial=args.trial, timeout_s=args.timeout_s)
    return c.report(result)
