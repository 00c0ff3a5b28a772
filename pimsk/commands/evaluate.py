"""`pimsk evaluate`: test-fold metrics of trained runs, summaries and one-way ANOVA across runs.

    pimsk evaluate --dataset samples.npz --runs results/learn/picnn results/learn/cnn results/learn/elm
        --out results/learn/evaluation [--names PI-CNN CNN ELM] [--truth-dir results/demo_wrist/synth/truth]

Writes metrics.csv (per run, fold, seed and output: RMSE, nRMSE, r, R^2), summary.csv (mean and SD over folds
and seeds), anova.csv and the test predictions (see :mod:`pimsk.learn.evaluate`); with ``--truth-dir`` (a synthetic
subject) also truth_metrics.csv and truth_summary.csv: the same predictions against the TRUE values
(:mod:`pimsk.report.truth`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate trained runs on their test folds: metrics.csv, summary.csv, anova.csv, predictions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="dataset .npz the runs were trained on")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="output folders of `pimsk train`")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--names", nargs="+", help="run names for the tables (default: folder names)")
    parser.add_argument("--subset", choices=("test", "val", "train"), default="test", help="samples to evaluate")
    parser.add_argument("--truth-dir", type=Path,
                        help="truth folder of a synthetic subject (`pimsk synth`: <trial>/forces.sto, coordinates.mot): "
                             "also score the predictions against the true values")


def run(args: argparse.Namespace) -> int:
    import csv

    from pimsk.commands.train import _setup_logging
    from pimsk.learn.dataset_file import load_samples
    from pimsk.learn.evaluate import evaluate_runs

    samples = load_samples(args.dataset)
    handler = _setup_logging(args.out, "evaluate")
    try:
        paths = evaluate_runs(samples, args.runs, args.out, names=args.names, subset=args.subset)
        if args.truth_dir is not None:
            from pimsk.report.truth import write_truth_tables

            paths.update(write_truth_tables(samples, args.out, args.truth_dir))
    finally:
        import logging

        logging.getLogger("pimsk.learn").removeHandler(handler)
        handler.close()
    with paths["summary"].open() as fh:
        rows = list(csv.DictReader(fh))
    print(f"{'run':<16} {'output':<20} {'nRMSE':>16} {'r':>16}")
    for r in rows:
        print(f"{r['run']:<16} {r['output']:<20} {float(r['nrmse_mean']):7.4f} +- {float(r['nrmse_sd'] or 'nan'):<6.4f} "
              f"{float(r['r_mean']):7.4f} +- {float(r['r_sd'] or 'nan'):<6.4f}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
