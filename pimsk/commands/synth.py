"""`pimsk synth`: make a synthetic subject (C3D files + ground truth) from a subject file's synth section."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "synthetic subject: scaled generic model + known excitations -> forward sim -> C3D + truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="subject.yaml with a synth: section")
    parser.add_argument("--out", required=True, type=Path, help="output folder (C3D files, truth/)")
    parser.add_argument("--seed", type=int, default=None, help="noise seed (default: synth.seed of the file)")
    parser.add_argument("--max-duration", type=float, default=None, metavar="S",
                        help="shorten every trial's analysis window (time_range_s) to at most S seconds, keeping "
                             "the rest recorded before and after it; a trial without a window is cut to S s "
                             "(quick runs)")
    parser.add_argument("--trials", default=None, help="comma-separated trial names (default: all)")


def run(args: argparse.Namespace) -> int:
    from pimsk.synth.generate import synthesize

    only = [t.strip() for t in args.trials.split(",") if t.strip()] if args.trials else None
    report = synthesize(args.config, args.out, seed=args.seed, max_duration_s=args.max_duration, only_trials=only)
    for tr in report.trials:
        ranges = ", ".join(f"{c} {lo:.1f}..{hi:.1f} deg" for c, (lo, hi) in tr.coordinate_range_deg.items())
        print(f"{tr.name}: {tr.c3d} ({tr.n_frames} frames, simulated in {tr.wall_s:.2f} s; {ranges})")
    print(f"truth: {report.truth_json}  (total {report.wall_s:.1f} s)")
    return 0
