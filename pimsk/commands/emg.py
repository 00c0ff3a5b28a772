"""`pimsk emg`: raw EMG .sto files of one subject -> normalised envelopes + the reference used.

Every raw trial goes through band-pass -> rectification -> low-pass (:mod:`pimsk.core.emg`). The per-channel
reference is the peak envelope of ``--mvc`` when given, else the peak over ALL the trials given here (so give
every trial of the subject in one call), else the one read from ``--reference-in``. Each trial is written as
``<trial>_envelopes.sto`` (dimensionless, 1 = reference), shifted by ``--delay-s`` and, with ``--times-from``,
interpolated onto the kinematics' times (one file per trial, in the same order).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from pimsk.core.emg import (EMGError, EMGWarning, EnvelopeSettings, apply_delay, effective_band_hz, envelope,
                            normalise, reference_from_envelopes, resample_envelope, sampling_rate_hz)
from pimsk.errors import ConfigError
from pimsk.io.containers import Table
from pimsk.io.storage import read_storage, write_storage

HELP = "raw EMG .sto -> normalised envelopes (band-pass, rectify, low-pass, reference, delay, kinematics times)"
REFERENCE_FILE = "emg_reference.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("raw", type=Path, nargs="+", help="raw EMG .sto files (one per trial, same channels)")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for <trial>_envelopes.sto (created)")
    parser.add_argument("--trial-names", nargs="+", help="output trial names (default: the files' stems)")
    parser.add_argument("--mvc", type=Path, help="raw EMG .sto of an MVC trial: its peak envelope is the reference")
    parser.add_argument("--reference-in", type=Path, help="reference JSON written earlier (same channels)")
    parser.add_argument("--reference-out", type=Path,
                        help=f"where to write the reference JSON (default: OUT_DIR/{REFERENCE_FILE})")
    parser.add_argument("--channels", help="comma-separated channels to process (default: all)")
    parser.add_argument("--band-hz", type=float, nargs=2, default=(20.0, 450.0), metavar=("LOW", "HIGH"),
                        help="band-pass edges in Hz (upper edge lowered to 0.8 x Nyquist when needed)")
    parser.add_argument("--lowpass-hz", type=float, default=6.0, help="envelope low-pass cut-off (Hz)")
    parser.add_argument("--order-band", type=int, default=4, help="Butterworth order N of the band-pass")
    parser.add_argument("--order-low", type=int, default=4, help="Butterworth order N of the low-pass")
    parser.add_argument("--times-from", type=Path, nargs="+",
                        help="kinematics .mot/.sto per trial (same order): envelopes are written at its times")
    parser.add_argument("--delay-s", type=float, default=0.0, help="electromechanical delay (s), >= 0")
    parser.add_argument("--subject", help="subject id (for messages and the reference JSON)")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _select(table: Table, channels: list[str], path: Path, subject: str | None) -> Table:
    if not channels:
        return table
    missing = [c for c in channels if c not in table.labels]
    if missing:
        raise ConfigError(f"channels {missing} not in the file", subject=subject, file=path, field="--channels",
                          hint=f"it has: {', '.join(table.labels)}")
    cols = [table.labels.index(c) for c in channels]
    return Table(table.time_s, table.data[:, cols], list(channels), name=table.name, meta=dict(table.meta))


def _trial_names(paths: list[Path], given: list[str] | None) -> list[str]:
    if given is not None:
        if len(given) != len(paths):
            raise ConfigError(f"{len(given)} trial names for {len(paths)} files", field="--trial-names")
        names = list(given)
    else:
        names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise ConfigError(f"trial names are not unique: {names}", field="--trial-names",
                          hint="name the trials with --trial-names")
    return names


def _header_rate(table: Table, rate_from_time: float) -> float:
    """The header's DataRate when it agrees with the time column to 0.1 % (exact, e.g. 1020), else the latter."""
    try:
        header = float(table.meta.get("DataRate", "nan"))
    except ValueError:
        return rate_from_time
    return header if abs(header - rate_from_time) <= 1e-3 * rate_from_time else rate_from_time


def _envelope_of(table: Table, path: Path, settings: EnvelopeSettings, subject: str | None,
                 trial: str | None, notes: set[str]) -> tuple[np.ndarray, float]:
    """Envelope and rate of one raw table; EMGWarnings (band edge lowered) are added to ``notes``."""
    where = {"subject": subject, "trial": trial, "file": str(path)}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EMGWarning)
            rate = _header_rate(table, sampling_rate_hz(table.time_s, where=where))
            env = envelope(table.data, rate, settings, labels=table.labels, where=where)
    except EMGError as exc:
        raise exc.located(**where) from None
    notes.update(str(w.message) for w in caught if issubclass(w.category, EMGWarning))
    return env, rate


def run(args: argparse.Namespace) -> int:
    settings = EnvelopeSettings(tuple(args.band_hz), args.lowpass_hz, args.order_band, args.order_low)
    if args.mvc is not None and args.reference_in is not None:
        raise ConfigError("give --mvc or --reference-in, not both", field="--mvc")
    trials = _trial_names(list(args.raw), args.trial_names)
    times_from = list(args.times_from or [])
    if times_from and len(times_from) != len(args.raw):
        raise ConfigError(f"{len(times_from)} --times-from files for {len(args.raw)} EMG files",
                          field="--times-from", hint="give one kinematics file per trial, in the same order")
    channels = _names(args.channels)

    raws: list[Table] = []
    envs: list[np.ndarray] = []
    rates: list[float] = []
    adapted: set[str] = set()
    for path, trial in zip(args.raw, trials):
        table = _select(read_storage(path), channels, path, args.subject)
        if raws and table.labels != raws[0].labels:
            raise ConfigError(f"channels differ from {args.raw[0].name}: {table.labels} vs {raws[0].labels}",
                              subject=args.subject, trial=trial, file=path, field="labels",
                              hint="select common channels with --channels")
        env, rate = _envelope_of(table, path, settings, args.subject, trial, adapted)
        raws.append(table)
        envs.append(env)
        rates.append(rate)
    labels = list(raws[0].labels)

    if args.mvc is not None:
        mvc = _select(read_storage(args.mvc), labels, args.mvc, args.subject)
        mvc_env, _ = _envelope_of(mvc, args.mvc, settings, args.subject, "mvc", adapted)
        reference = reference_from_envelopes([mvc_env], labels, where={"subject": args.subject, "file": str(args.mvc)})
        method, source = "mvc_peak", [str(args.mvc)]
    elif args.reference_in is not None:
        reference = read_reference(args.reference_in, labels)
        method, source = "reference_in", [str(args.reference_in)]
    else:
        reference = reference_from_envelopes(envs, labels, where={"subject": args.subject})
        method, source = "peak_over_trials", [str(p) for p in args.raw]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for k, (path, trial, table, env, rate) in enumerate(zip(args.raw, trials, raws, envs, rates)):
        where = {"subject": args.subject, "trial": trial, "file": str(path)}
        try:
            norm = apply_delay(normalise(env, reference), rate, args.delay_s)
            time_s, out_rate = table.time_s, rate
            if times_from:
                kin = read_storage(times_from[k])
                norm = resample_envelope(table.time_s, norm, kin.time_s)
                time_s = kin.time_s
                out_rate = 1.0 / float(np.median(np.diff(time_s))) if time_s.size > 1 else rate
        except EMGError as exc:
            raise exc.located(**where) from None
        out = args.out_dir / f"{trial}_envelopes.sto"
        write_storage(out, Table(time_s, norm, labels, name=f"{trial}_envelopes"),
                      extra_header={"DataRate": f"{out_rate:g}", "units": "normalised",
                                    "reference": method, "source": path.name})
        print(f"wrote {out}: {len(labels)} channels x {len(time_s)} samples at {out_rate:g} Hz, "
              f"peak {float(norm.max()):.3f}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EMGWarning)
        bands = [list(effective_band_hz(settings.band_hz, r, settings.max_edge_fraction)) for r in rates]
    ref_path = args.reference_out or args.out_dir / REFERENCE_FILE
    doc = {
        "subject": args.subject, "method": method, "source": source, "units": raws[0].meta.get("units", "as raw"),
        "labels": labels, "reference": {name: float(v) for name, v in zip(labels, reference)},
        "band_hz_requested": list(settings.band_hz), "band_hz_used": bands, "lowpass_hz": settings.lowpass_hz,
        "order_band": settings.order_band, "order_low": settings.order_low, "rate_hz": rates,
        "delay_s": args.delay_s, "trials": trials, "warnings": sorted(adapted),
    }
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    ref_path.write_text(json.dumps(doc, indent=1))
    for message in sorted(adapted):
        print(f"note: {message}")
    print(f"wrote {ref_path}: reference = {method}")
    return 0


def read_reference(path: Path, labels: list[str]) -> np.ndarray:
    """(n_channels,) reference values for ``labels`` from a JSON written by ``pimsk emg``."""
    try:
        doc = json.loads(Path(path).read_text())
        ref = doc["reference"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the EMG reference: {exc}", file=path, field="reference") from None
    missing = [n for n in labels if n not in ref]
    if missing:
        raise ConfigError(f"no reference for channels {missing}", file=path, field="reference")
    values = np.array([float(ref[n]) for n in labels])
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ConfigError("reference values must be positive", file=path, field="reference")
    return values
