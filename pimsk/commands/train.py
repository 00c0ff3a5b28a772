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


def head_of_each_trial(samples, indices, fraction: float):
    """The first ``ceil(fraction x n)`` of the n ``indices`` of every trial (at least one), in time order."""
    import math

    import numpy as np

    idx = np.asarray(indices, dtype=int)
    keep = []
    for trial in dict.fromkeys(samples.trial[idx].tolist()):
        mine = idx[samples.trial[idx] == trial]
        mine = mine[np.argsort(samples.start_s[mine], kind="stable")]
        keep.append(mine[:max(1, math.ceil(fraction * len(mine) - 1e-9))])
    return np.sort(np.concatenate(keep)) if keep else idx


def _run_training_fraction(samples, raw, out: Path, assets, folds, fraction: float) -> list[dict]:
    """:func:`pimsk.learn.train.run_training` with every fold's training samples cut by :func:`head_of_each_trial`."""
    from dataclasses import replace

    from pimsk.errors import ConfigError
    from pimsk.learn.metrics import write_csv
    from pimsk.learn.train import _folder_name, make_splits, resolve_config, save_fit, select_and_fit

    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--train-fraction {fraction} must be in (0, 1]", field="--train-fraction")
    run_cfg = resolve_config(raw)
    rows = []
    for seed in run_cfg.seeds:
        for sp in make_splits(samples, run_cfg.protocol, seed=seed):
            if folds and sp.name not in folds and sp.test_group not in folds:
                continue
            sp = replace(sp, train=head_of_each_trial(samples, sp.train, fraction))
            logging.getLogger("pimsk.learn.train").info("fold %s seed %d: %d train (fraction %g), %d val, %d test",
                                                        sp.name, seed, len(sp.train), fraction, len(sp.val),
                                                        len(sp.test))
            fit, best_raw, selection = select_and_fit(samples, sp, raw, assets, seed)
            folder = save_fit(fit, out / _folder_name(sp.name) / f"seed_{seed}", best_raw, sp, samples,
                              selection)
            rows.append({"method": run_cfg.method, "fold": sp.name, "test_group": sp.test_group, "seed": seed,
                         "folder": str(folder.relative_to(out)), "best_epoch": fit.best_epoch,
                         "val_score": fit.val_score, "seconds": round(fit.seconds, 3), "train_fraction": fraction,
                         "n_train": len(sp.train)})
    if not rows:
        raise ConfigError(f"no fold named {list(folds)}", field="--fold")
    write_csv(rows, out / "summary.csv")
    return rows


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
        if args.train_fraction is None or args.train_fraction == 1.0:
            rows = run_training(samples, raw, args.out, assets, folds=args.fold)
        else:
            rows = _run_training_fraction(samples, raw, args.out, assets, args.fold, args.train_fraction)
    finally:
        logging.getLogger("pimsk.learn").removeHandler(handler)
        handler.close()
    for r in rows:
        print(f"{r['method']} {r['fold']} seed {r['seed']}: best epoch {r['best_epoch']}, "
              f"validation {r['val_score']:.4g} ({r['seconds']:.1f} s) -> {args.out / r['folder']}")
    return 0
