"""`pimsk ik`: markers (.trc) -> coordinates.mot (deg) + per-frame and per-marker errors."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.commands import _osim_common as c

HELP = "inverse kinematics: markers .trc -> coordinates.mot (+ marker error tables)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="scaled model .osim")
    parser.add_argument("--trc", type=Path, help="marker trajectories .trc")
    parser.add_argument("--tasks", type=Path, default=None,
                        help="marker weights: IK setup / IKTaskSet XML / JSON or YAML {markers, coordinates}; "
                             "default: every model marker, weight 1")
    c.time_range_arg(parser)
    parser.add_argument("--accuracy", type=float, default=1e-5, help="IK solver accuracy")
    parser.add_argument("--constraint-weight", type=float, default=None, help="constraint weight (default: Inf)")
    parser.add_argument("--no-marker-table", action="store_true", help="skip the per-marker error table")
    parser.add_argument("--max-marker-rms-m", type=float, default=None, help="fail above this marker RMS (m)")
    parser.add_argument("--max-marker-error-m", type=float, default=None, help="fail above this marker error (m)")
    c.trial_model_args(parser)
    c.add_common(parser)


def run(args: argparse.Namespace) -> int:
    if args.setup:
        return c.report(c.run_setup_as_is(args, "ik"))
    c.require(args, "ik", "model", "trc")
    from pimsk.osim.ik import run_ik
    from pimsk.osim.ik_tasks import load_ik_tasks

    result = run_ik(model=c.trial_model(args, args.model), trc=args.trc, out_dir=args.out,
                    tasks=load_ik_tasks(args.tasks) if args.tasks else None,
                    time_range=tuple(args.time_range) if args.time_range else None, accuracy=args.accuracy,
                    constraint_weight=c.constraint_weight(args.constraint_weight),
                    marker_table=not args.no_marker_table, max_marker_rms_m=args.max_marker_rms_m,
                    max_marker_error_m=args.max_marker_error_m, log_file=args.log, subject=args.subject,
                    trial=args.trial, timeout_s=args.timeout_s)
    return c.report(result)
