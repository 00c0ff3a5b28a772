"""`pimsk train`: fit PI-CNN / CNN / ELM / ML-ELM / SVR on a dataset, fold by fold, seed by seed.

    pimsk train --dataset samples.npz --config run.yaml --out results/learn/wrist_picnn
        [--surrogate s.json --muscle-parameters model.osim --chain chain.json] [--method cnn] [--lambda 0.5]
        [--fold flex_fast] [--seed 3] [--train-fraction 0.25]

The run config is described in :mod:`pimsk.learn.train`; command-line options override it. Hyperparameters in
``search`` (lambda included) are chosen on validation data only. Progress: one log line per epoch (stderr and
``<out>/train.log``). ``--train-fraction F`` (effect of the training-set size) trains every fold on the first
fraction F (in time) of each training trial's training samples; validation and test samples stay as they are.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

HELP = "train PI-CNN (data + physics loss) or a baseline on a dataset .npz; models, histories, splits"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="dataset .npz (`pimsk dataset`)")
    parser.add_argument("--config", type=Path, required=True, help="run config (YAML or JSON)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--method", choices=("picnn", "cnn", "elm", "mlelm", "svr"), help="override config method")
    parser.add_argument("--lambda", dest="lam", type=float, help="override loss.lambda")
    parser.add_argument("--surrogate", type=Path, help="path surrogate JSON (`pimsk geometry`)")
    parser.add_argument("--muscle-parameters", type=Path, help="scaled .osim or muscle-parameter JSON")
    parser.add_argument("--chain", type=Path, help="open-chain JSON or scaled .osim (with physics.chain_root_body)")
    parser.add_argument("--fold", nargs="+", help="train only these folds (test group or split name)")
    parser.add_argument("--seed", type=int, nargs="+", help="override the seeds")
    parser.add_argument("--max-epochs", type=int, help="override training.max_epochs")
    parser.add_argument("--train-fraction", type=float,
                        help="train on the first FRACTION (0-1], in time, of every training trial's training samples "
                             "(validation and test samples unchanged): the effect of the training-set size")


def _setup_logging(out: Path, verb: str) -> logging.Handler:
    logger = logging.getLogger("pimsk.learn")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logger.handlers) and not logging.getLogger().handlers:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(f"pimsk {verb}: %(message)s"))
        logger.addHandler(stream)
    out.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(out / f"{verb}.log", mode="w")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(file_handler)
    return file_handler


def run(args: argparse.Namespace) -> int:
    from pimsk.learn.dataset_file import load_samples
    from pimsk.learn.train import assets_from_config, load_config, resolve_config, run_training, with_overrides

    raw = load_config(args.config)
    overrides = {}
    if args.method:
        overrides["method"] = args.method
    if args.lam is not None:
        overrides["loss.lambda"] = args.lam
    if args.seed:
        overrides["seeds"] = list(args.seed)
    if args.max_epochs:
        overrides["training.max_epochs"] = args.max_epochs
    raw = with_overrides(raw, overrides)
    run_cfg = resolve_config(raw)
    samples = load_samples(args.dataset)
    handler = _setup_logging(args.out, "train")
    try:
        assets = None
        if run_cfg.method in ("picnn", "cnn"):
            assets = assets_from_config(raw, surrogate=args.surrogate, muscle_parameters=args.muscle_parameters,
                                        chain=args.chain)
        rows = run_training(samples, raw, args.out, assets, folds=args.fold,
                            train_fraction=1.0 if args.train_fraction is None else args.train_fraction)
    finally:
        logging.getLogger("pimsk.learn").removeHandler(handler)
        handler.close()
    for r in rows:
        print(f"{r['method']} {r['fold']} seed {r['seed']}: best epoch {r['best_epoch']}, "
              f"validation {r['val_score']:.4g} ({r['seconds']:.1f} s) -> {args.out / r['folder']}")
    return 0
