"""`pimsk figures`: the learning stage's figures of one subject (PNG, :mod:`pimsk.report.figures`).

    pimsk figures --dataset samples.npz --methods evaluate/methods/summary.csv
        --training-size evaluate/training_size/summary.csv --network-depth evaluate/network_depth/summary.csv
        --histories picnn=runs/picnn cnn=runs/cnn --coordinates wrist_flexion_r --out-dir results/figures/S
    pimsk figures --truth evaluate/methods/summary.csv --out-dir results/figures/S      # synthetic subject

Writes into OUT_DIR: predictions.png (with --dataset and --methods), methods.png (--methods), training_curves.png
(--histories), training_size.png (--training-size), network_depth.png (--network-depth) and truth.png (--truth:
truth_summary.csv beside the given summary, written by `pimsk evaluate --truth-dir`). Summaries are the files of
`pimsk evaluate`; the predictions and metrics beside them are read too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.errors import ConfigError

HELP = "figures of the learning stage: predictions, method comparison, training curves, size and depth studies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the PNG files (created)")
    parser.add_argument("--dataset", type=Path, help="dataset .npz the runs were trained on (for predictions.png)")
    parser.add_argument("--methods", type=Path, help="summary.csv of the method comparison (`pimsk evaluate`)")
    parser.add_argument("--training-size", type=Path, help="summary.csv of the training-size runs (names method@F)")
    parser.add_argument("--network-depth", type=Path, help="summary.csv of the depth runs (names method@N)")
    parser.add_argument("--histories", nargs="+", default=[], metavar="NAME=RUN_DIR",
                        help="runs of `pimsk train` whose history.csv files make training_curves.png")
    parser.add_argument("--truth", type=Path, help="summary.csv beside truth_summary.csv (synthetic subject)")
    parser.add_argument("--coordinates", nargs="+", default=[],
                        help="outputs that are joint angles (drawn in degrees, first; the rest are forces in N)")
    parser.add_argument("--subject", help="subject id (figure titles)")


def _histories(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"bad --histories {item!r}", field="--histories", hint="use NAME=RUN_DIR")
        out[name] = Path(path)
    return out


def _need(path: Path, option: str) -> Path:
    if not path.is_file():
        raise ConfigError("file not found", file=path, field=option, hint="run `pimsk evaluate` first")
    return path


def run(args: argparse.Namespace) -> int:
    from pimsk.report import figures as fg

    who = f"{args.subject}: " if args.subject else ""
    angles = list(args.coordinates)
    written = []
    if args.methods is not None:
        summary = _need(args.methods, "--methods")
        if args.dataset is not None:
            from pimsk.learn.dataset_file import load_samples

            written.append(fg.plot_predictions(load_samples(args.dataset), summary.parent,
                                               args.out_dir / "predictions.png", angles,
                                               f"{who}test predictions vs reference (mean ± SD)"))
        written.append(fg.plot_method_comparison(summary, args.out_dir / "methods.png", angles,
                                                 f"{who}method comparison (mean ± SD over folds and seeds)"))
    if args.histories:
        written.append(fg.plot_training_curves(_histories(args.histories), args.out_dir / "training_curves.png",
                                               f"{who}training curves (mean ± SD over folds and seeds)"))
    for option, path, name, xlabel in (("--training-size", args.training_size, "training_size",
                                        "training-set fraction"),
                                       ("--network-depth", args.network_depth, "network_depth",
                                        "convolutional blocks")):
        if path is not None:
            written.append(fg.plot_study(_need(path, option).parent, args.out_dir / f"{name}.png", xlabel, angles,
                                         f"{who}effect of the {xlabel} (mean ± SD over folds and seeds)"))
    if args.truth is not None:
        truth = _need(args.truth.parent / "truth_summary.csv", "--truth")
        written.append(fg.plot_truth(truth, args.out_dir / "truth.png", angles,
                                     f"{who}errors against the TRUE values (synthetic subject)"))
    if not written:
        raise ConfigError("nothing to draw", field="--methods",
                          hint="give --methods, --histories, --training-size, --network-depth or --truth")
    for path in written:
        print(f"wrote {path}")
    return 0
