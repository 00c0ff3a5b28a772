"""`pimsk figures`: the learning stage's figures of one subject (PNG, :mod:`pimsk.report.figures`).

    pimsk figures --dataset samples.npz --methods evaluate/methods/summary.csv
        --training-size evaluate/training_size/summary.csv --network-depth evaluate/network_depth/summary.csv
        --histories picnn=runs/picnn cnn=runs/cnn --coordinates wrist_flexion_r --out-dir results/figures/S
    pimsk figures --truth evaluate/methods/summary.csv --out-dir results/figures/S      # synthetic subject

Step beyond ([F6]; scores and tables: :mod:`pimsk.report.beyond`, figures: :mod:`pimsk.report.beyond_figures`)::

    pimsk figures --identification RUN_IDENTIFIED RUN_GENERIC --dataset samples.npz --truth-dir synth/truth
        --test-trial fast_c --out-dir results/figures/beyond --tables results/beyond/identification
    pimsk figures --label-free RUN_LABEL_FREE RUN_SUPERVISED --dataset samples.npz --truth-dir synth/truth
        --test-trial fast_c --out-dir results/figures/beyond --tables results/beyond/label_free
    pimsk figures --transfer transfer/summary.csv --out-dir results/figures/beyond --tables results/beyond/transfer

Writes into OUT_DIR: predictions.png (with --dataset and --methods), methods.png (--methods), training_curves.png
(--histories), training_size.png (--training-size), network_depth.png (--network-depth) and truth.png (--truth:
truth_summary.csv beside the given summary, written by `pimsk evaluate --truth-dir`). Summaries are the files of
`pimsk evaluate`; the predictions and metrics beside them are read too. Step beyond: identification_parameters.png
and identification_forces.png (--identification: runs of `pimsk identify` and `pimsk identify --no-identify`),
label_free.png (--label-free: `pimsk identify` and `pimsk identify --supervised`), transfer.png (--transfer: the
summary of `pimsk transfer`), each with its table (CSV and JSON) in --tables.
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
    beyond = parser.add_argument_group("step beyond (identification, label-free training, transfer)")
    beyond.add_argument("--identification", nargs=2, type=Path, metavar=("IDENTIFIED", "GENERIC"),
                        help="output folders of `pimsk identify` and `pimsk identify --no-identify`")
    beyond.add_argument("--label-free", nargs=2, type=Path, metavar=("LABEL_FREE", "SUPERVISED"),
                        help="output folders of `pimsk identify` and `pimsk identify --supervised`")
    beyond.add_argument("--transfer", type=Path, metavar="SUMMARY_CSV", help="summary.csv of `pimsk transfer`")
    beyond.add_argument("--truth-dir", type=Path, help="truth folder of `pimsk synth` (truth.json, <trial>/forces.sto)")
    beyond.add_argument("--test-trial", help="the test trial (fold) of the `pimsk identify` runs")
    beyond.add_argument("--skip-frames", type=int, default=10,
                        help="frames at each window start left out of the force scores (identify.skip_frames)")
    beyond.add_argument("--tables", type=Path, help="folder for the study's tables (CSV and JSON)")


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
    written += _beyond(args, who)
    if not written:
        raise ConfigError("nothing to draw", field="--methods",
                          hint="give --methods, --histories, --training-size, --network-depth, --truth, "
                               "--identification, --label-free or --transfer")
    for path in written:
        print(f"wrote {path}")
    return 0


def _required(args: argparse.Namespace, option: str, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(args, name) is None:
            raise ConfigError(f"{option} needs --{name.replace('_', '-')}", field=f"--{name.replace('_', '-')}")


def _write_tables(folder: Path, name: str, rows: list[dict], doc: dict) -> list[Path]:
    """rows -> <folder>/<name>.csv; doc (with the rows) -> <folder>/<name>.json."""
    import json

    from pimsk.learn.metrics import write_csv

    folder.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, folder / f"{name}.csv")
    json_path = folder / f"{name}.json"
    json_path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    return [csv_path, json_path]


def _beyond(args: argparse.Namespace, who: str) -> list[Path]:
    """The figures and tables of step beyond that the options ask for."""
    from pimsk.report import beyond as bd
    from pimsk.report import beyond_figures as bf

    written: list[Path] = []
    runs = {"--identification": args.identification, "--label-free": args.label_free}
    if any(v is not None for v in runs.values()):
        from pimsk.learn.dataset_file import load_samples

        for option, value in runs.items():
            if value is not None:
                _required(args, option, ("dataset", "truth_dir", "test_trial", "tables"))
        samples = load_samples(args.dataset)
    if args.identification is not None:
        identified = bd.fold_dir(args.identification[0], args.test_trial)
        generic = bd.fold_dir(args.identification[1], args.test_trial)
        params = bd.parameter_rows(identified, args.truth_dir / "truth.json")
        saved_id, saved_gen = bd.load_test_forces(identified), bd.load_test_forces(generic)
        forces = {"identified_ode": (saved_id, "ode"), "generic_ode": (saved_gen, "ode")}
        scores = bd.force_scores(samples, forces, args.truth_dir, args.skip_frames)
        t, series, muscles = bd.force_traces(samples, forces, args.truth_dir, args.skip_frames)
        written.append(bf.plot_parameters(params, args.out_dir / "identification_parameters.png",
                                          f"{who}identified vs generic vs true muscle parameters"))
        written.append(bf.plot_force_traces(t, series, muscles, args.out_dir / "identification_forces.png",
                                            f"{who}EMG-driven forces on test trial {args.test_trial}: identified vs "
                                            "generic parameters vs truth"))
        written += _write_tables(args.tables, "parameters", params, {"parameters": params})
        written += _write_tables(args.tables, "forces", scores,
                                 {"test_trial": args.test_trial, "skip_frames": args.skip_frames,
                                  "identified_run": str(identified), "generic_run": str(generic), "forces": scores})
    if args.label_free is not None:
        label_free = bd.fold_dir(args.label_free[0], args.test_trial)
        supervised = bd.fold_dir(args.label_free[1], args.test_trial)
        forces = {"label_free": (bd.load_test_forces(label_free), "network"),
                  "supervised": (bd.load_test_forces(supervised), "network")}
        scores = bd.force_scores(samples, forces, args.truth_dir, args.skip_frames)
        written.append(bf.plot_force_bars(scores, args.out_dir / "label_free.png",
                                          f"{who}label-free vs supervised PI-CNN: forces against the truth "
                                          f"(test trial {args.test_trial})"))
        written += _write_tables(args.tables, "label_free", scores,
                                 {"test_trial": args.test_trial, "skip_frames": args.skip_frames,
                                  "label_free_run": str(label_free), "supervised_run": str(supervised),
                                  "forces": scores})
    if args.transfer is not None:
        _required(args, "--transfer", ("tables",))
        import json

        rows = bd.transfer_rows(_need(args.transfer, "--transfer"))
        split_file = args.transfer.parent / "target_split.json"
        split = json.loads(split_file.read_text()) if split_file.is_file() else None
        written.append(bf.plot_transfer(rows, args.out_dir / "transfer.png",
                                        f"{who}transfer to an unseen subject (held-out data of the target)"))
        written += _write_tables(args.tables, "transfer", rows, {"summary": str(args.transfer), "split": split,
                                                                  "rows": rows})
    return written
