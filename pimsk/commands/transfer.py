"""`pimsk transfer`: personalise a generic PI-CNN to an unseen subject (Zhang et al. 2022, IEEE TIM).

    pimsk transfer --config transfer.yaml --out results/learn/transfer_wrist [--seed 0 1 2]
        [--arms generic scratch transfer] [--fraction 0.2] [--max-epochs 100]

The config (:func:`pimsk.learn.transfer.load_transfer_config`) names the source datasets and the generic model's
run config (its physics: the source model), the target dataset with its own physics files (its scaled model)
and label maps, and the transfer settings (share of the target's data, fine-tuning, identified parameters).
Writes ``<arm>/seed_<s>/`` (model, history, split), ``metrics.csv`` and ``summary.csv`` (nRMSE and r per arm
and output on the target's held-out samples, mean and SD over seeds) and prints the summary.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = ("transfer a generic PI-CNN to a new subject: frozen conv blocks, L2-SP fine-tuned head or output map "
        "(chosen on the sources), the subject's physics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="transfer config (YAML or JSON)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--seed", type=int, nargs="+", help="override the seeds")
    parser.add_argument("--arms", nargs="+", choices=("generic", "scratch", "transfer"),
                        help="which arms to run (default: all three)")
    parser.add_argument("--fraction", type=float, help="override transfer.fraction (share of the target's data)")
    parser.add_argument("--max-epochs", type=int,
                        help="override generic.training.max_epochs and transfer.training.max_epochs")


def run(args: argparse.Namespace) -> int:
    from pimsk.commands.train import _setup_logging
    from pimsk.learn.train import with_overrides
    from pimsk.learn.transfer import load_transfer_config, summarise, transfer_from_config

    raw = load_transfer_config(args.config)
    overrides = {}
    if args.fraction is not None:
        overrides["transfer.fraction"] = args.fraction
    if args.max_epochs:
        overrides["generic.training.max_epochs"] = args.max_epochs
        overrides["transfer.training.max_epochs"] = args.max_epochs
    raw = with_overrides(raw, overrides)
    handler = _setup_logging(args.out, "transfer")
    try:
        rows = transfer_from_config(raw, args.out, seeds=args.seed, arms=args.arms)
    finally:
        logging.getLogger("pimsk.learn").removeHandler(handler)
        handler.close()
    print(f"{'arm':<9} {'output':<20} {'nRMSE %':>15} {'r':>13}")
    for r in summarise(rows):
        print(f"{r['arm']:<9} {r['output']:<20} {100 * r['nrmse_mean']:7.1f} ± {100 * r['nrmse_sd']:5.1f} "
              f"{r['r_mean']:6.2f} ± {r['r_sd']:4.2f}")
    print(f"metrics: {args.out / 'metrics.csv'}; summary: {args.out / 'summary.csv'}")
    return 0
