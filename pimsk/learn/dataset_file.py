"""A learning dataset on disk (``.npz``) and its construction from a spec (``pimsk dataset``).

The ``.npz`` holds one :class:`~pimsk.learn.datasets.SampleSet`: ``emg`` (n, T, n_emg), ``targets``
(n, T, n_targets, SI), ``dt_s``, ``trial``, ``start_s``, ``end_s`` (n,), the labels, the sample kind and the trials'
attributes (JSON); it is read without pickle.

A spec (YAML or JSON mapping) names, per trial, the envelopes ``.sto`` (``pimsk emg``) and one file per target
*role*, and how to cut samples::

    targets:                       # role -> columns taken from that role's file in every trial
      coordinates: [knee_angle_r]  # .mot in degrees is converted to rad
      forces: [vas_int_r, rect_fem_r]
    emg_columns: [VM, RF]          # optional (default: every envelope channel)
    rate_hz: 100                   # optional common rate (default: the first target file's)
    lowpass_hz: {coordinates: 10}  # optional: role -> zero-phase 4th-order Butterworth cut-off (Hz), applied to
                                   # the whole trial before it is cut (as ID filters IK: the physics differentiates)
    samples: {kind: window, length: 100, stride: 20}
    # or {kind: cycle, n_frames: 100, strikes: grf, grf_column: ground_force_r_vy, threshold_n: 20}
    # or {kind: cycle, n_frames: 100, strikes: events, side: r}
    trials:
      - name: walk1
        emg: walk1/envelopes.sto
        coordinates: walk1/ik/coordinates.mot
        forces: walk1/so/forces.sto
        grf: walk1/grf.mot          # (or events: walk1/events.json) for cycles
        attributes: {speed: 1.2}
        time_range_s: [0.5, 4.0]    # optional

Relative paths are relative to ``base_dir`` (the spec file's folder by default).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError, FileFormatError
from pimsk.io.containers import Table
from pimsk.learn.datasets import (SampleSet, build_trial, concat, cycle_bounds, gait_cycles, heel_strikes_from_events,
                                  heel_strikes_from_grf, sliding_windows)

__all__ = ["save_samples", "load_samples", "build_dataset", "load_spec"]

FORMAT = "pimsk.samples"
_KEYS = ("emg", "targets", "dt_s", "trial", "start_s", "end_s", "emg_labels", "target_labels", "kind",
         "attributes_json", "format")
_TRIAL_KEYS = {"name", "emg", "grf", "events", "attributes", "time_range_s"}


def save_samples(samples: SampleSet, path: str | Path) -> Path:
    """Write ``samples`` to ``path`` (.npz, compressed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, emg=np.asarray(samples.emg, dtype=float), targets=np.asarray(samples.targets, dtype=float),
        dt_s=np.asarray(samples.dt_s, dtype=float), trial=np.asarray([str(t) for t in samples.trial], dtype=str),
        start_s=np.asarray(samples.start_s, dtype=float), end_s=np.asarray(samples.end_s, dtype=float),
        emg_labels=np.asarray(samples.emg_labels, dtype=str), target_labels=np.asarray(samples.target_labels, dtype=str),
        kind=np.asarray(samples.kind), attributes_json=np.asarray(json.dumps(samples.attributes, default=str)),
        format=np.asarray(FORMAT))
    return path


def load_samples(path: str | Path) -> SampleSet:
    """Read a dataset written by :func:`save_samples`; FileFormatError names the file and the missing field."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _KEYS if k not in data.files]
            if missing:
                raise FileFormatError(f"not a pimsk dataset: missing {missing}", file=path, field=missing[0],
                                      hint="build it with `pimsk dataset`")
            if str(data["format"]) != FORMAT:
                raise FileFormatError(f"format {str(data['format'])!r} is not {FORMAT!r}", file=path, field="format")
            return SampleSet(
                emg=data["emg"], targets=data["targets"], dt_s=data["dt_s"],
                trial=np.asarray(data["trial"].tolist(), dtype=object), start_s=data["start_s"], end_s=data["end_s"],
                emg_labels=[str(x) for x in data["emg_labels"]], target_labels=[str(x) for x in data["target_labels"]],
                kind=str(data["kind"]), attributes=json.loads(str(data["attributes_json"])))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read the dataset: {exc}", file=path) from None


def load_spec(path: str | Path) -> dict[str, Any]:
    """A spec mapping from YAML or JSON."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the dataset spec: {exc}", file=path) from None
    if not isinstance(data, Mapping):
        raise ConfigError("the dataset spec must be a mapping", file=path)
    return dict(data)


def _resolve(base: Path, value: Any, where: str, spec_file: Path | None) -> Path:
    if not isinstance(value, (str, Path)):
        raise ConfigError(f"{where} must be a file path", file=spec_file, field=where)
    p = Path(value)
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise ConfigError(f"file not found: {p}", file=spec_file, field=where)
    return p


def _role_cutoffs(value: Any, roles: Mapping[str, list[str]], spec_file: Path | None) -> dict[str, float]:
    """``lowpass_hz`` of a spec: role -> cut-off (Hz) > 0, roles among ``targets``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("lowpass_hz must map a target role to a cut-off in Hz", file=spec_file, field="lowpass_hz")
    out = {}
    for role, hz in value.items():
        if role not in roles:
            raise ConfigError(f"lowpass_hz names {role!r}, not a target role ({', '.join(roles)})", file=spec_file,
                              field=f"lowpass_hz.{role}")
        try:
            out[str(role)] = float(hz)
        except (TypeError, ValueError):
            out[str(role)] = float("nan")
        if not out[str(role)] > 0:
            raise ConfigError(f"lowpass_hz.{role} must be a cut-off > 0 Hz (got {hz!r})", file=spec_file,
                              field=f"lowpass_hz.{role}")
    return out


def _lowpassed(table: Table, cutoff_hz: float, spec_file: Path | None, field: str, trial: str) -> Table:
    """``table`` with every column zero-phase low-passed at ``cutoff_hz`` (4th-order Butterworth, its own rate)."""
    from pimsk.core.emg import EMGError, lowpass

    if table.n_frames < 16:
        raise ConfigError(f"{table.name}: {table.n_frames} frames are too few to low-pass", file=spec_file,
                          field=field, trial=trial)
    rate_hz = (table.n_frames - 1) / float(table.time_s[-1] - table.time_s[0])
    try:
        data = lowpass(table.data, rate_hz, cutoff_hz)
    except EMGError as exc:
        raise ConfigError(str(exc), file=spec_file, field=field, trial=trial) from None
    return replace(table, data=data)


def build_dataset(spec: Mapping[str, Any], base_dir: str | Path = ".", *, spec_file: str | Path | None = None
                  ) -> SampleSet:
    """Samples of every trial of ``spec`` (see the module docstring), joined into one SampleSet."""
    from pimsk.io.storage import read_storage

    base = Path(base_dir)
    sf = Path(spec_file) if spec_file is not None else None
    targets = spec.get("targets")
    if not isinstance(targets, Mapping) or not targets:
        raise ConfigError("spec needs 'targets': role -> columns", file=sf, field="targets")
    roles = {str(role): [str(c) for c in cols] for role, cols in targets.items()}
    for role in roles:
        if role in _TRIAL_KEYS:
            raise ConfigError(f"target role {role!r} clashes with a trial key", file=sf, field=f"targets.{role}")
    sample_spec = dict(spec.get("samples") or {})
    kind = sample_spec.get("kind", "window")
    trials = spec.get("trials")
    if not isinstance(trials, list) or not trials:
        raise ConfigError("spec needs a non-empty 'trials' list", file=sf, field="trials")
    emg_columns = spec.get("emg_columns")
    rate = spec.get("rate_hz")
    cutoffs = _role_cutoffs(spec.get("lowpass_hz"), roles, sf)
    sets = []
    for k, trial in enumerate(trials):
        where = f"trials[{k}]"
        if not isinstance(trial, Mapping) or "name" not in trial or "emg" not in trial:
            raise ConfigError("each trial needs 'name' and 'emg'", file=sf, field=where)
        name = str(trial["name"])
        emg = read_storage(_resolve(base, trial["emg"], f"{where}.emg", sf))
        tables = []
        for role, cols in roles.items():
            if role not in trial:
                raise ConfigError(f"trial {name} has no {role!r} file", file=sf, field=f"{where}.{role}", trial=name)
            table = read_storage(_resolve(base, trial[role], f"{where}.{role}", sf))
            if role in cutoffs:
                table = _lowpassed(table, cutoffs[role], sf, f"lowpass_hz.{role}", name)
            tables.append((table, cols))
        tr = build_trial(name, emg, tables, emg_labels=emg_columns, rate_hz=rate,
                         time_range_s=trial.get("time_range_s"), attributes=trial.get("attributes"))
        if kind == "window":
            try:
                length, stride = int(sample_spec["length"]), int(sample_spec.get("stride", sample_spec["length"]))
            except (KeyError, TypeError, ValueError):
                raise ConfigError("window samples need integer 'length' (and 'stride')", file=sf,
                                  field="samples.length") from None
            sets.append(sliding_windows(tr, length, stride))
        elif kind == "cycle":
            strikes_from = sample_spec.get("strikes", "grf")
            if strikes_from == "grf":
                grf = read_storage(_resolve(base, trial.get("grf"), f"{where}.grf", sf))
                column = sample_spec.get("grf_column")
                if not column:
                    raise ConfigError("cycles from the GRF need samples.grf_column", file=sf, field="samples.grf_column")
                strikes = heel_strikes_from_grf(grf, str(column), threshold_n=float(sample_spec.get("threshold_n", 20.0)))
            elif strikes_from == "events":
                strikes = heel_strikes_from_events(_resolve(base, trial.get("events"), f"{where}.events", sf),
                                                   side=str(sample_spec.get("side", "r")))
            else:
                raise ConfigError(f"samples.strikes {strikes_from!r}: use 'grf' or 'events'", file=sf,
                                  field="samples.strikes")
            bounds = cycle_bounds(strikes, min_cycle_s=float(sample_spec.get("min_cycle_s", 0.4)),
                                  max_cycle_s=float(sample_spec.get("max_cycle_s", 2.5)))
            sets.append(gait_cycles(tr, bounds, n_frames=int(sample_spec.get("n_frames", 100))))
        else:
            raise ConfigError(f"samples.kind {kind!r}: use 'window' or 'cycle'", file=sf, field="samples.kind")
    out = concat(sets)
    if len(out) == 0:
        raise ConfigError("the spec gives no samples", file=sf, field="samples",
                          hint="shorter windows, or check the heel strikes")
    return out
