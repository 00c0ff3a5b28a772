"""`pimsk dataset`: EMG envelopes + labels -> a learning dataset (.npz of gait cycles or windows).

    pimsk dataset --spec dataset.yaml --out data/samples.npz [--base-dir DIR]

The spec (YAML/JSON) lists per trial the envelopes .sto (`pimsk emg`) and one file per target role
(coordinates .mot, forces .sto, moments .sto, ...), the columns of each role, and how to cut samples (windows
of ``length``/``stride`` frames, or gait cycles between heel strikes from the GRF or C3D events); see
:mod:`pimsk.learn.dataset_file`. Relative paths are relative to ``--base-dir`` (default: the spec's folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "EMG envelopes + coordinate/force .sto files -> dataset .npz (gait cycles or sliding windows)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", type=Path, required=True, help="dataset spec (YAML or JSON)")
    parser.add_argument("--out", type=Path, required=True, help="dataset .npz to write")
    parser.add_argument("--base-dir", type=Path, default=None, help="folder for relative paths (default: the spec's)")


def run(args: argparse.Namespace) -> int:
    from pimsk.learn.dataset_file import build_dataset, load_spec, save_samples

    spec = load_spec(args.spec)
    samples = build_dataset(spec, args.base_dir or args.spec.resolve().parent, spec_file=args.spec)
    save_samples(samples, args.out)
    n, t = samples.emg.shape[:2]
    print(f"wrote {args.out}: {n} {samples.kind}s x {t} frames from {len(samples.trials)} trials; "
          f"EMG {samples.emg_labels}; targets {samples.target_labels}")
    return 0
