"""`pimsk geometry`: fit the muscle path surrogate (MTU length polynomials) to OpenSim samples.

    pimsk geometry MODEL.osim --muscles rect_fem_r vas_int_r --out surrogate.json --report report.csv
        [--n-samples 1500 --n-test 500 --seed 0 --coordinates ... --range hip_flexion_r=-30:90 --samples-npz s.npz
         --split hip_flexion_r=2 --muscle-range FCR:deviation=-10:10 --moment-arms difference
         --min-per-piece 1500 --exact-segments [MUSCLE ...]]

Training samples (Latin hypercube, seed S) and held-out samples (seed S + 1) come from OpenSim; the report
gives, per muscle, the held-out length and moment-arm errors in mm.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from pimsk.errors import ConfigError

HELP = "fit MTU length / moment-arm polynomials to OpenSim samples (path surrogate JSON + fit report CSV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="scaled OpenSim model (.osim)")
    parser.add_argument("--muscles", nargs="+", required=True, help="muscle names")
    parser.add_argument("--out", type=Path, required=True, help="surrogate JSON to write")
    parser.add_argument("--report", type=Path, required=True, help="fit report CSV to write (errors in mm)")
    parser.add_argument("--n-samples", type=int, default=1500, help="training poses (default 1500)")
    parser.add_argument("--n-test", type=int, default=None, help="held-out poses (default n-samples / 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training design; held-out uses seed + 1")
    parser.add_argument("--method", choices=("lhs", "random", "grid"), default="lhs", help="training design")
    parser.add_argument("--coordinates", nargs="+", default=None,
                        help="only these coordinates vary (others keep their default values)")
    parser.add_argument("--range", action="append", default=[], metavar="NAME=LO:HI",
                        help="sampling range of a coordinate, degrees (rotational) or metres; repeatable")
    parser.add_argument("--max-degree", type=int, default=None, help="cap on the polynomial total degree")
    parser.add_argument("--split", action="append", default=[], metavar="NAME=N",
                        help="cut a coordinate's range into N equal pieces for the fit (e.g. hip_flexion_r=2 over "
                             "gait2392's +-120 deg hip); repeatable")
    parser.add_argument("--muscle-range", action="append", default=[], metavar="MUSCLE:NAME=LO:HI",
                        help="fit (and report) one muscle on a narrower range of a coordinate, degrees or metres; "
                             "repeatable")
    parser.add_argument("--moment-arms", choices=("opensim", "difference"), default="opensim",
                        help="training moment arms: OpenSim's computeMomentArm, or central differences of its "
                             "lengths (same values to ~1e-10 m, ~6x cheaper); held-out poses always use OpenSim")
    parser.add_argument("--min-per-piece", type=int, default=0,
                        help="add training poses to via-point-switch pieces holding fewer than this")
    parser.add_argument("--exact-segments", nargs="*", default=None, metavar="MUSCLE",
                        help="compute straight path segments across one joint exactly (checked against OpenSim; "
                             "e.g. tfl_r's iliac crest -> femur segment over gait2392's +-120 deg hip) and fit "
                             "the polynomial to the rest of the length; for these muscles, or all of --muscles "
                             "where none is named")
    parser.add_argument("--samples-npz", type=Path, default=None,
                        help="also write the OpenSim samples (training; held-out to *_test.npz)")


def _parse_ranges(items: list[str], rotational: dict[str, bool]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items:
        try:
            name, span = item.split("=", 1)
            lo, hi = (float(x) for x in span.split(":", 1))
        except ValueError:
            raise ConfigError(f"bad --range {item!r}", field="--range",
                              hint="use NAME=LO:HI, e.g. knee_angle_r=-120:10")
        name = name.strip()
        if name not in rotational:
            raise ConfigError(f"--range names unknown coordinate {name!r}", field="--range")
        if hi <= lo:
            raise ConfigError(f"--range {item!r}: upper bound must exceed lower", field="--range")
        factor = math.pi / 180.0 if rotational[name] else 1.0
        out[name] = (lo * factor, hi * factor)
    return out


def run(args: argparse.Namespace) -> int:
    from pimsk.core.path_surrogate import evaluate_surrogate, fit_surrogate, write_report_csv
    from pimsk.osim.path_sampling import exact_segments, load_model, sample_paths

    if args.n_samples < 10:
        raise ConfigError("--n-samples must be at least 10", field="--n-samples")
    model = load_model(args.model)
    rotational = {c.getName(): c.getMotionType() == 1 for c in model.getCoordinateSet()}
    ranges = _parse_ranges(args.range, rotational)
    splits = {}
    for item in args.split:
        name, _, count = item.partition("=")
        if name.strip() not in rotational or not count.strip().isdigit() or int(count) < 1:
            raise ConfigError(f"bad --split {item!r}", field="--split", hint="use NAME=N, e.g. hip_flexion_r=2")
        splits[name.strip()] = int(count)
    muscle_ranges: dict[str, dict[str, tuple[float, float]]] = {}
    for item in args.muscle_range:
        muscle, sep, span = item.partition(":")
        if not sep or muscle not in args.muscles:
            raise ConfigError(f"bad --muscle-range {item!r}", field="--muscle-range",
                              hint="use MUSCLE:NAME=LO:HI with a muscle of --muscles")
        muscle_ranges.setdefault(muscle, {}).update(_parse_ranges([span], rotational))
    unknown = [m for m in args.exact_segments or [] if m not in args.muscles]
    if unknown:
        raise ConfigError(f"--exact-segments names {unknown}, not among --muscles", field="--exact-segments")
    train = sample_paths(model, args.muscles, args.n_samples, seed=args.seed, method=args.method,
                         coordinates=args.coordinates, ranges=ranges, moment_arms=args.moment_arms,
                         min_per_piece=args.min_per_piece)
    segments = None
    if args.exact_segments is not None:
        segments = exact_segments(model, {m: train.crossed[m] for m in args.exact_segments or args.muscles})
    n_test = args.n_test if args.n_test is not None else max(10, args.n_samples // 2)
    test = sample_paths(model, args.muscles, n_test, seed=args.seed + 1, method="lhs", coordinates=args.coordinates,
                        ranges=ranges, crossed=train.crossed)
    surrogate = fit_surrogate(train.coordinates, train.range_min, train.range_max, train.crossed, train.q,
                              train.length_m, train.moment_arm_m, train.muscles, breaks=train.breaks,
                              max_degree=args.max_degree, seed=args.seed, model=str(args.model),
                              fixed_coordinates=train.fixed_coordinates, splits=splits, joints=train.joints,
                              muscle_ranges=muscle_ranges, segments=segments)
    rows = evaluate_surrogate(surrogate, test.q, test.length_m, test.moment_arm_m, test.coordinates, test.muscles)
    for path, row in zip(surrogate.paths, rows):
        path.report["held_out"] = {k: row[k] for k in ("n_test", "length_err_median_mm", "length_err_max_mm",
                                                       "moment_arm_err_median_mm", "moment_arm_err_max_mm")}
    for target in (args.out, args.report):
        target.parent.mkdir(parents=True, exist_ok=True)
    surrogate.save_json(args.out)
    write_report_csv(rows, args.report)
    if args.samples_npz is not None:
        args.samples_npz.parent.mkdir(parents=True, exist_ok=True)
        train.save_npz(args.samples_npz)
        test.save_npz(args.samples_npz.with_name(args.samples_npz.stem + "_test.npz"))
    print(f"{'muscle':<20} {'degree':<10} {'len med/max mm':>16} {'r med/max mm':>16}")
    for row in rows:
        print(f"{row['muscle']:<20} {row['degree']:<10} "
              f"{row['length_err_median_mm']:7.3f}/{row['length_err_max_mm']:<8.3f} "
              f"{row['moment_arm_err_median_mm']:7.3f}/{row['moment_arm_err_max_mm']:<8.3f}")
    for muscle, found in (segments or {}).items():
        print(f"{muscle}: exact segments {[seg.name for seg in found] or 'none in this model'}")
    print(f"wrote {args.out} and {args.report} ({train.n_samples} training, {test.n_samples} held-out poses)")
    return 0
