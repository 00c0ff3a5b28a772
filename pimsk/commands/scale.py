"""`pimsk scale`: generic model + static trial -> scaled model with placed markers and an error table."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.commands import _osim_common as c

HELP = "scale a generic model to a subject (measurements + marker placement; per-marker error table)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="generic model .osim")
    parser.add_argument("--trc", type=Path, help="static trial .trc")
    parser.add_argument("--mass-kg", type=float, help="subject mass (kg)")
    parser.add_argument("--generic-body-mass-kg", type=float, default=None,
                        help="for a model of some segments only (one leg, forearm + hand): the body mass (kg) the "
                             "generic model's segments stand for; the scaled model's mass is then the generic "
                             "model's mass x mass-kg / this (default: the model is the whole body, mass-kg)")
    parser.add_argument("--height-m", type=float, default=None, help="subject height (m), informative")
    parser.add_argument("--measurements", type=Path,
                        help="scaling measurements: Scale setup XML or JSON/YAML [{name, marker_pairs, bodies}]")
    parser.add_argument("--manual-scales", type=Path, default=None,
                        help="manual scale factors: Scale setup XML (ScaleSet) or JSON/YAML {body: [sx, sy, sz]}")
    parser.add_argument("--tasks", type=Path,
                        help="marker placement weights: Scale/IK setup, IKTaskSet XML or JSON/YAML "
                             "(default without --marker-set: every marker of the model, weight 1)")
    parser.add_argument("--marker-set", default=None,
                        help="MarkerSet .xml to put on the generic model, or builtin:<name> (pimsk.osim.markersets)")
    c.time_range_arg(parser, help_text="static frames used for the scale factors (s; default: the whole trial)")
    parser.add_argument("--placement-time-range", type=float, nargs=2, default=None, metavar=("T0_S", "T1_S"),
                        help="frames averaged for marker placement (s; default --time-range)")
    parser.add_argument("--error-time-range", type=float, nargs=2, default=None, metavar=("T0_S", "T1_S"),
                        help="frames of the marker error table (s; default --time-range)")
    parser.add_argument("--max-marker-rms-m", type=float, default=0.02, help="fail above this marker RMS (m)")
    parser.add_argument("--max-marker-error-m", type=float, default=0.04,
                        help="fail when a marker's max error exceeds this (m)")
    parser.add_argument("--degroote", action="store_true",
                        help="also write the model with DeGrooteFregly2016Muscle muscles (model_scaled_degroote.osim)")
    c.add_common(parser)


def run(args: argparse.Namespace) -> int:
    if args.setup:
        return c.report(c.run_setup_as_is(args, "scale"))
    c.require(args, "scale", "model", "trc", "mass_kg", "measurements", *(["tasks"] if args.marker_set else []))
    from pimsk.osim.ik import default_tasks
    from pimsk.osim.ik_tasks import load_ik_tasks
    from pimsk.osim.markersets import resolve as resolve_marker_set
    from pimsk.osim.scale import load_manual_scales, load_measurements, run_scale
    from pimsk.io.trc import read_trc

    if args.marker_set:
        args.out.mkdir(parents=True, exist_ok=True)
        args.marker_set = resolve_marker_set(args.marker_set, args.model, args.out)
    if args.generic_body_mass_kg is not None:
        from pimsk.errors import ConfigError
        from pimsk.osim.model_info import read_model_info

        if args.generic_body_mass_kg <= 0:
            raise ConfigError("must be > 0", field="--generic-body-mass-kg", subject=args.subject)
        generic_kg = read_model_info(args.model, log_file=args.log).mass_kg
        model_mass_kg = generic_kg * args.mass_kg / args.generic_body_mass_kg
        print(f"scale: model mass {model_mass_kg!r} kg = generic model {generic_kg!r} kg x "
              f"{args.mass_kg!r} / {args.generic_body_mass_kg!r} kg")
        args.mass_kg = model_mass_kg
    if args.time_range is None:
        t_s = read_trc(args.trc).time_s
        args.time_range = (float(t_s[0]), float(t_s[-1]))

    result = run_scale(
        generic_model=args.model, static_trc=args.trc, out_dir=args.out, mass_kg=args.mass_kg,
        measurements=load_measurements(args.measurements),
        manual_scales=load_manual_scales(args.manual_scales) if args.manual_scales else None,
        tasks=load_ik_tasks(args.tasks) if args.tasks else default_tasks(args.model, args.log),
        time_range=tuple(args.time_range),
        placement_time_range=tuple(args.placement_time_range) if args.placement_time_range else None,
        error_time_range=tuple(args.error_time_range) if args.error_time_range else None,
        marker_set_file=args.marker_set, height_m=args.height_m, max_marker_rms_m=args.max_marker_rms_m,
        max_marker_error_m=args.max_marker_error_m, replace_muscles_degroote=args.degroote, log_file=args.log,
        subject=args.subject, trial=args.trial, timeout_s=args.timeout_s)
    c.report(result.run)
    print(f"  final model: {result.model}")
    print(f"  marker errors (RMS {result.marker_errors.total_rms_m * 100:.2f} cm, "
          f"max {result.marker_errors.total_max_m * 100:.2f} cm): {result.marker_table}")
    return 0
