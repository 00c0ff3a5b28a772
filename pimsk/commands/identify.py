"""`pimsk identify`: identify muscle parameters with the musculoskeletal ODE loss while training a PI-CNN,
label-free by default (the network's data loss sees only the coordinates).

    pimsk identify --dataset samples.npz --config identify.yaml --out results/learn/wrist_id [--fold fast_c]
        [--supervised] [--no-identify] [--max-epochs 150] [--mvc-envelopes emg/mvc_envelopes.sto]

Config (YAML; relative paths from its folder)::

    coordinates: [wrist_flexion_r]           # network outputs with a data loss (IK angles)
    muscles: [FCR, FCU, ECRL, ECRB, ECU]     # network force outputs = EMG channels = model muscles
    physics: {surrogate: s.json, muscle_parameters: generic.osim_or_json, chain: model.osim,
              chain_root_body: forearm_r, chain_coordinates: [wrist_flexion_r]}
    mvc: {envelopes: emg/mvc_envelopes.sto, window_s: [0.5, 2.5]}   # EMG reference: mean over the plateau;
                                             # its relative noise sizes the errors-in-variables correction
    network: {n_blocks: 2, channels: 16, kernel_size: 5, fc_hidden: [32], dropout: 0.0}
    identify: {max_epochs: 150, parameters: [max_isometric_force_n, optimal_fiber_length_m, ...],
               tendon_iterations: 3, tendon_relaxation: 0.5}
    protocol: {name: leave_one_trial_out, n_val_trials: 0}

Writes per fold ``<out>/<fold>/``: identified_parameters.json (usable as physics.muscle_parameters),
identification.csv (generic vs identified), history.csv, model.pt, identify.json, and test_forces.npz
(network and ODE forces on the test samples). See :mod:`pimsk.learn.identify`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "identify muscle parameters (ODE loss) while training a label-free PI-CNN; identified parameters + model"

_KEYS = ("coordinates", "muscles", "physics", "mvc", "network", "identify", "protocol")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="dataset .npz (`pimsk dataset`)")
    parser.add_argument("--config", type=Path, required=True, help="identify config (YAML)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--fold", nargs="+", help="only these folds (test group or split name)")
    parser.add_argument("--mvc-envelopes", type=Path, help="override mvc.envelopes (MVC trial envelopes .sto)")
    parser.add_argument("--max-epochs", type=int, help="override identify.max_epochs")
    parser.add_argument("--supervised", action="store_true", help="force outputs get a data loss too (comparison)")
    parser.add_argument("--no-identify", action="store_true", help="keep the generic parameters fixed (comparison)")


def load_identify_config(path: Path) -> dict:
    """The config mapping (unknown keys raise ConfigError naming the file); ``_base_dir`` = its folder."""
    from pimsk.config import load_mapping
    from pimsk.errors import ConfigError

    data = load_mapping(path, "identify config")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"unknown keys {unknown}", file=path, field=unknown[0], hint=f"known: {list(_KEYS)}")
    for key in ("coordinates", "muscles"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ConfigError(f"{key} must be a non-empty list", file=path, field=key)
    data["_base_dir"] = str(path.resolve().parent)
    return data


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from pimsk.commands.train import _setup_logging
    from pimsk.errors import ConfigError
    from pimsk.io.storage import read_storage
    from pimsk.learn.dataset_file import load_samples
    from pimsk.learn.identify import activation_noise_ratio, excitation_level, identify_and_train, \
        mvc_excitation_gain, predict_forces, save_result
    from pimsk.learn.train import _folder_name, assets_from_config, make_splits

    raw = load_identify_config(args.config)
    base = Path(raw["_base_dir"])
    settings = dict(raw.get("identify") or {})
    if args.max_epochs:
        settings["max_epochs"] = args.max_epochs
    if args.supervised:
        settings["label_free"] = False
    if args.no_identify:
        settings["identify"] = False
    samples = load_samples(args.dataset)
    assets = assets_from_config(raw)
    if assets is None:
        raise ConfigError("physics.surrogate and physics.muscle_parameters are needed", file=args.config,
                          field="physics")
    muscles = [str(m) for m in raw["muscles"]]
    gain = None
    mvc_env = None
    mvc = dict(raw.get("mvc") or {})
    mvc_path = args.mvc_envelopes or (None if mvc.get("envelopes") is None else base / mvc["envelopes"])
    if mvc_path is not None:
        table = read_storage(mvc_path)
        missing = [m for m in muscles if m not in table.labels]
        if missing:
            raise ConfigError(f"no MVC envelope for {missing}", file=mvc_path, field="labels")
        env = table.data[:, [table.labels.index(m) for m in muscles]]
        window = mvc.get("window_s")
        g = mvc_excitation_gain(env, table.time_s, window)
        gain = dict(zip(muscles, g.tolist()))
        mvc_env = (env, table.time_s, g, window)
    handler = _setup_logging(args.out, "identify")
    protocol = dict(raw.get("protocol") or {"name": "leave_one_trial_out", "n_val_trials": 0})
    done = 0
    try:
        for split in make_splits(samples, protocol, seed=int(settings.get("seed", 0))):
            if args.fold and split.name not in args.fold and split.test_group not in args.fold:
                continue
            kappa = None
            if mvc_env is not None:  # activation noise at the RMS excitation of this fold's training EMG
                env, time_s, g, window = mvc_env
                level = None  # excitation 1 unless every muscle has an EMG channel of its name
                if all(m in samples.emg_labels for m in muscles):
                    emg_idx = [samples.emg_labels.index(m) for m in muscles]
                    level = excitation_level(samples.emg[split.train][..., emg_idx], g)
                k = activation_noise_ratio(env, time_s, g, assets.params.select(muscles), window, level=level)
                kappa = dict(zip(muscles, k.tolist()))
            result = identify_and_train(samples, split, assets, [str(c) for c in raw["coordinates"]], muscles,
                                        raw.get("network"), settings, gain, kappa)
            folder = save_result(result, args.out / _folder_name(split.name),
                                 {"fold": split.name, "test_group": split.test_group,
                                  "train_trials": sorted(set(samples.trial[split.train].tolist()))})
            if len(split.test):
                forces = predict_forces(result, samples, split.test)
                np.savez(folder / "test_forces.npz", index=split.test, muscles=np.array(muscles), **forces)
            print(f"fold {split.name}: {result.best_epoch} epochs ({result.seconds:.1f} s) -> "
                  f"{folder / 'identification.csv'}")
            done += 1
    finally:
        logging.getLogger("pimsk.learn").removeHandler(handler)
        handler.close()
    if not done:
        raise ConfigError(f"no fold named {args.fold}", field="--fold")
    return 0
