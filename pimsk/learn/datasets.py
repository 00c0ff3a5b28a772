"""Learning samples: EMG envelopes in, joint angles and muscle forces out; gait cycles, windows and splits.

A :class:`Trial` puts a trial's normalised EMG envelopes (``pimsk emg``) and its targets (IK angles, CMC/SO
forces or any Table, columns chosen by name) on one uniform time base. From trials come samples
(:class:`SampleSet`, arrays ``(batch, time, channel)``):

* gait cycles: heel strike to the next heel strike of the same foot (from a vertical GRF threshold,
  :func:`heel_strikes_from_force`, or the C3D events written by ``pimsk c3d`` as ``events.json``,
  :func:`heel_strikes_from_events`), time-normalised by linear interpolation to ``n_frames`` (100) frames
  spanning 0-100 % of the cycle, both ends included (Winter, Biomechanics and Motor Control of Human Movement);
* sliding windows (``length`` frames, ``stride`` frames) for continuous tasks.

Each sample carries its time step ``dt_s`` (the network's input besides the EMG: time derivatives of predicted
kinematics in the physics loss need it), its trial, and its start/end times. Splits (:class:`Split`, index arrays
into a SampleSet) never put one trial's frames on both sides: within-trial (chronological; samples straddling a
boundary are dropped), leave-one-trial-out and leave-one-group-out (e.g. cross-speed, by a trial attribute).
Anything random (validation trials, batch order) is a function of ``seed`` alone.

Units: SI (rad, N, s); the EMG envelopes are dimensionless. Tables read in degrees are converted to radians
except translational coordinates (names ending ``_tx``, ``_ty``, ``_tz``, the OpenSim naming).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError, FileFormatError
from pimsk.io.containers import Table

#: Event labels read as a heel strike (lower case; C3D/Vicon "Foot Strike", others).
STRIKE_LABELS = ("foot strike", "heel strike", "initial contact", "foot contact", "heelstrike", "hs", "ic")
_TRANSLATION = re.compile(r"_t[xyz]$")


class DatasetWarning(UserWarning):
    """A sample or a cycle was skipped (named in the message)."""


# --------------------------------------------------------------------------------------------- tables
def table_in_si(table: Table) -> Table:
    """Copy of ``table`` with rotational columns in radians when it is in degrees (``_tx/_ty/_tz`` kept)."""
    if not table.in_degrees:
        return table
    data = table.data.copy()
    for k, label in enumerate(table.labels):
        if not _TRANSLATION.search(label):
            data[:, k] = np.deg2rad(data[:, k])
    return Table(table.time_s.copy(), data, list(table.labels), name=table.name, in_degrees=False,
                 meta=dict(table.meta))


def select_columns(table: Table, names: Sequence[str], *, file: str | Path | None = None,
                   trial: str | None = None) -> np.ndarray:
    """(n_frames, len(names)) columns of ``table`` by name; ConfigError lists what is missing and available."""
    missing = [n for n in names if n not in table.labels]
    if missing:
        shown = ", ".join(table.labels[:40]) + (" ..." if len(table.labels) > 40 else "")
        raise ConfigError(f"columns {missing} not in {table.name}", trial=trial, file=file or table.name,
                          field=",".join(missing), hint=f"available: {shown}")
    if not names:
        raise ConfigError("no columns chosen", trial=trial, file=file or table.name, field="columns")
    return np.column_stack([table.column(n) for n in names])


def _rate_of(time_s: np.ndarray) -> float:
    dt = np.diff(np.asarray(time_s, dtype=float))
    if dt.size == 0 or np.median(dt) <= 0:
        raise ConfigError("a table has fewer than 2 increasing time samples", field="time")
    return 1.0 / float(np.median(dt))


def _interp_columns(time_s: np.ndarray, values: np.ndarray, new_time_s: np.ndarray) -> np.ndarray:
    return np.column_stack([np.interp(new_time_s, time_s, values[:, k]) for k in range(values.shape[1])])


# --------------------------------------------------------------------------------------------- trials
@dataclass
class Trial:
    """One trial on a uniform time base.

    time_s: (n_frames,) s; emg: (n_frames, n_emg) normalised envelopes; targets: (n_frames, n_targets) SI
    (rad for angles, N for forces); attributes: trial properties used for grouping (e.g. ``speed``).
    """

    name: str
    time_s: np.ndarray
    emg: np.ndarray
    targets: np.ndarray
    emg_labels: list[str]
    target_labels: list[str]
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def rate_hz(self) -> float:
        return _rate_of(self.time_s)


def build_trial(name: str, emg: Table, targets: Sequence[tuple[Table, Sequence[str]]], *,
                emg_labels: Sequence[str] | None = None, rate_hz: float | None = None,
                time_range_s: tuple[float, float] | None = None,
                attributes: Mapping[str, Any] | None = None) -> Trial:
    """Put EMG envelopes and target columns on one uniform time base.

    targets: (table, column names) pairs, e.g. ``[(coordinates, ["knee_angle_r"]), (forces, ["vas_lat_r"])]``;
    tables in degrees are converted (:func:`table_in_si`). The time base spans the overlap of every table
    (and ``time_range_s``) at ``rate_hz`` (default: the first target table's rate); values are linearly
    interpolated onto it. Raises ConfigError when columns are missing, labels repeat or nothing overlaps.
    """
    emg_names = list(emg_labels) if emg_labels is not None else list(emg.labels)
    emg_values = select_columns(emg, emg_names, trial=name)
    parts = [(table_in_si(t), list(cols)) for t, cols in targets]
    if not parts:
        raise ConfigError("no target tables given", trial=name, field="targets")
    target_names = [c for _, cols in parts for c in cols]
    if len(set(target_names)) != len(target_names):
        raise ConfigError(f"target columns repeat: {target_names}", trial=name, field="targets")
    tables = [emg] + [t for t, _ in parts]
    t0 = max(float(t.time_s[0]) for t in tables)
    t1 = min(float(t.time_s[-1]) for t in tables)
    if time_range_s is not None:
        t0, t1 = max(t0, float(time_range_s[0])), min(t1, float(time_range_s[1]))
    if not t1 > t0:
        raise ConfigError(f"the EMG and target tables share no time ({t0:.3f} >= {t1:.3f} s)", trial=name,
                          field="time", hint="check --times-from and the labels' time range")
    rate = float(rate_hz) if rate_hz is not None else _rate_of(parts[0][0].time_s)
    n = int(np.floor((t1 - t0) * rate + 1e-9)) + 1
    time_s = t0 + np.arange(n) / rate
    cols = [_interp_columns(t.time_s, select_columns(t, c, trial=name), time_s) for t, c in parts]
    return Trial(name, time_s, _interp_columns(emg.time_s, emg_values, time_s), np.hstack(cols), emg_names,
                 target_names, dict(attributes or {}))


# ---------------------------------------------------------------------------------------- heel strikes
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) inclusive index ranges of True runs."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def heel_strikes_from_force(time_s: np.ndarray, force_n: np.ndarray, *, threshold_n: float = 20.0,
                            min_stance_s: float = 0.1, min_swing_s: float = 0.1) -> np.ndarray:
    """Times (s) at which the vertical force rises through ``threshold_n``: heel strikes on one plate/foot.

    time_s, force_n: (n,) samples of the vertical ground reaction force (N, positive up). Unloaded gaps
    shorter than ``min_swing_s`` are bridged (noise around the threshold), then contacts shorter than
    ``min_stance_s`` are dropped. A contact already loaded at the first sample has no observed onset and gives
    no strike. The crossing time is linearly interpolated between the two samples around it.
    """
    t = np.asarray(time_s, dtype=float).reshape(-1)
    f = np.asarray(force_n, dtype=float).reshape(-1)
    if t.shape != f.shape or t.size < 2:
        raise ConfigError(f"time ({t.size}) and force ({f.size}) must have the same length >= 2", field="force")
    loaded = np.nan_to_num(f, nan=-np.inf) > threshold_n
    runs = _runs(loaded)
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and t[start] - t[merged[-1][1]] < min_swing_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    strikes = []
    for start, end in merged:
        if start == 0 or t[end] - t[start] < min_stance_s:
            continue
        f0, f1 = f[start - 1], f[start]
        frac = (threshold_n - f0) / (f1 - f0) if np.isfinite(f0) and f1 != f0 else 1.0
        strikes.append(t[start - 1] + float(np.clip(frac, 0.0, 1.0)) * (t[start] - t[start - 1]))
    return np.asarray(strikes, dtype=float)


def heel_strikes_from_grf(table: Table, column: str, **kwargs: float) -> np.ndarray:
    """:func:`heel_strikes_from_force` on one column of a GRF table, e.g. ``ground_force_r_vy`` of grf.mot."""
    return heel_strikes_from_force(table.time_s, select_columns(table, [column])[:, 0], **kwargs)


def heel_strikes_from_events(events: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]],
                             side: str = "r", labels: Iterable[str] = STRIKE_LABELS) -> np.ndarray:
    """Sorted heel-strike times (s) of one side from ``events.json`` (``pimsk c3d``) or its ``events`` list.

    Each event is ``{"label", "context", "side" ('r'/'l'/None), "time_s", ...}``; an event counts when its
    label (case-insensitive) is one of ``labels`` and its side (or its context's first letter) is ``side``.
    """
    path = None
    if isinstance(events, (str, Path)):
        path = Path(events)
        try:
            events = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"cannot read the events: {exc}", file=path) from None
    items = events.get("events", []) if isinstance(events, Mapping) else events
    wanted = {label.lower() for label in labels}
    side = side.lower()[:1]
    out = []
    for e in items:
        try:
            label = str(e.get("label", "")).strip().lower()
            e_side = (e.get("side") or str(e.get("context", "")).strip()[:1] or "").lower()
            if label in wanted and e_side == side:
                out.append(float(e["time_s"]))
        except (AttributeError, KeyError, TypeError, ValueError):
            raise FileFormatError(f"malformed event {e!r}", file=path, field="events") from None
    return np.unique(np.asarray(out, dtype=float))


def cycle_bounds(strikes_s: Sequence[float], *, min_cycle_s: float = 0.4,
                 max_cycle_s: float = 2.5) -> list[tuple[float, float]]:
    """(start, end) of each gait cycle: consecutive heel strikes of one foot, durations kept within
    [min_cycle_s, max_cycle_s] (a longer interval means a missed strike; it is skipped with a DatasetWarning)."""
    s = np.sort(np.asarray(strikes_s, dtype=float))
    out = []
    for a, b in zip(s[:-1], s[1:]):
        if min_cycle_s <= b - a <= max_cycle_s:
            out.append((float(a), float(b)))
        else:
            warnings.warn(f"strikes {a:.3f} and {b:.3f} s are {b - a:.3f} s apart: not one gait cycle, skipped",
                          DatasetWarning, stacklevel=2)
    return out


# -------------------------------------------------------------------------------------------- samples
@dataclass
class SampleSet:
    """Samples ``(batch, time, channel)``.

    emg: (n, T, n_emg); targets: (n, T, n_targets) SI; dt_s: (n,) time step of each sample (s);
    trial: (n,) trial names; start_s / end_s: (n,) time span in the trial; kind: 'cycle' or 'window';
    attributes: trial name -> its attributes.
    """

    emg: np.ndarray
    targets: np.ndarray
    dt_s: np.ndarray
    trial: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    emg_labels: list[str]
    target_labels: list[str]
    kind: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.emg.shape[0])

    @property
    def trials(self) -> list[str]:
        """Trial names in order of first appearance."""
        return list(dict.fromkeys(self.trial.tolist()))

    def subset(self, indices: np.ndarray) -> "SampleSet":
        idx = np.asarray(indices, dtype=int)
        return SampleSet(self.emg[idx], self.targets[idx], self.dt_s[idx], self.trial[idx], self.start_s[idx],
                         self.end_s[idx], list(self.emg_labels), list(self.target_labels), self.kind,
                         {k: dict(v) for k, v in self.attributes.items()})

    def attribute(self, name: str) -> np.ndarray:
        """(n,) value of a trial attribute for every sample; ConfigError names a trial lacking it."""
        out = []
        for trial in self.trial.tolist():
            attrs = self.attributes.get(trial, {})
            if name not in attrs:
                raise ConfigError(f"trial has no attribute {name!r}", trial=trial, field=name,
                                  hint="set it in the trial's attributes (e.g. speed for cross-speed splits)")
            out.append(attrs[name])
        return np.asarray(out, dtype=object)


def _empty(trial: Trial, n_frames: int, kind: str) -> SampleSet:
    return SampleSet(np.zeros((0, n_frames, len(trial.emg_labels))), np.zeros((0, n_frames, len(trial.target_labels))),
                     np.zeros(0), np.zeros(0, dtype=object), np.zeros(0), np.zeros(0), list(trial.emg_labels),
                     list(trial.target_labels), kind, {trial.name: dict(trial.attributes)})


def time_normalise(time_s: np.ndarray, values: np.ndarray, start_s: float, end_s: float,
                   n_frames: int = 100) -> np.ndarray:
    """values (n, c) sampled at time_s -> (n_frames, c) at ``linspace(start_s, end_s, n_frames)`` (0-100 %)."""
    if n_frames < 2 or not end_s > start_s:
        raise ConfigError(f"cannot normalise {start_s}-{end_s} s to {n_frames} frames", field="n_frames")
    grid = np.linspace(start_s, end_s, n_frames)
    return _interp_columns(np.asarray(time_s, dtype=float), np.asarray(values, dtype=float).reshape(len(time_s), -1),
                           grid)


def gait_cycles(trial: Trial, bounds: Sequence[tuple[float, float]], *, n_frames: int = 100,
                strict: bool = False) -> SampleSet:
    """One sample per cycle ``(start_s, end_s)``, time-normalised to n_frames; dt_s = duration / (n_frames - 1).

    A cycle reaching outside the trial's time base is skipped with a DatasetWarning (ConfigError if strict).
    """
    t = trial.time_s
    emg, tgt, dt, start, end = [], [], [], [], []
    for a, b in bounds:
        if a < t[0] - 1e-9 or b > t[-1] + 1e-9 or not b > a:
            message = f"cycle {a:.3f}-{b:.3f} s is outside the trial's data ({t[0]:.3f}-{t[-1]:.3f} s)"
            if strict:
                raise ConfigError(message, trial=trial.name, field="cycles")
            warnings.warn(f"trial {trial.name}: {message}; skipped", DatasetWarning, stacklevel=2)
            continue
        emg.append(time_normalise(t, trial.emg, a, b, n_frames))
        tgt.append(time_normalise(t, trial.targets, a, b, n_frames))
        dt.append((b - a) / (n_frames - 1))
        start.append(a)
        end.append(b)
    if not emg:
        return _empty(trial, n_frames, "cycle")
    n = len(emg)
    return SampleSet(np.stack(emg), np.stack(tgt), np.asarray(dt), np.full(n, trial.name, dtype=object),
                     np.asarray(start), np.asarray(end), list(trial.emg_labels), list(trial.target_labels), "cycle",
                     {trial.name: dict(trial.attributes)})


def window_starts(n_frames: int, length: int, stride: int) -> np.ndarray:
    """First frame of every full window: ``0, stride, ...`` while ``start + length <= n_frames``
    (``1 + (n_frames - length) // stride`` windows, none if the trial is shorter than one window)."""
    if length < 1 or stride < 1:
        raise ConfigError(f"window length {length} and stride {stride} must be >= 1", field="window")
    if n_frames < length:
        return np.zeros(0, dtype=int)
    return np.arange(0, n_frames - length + 1, stride, dtype=int)


def sliding_windows(trial: Trial, length: int, stride: int) -> SampleSet:
    """Windows of ``length`` frames every ``stride`` frames on the trial's uniform time base."""
    starts = window_starts(trial.time_s.shape[0], length, stride)
    if starts.size == 0:
        warnings.warn(f"trial {trial.name}: {trial.time_s.shape[0]} frames, shorter than one window of {length}",
                      DatasetWarning, stacklevel=2)
        return _empty(trial, length, "window")
    idx = starts[:, None] + np.arange(length)[None, :]
    n = starts.size
    dt = 1.0 / trial.rate_hz
    return SampleSet(trial.emg[idx], trial.targets[idx], np.full(n, dt), np.full(n, trial.name, dtype=object),
                     trial.time_s[starts], trial.time_s[starts + length - 1], list(trial.emg_labels),
                     list(trial.target_labels), "window", {trial.name: dict(trial.attributes)})


def concat(sets: Sequence[SampleSet]) -> SampleSet:
    """One SampleSet from several (same labels, kind and sample length)."""
    if not sets:
        raise ConfigError("no samples to join", field="samples")
    first = sets[0]
    for s in sets[1:]:
        if (s.emg_labels != first.emg_labels or s.target_labels != first.target_labels or s.kind != first.kind
                or s.emg.shape[1] != first.emg.shape[1]):
            raise ConfigError("sample sets differ in labels, kind or length", field="samples",
                              hint=f"{first.kind} {first.emg_labels}+{first.target_labels} vs "
                                   f"{s.kind} {s.emg_labels}+{s.target_labels}")
    attrs: dict[str, dict[str, Any]] = {}
    for s in sets:
        for name, a in s.attributes.items():
            if name in attrs and attrs[name] != a:
                raise ConfigError("one trial name with two sets of attributes", trial=name, field="attributes")
            attrs[name] = dict(a)
    return SampleSet(np.concatenate([s.emg for s in sets]), np.concatenate([s.targets for s in sets]),
                     np.concatenate([s.dt_s for s in sets]), np.concatenate([s.trial for s in sets]),
                     np.concatenate([s.start_s for s in sets]), np.concatenate([s.end_s for s in sets]),
                     list(first.emg_labels), list(first.target_labels), first.kind, attrs)


# --------------------------------------------------------------------------------------------- splits
@dataclass
class Split:
    """Index arrays into one SampleSet; ``test_group`` names what is held out (a trial, a group, 'last part')."""

    name: str
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    test_group: str = ""


def within_trial_split(samples: SampleSet, train_fraction: float = 0.8, val_fraction: float = 0.0) -> Split:
    """Chronological split inside every trial: the first ``train_fraction`` of its time span trains, the
    last ``val_fraction`` of that part validates, the rest tests. Samples that straddle a boundary are dropped
    (overlapping windows would otherwise share frames across sets). ConfigError if train or test is empty."""
    if not 0 < train_fraction < 1 or not 0 <= val_fraction < 1:
        raise ConfigError(f"train_fraction {train_fraction} must be in (0, 1), val_fraction in [0, 1)",
                          field="train_fraction")
    train, val, test = [], [], []
    for trial in samples.trials:
        idx = np.flatnonzero(samples.trial == trial)
        t0, t1 = samples.start_s[idx].min(), samples.end_s[idx].max()
        cut = t0 + train_fraction * (t1 - t0)
        cut_val = t0 + train_fraction * (1 - val_fraction) * (t1 - t0)
        for i in idx:
            a, b = samples.start_s[i], samples.end_s[i]
            if b <= cut_val:
                train.append(i)
            elif a >= cut_val and b <= cut and val_fraction > 0:
                val.append(i)
            elif a >= cut:
                test.append(i)
    if not train or not test:
        raise ConfigError(f"within-trial split at {train_fraction:g} leaves {len(train)} train and {len(test)} test "
                          "samples", field="train_fraction",
                          hint="use shorter windows, more cycles per trial, or leave-one-trial-out")
    return Split(f"within_trial_{train_fraction:g}", np.asarray(train, dtype=int), np.asarray(test, dtype=int),
                 np.asarray(val, dtype=int), "last part of every trial")


def blocked_split(samples: SampleSet, fraction: float, blocks: int, val_fraction: float = 0.0) -> Split:
    """A share of ``fraction`` of every trial's time span spread as ``blocks`` equal blocks, block k at the start
    of the k-th of ``blocks`` equal segments of the trial; the last ``val_fraction`` of every block validates,
    the rest of the block trains; samples sharing no frame with any block test (samples straddling a block edge
    are dropped). ``blocks = 1`` is :func:`within_trial_split` (the first ``fraction`` of every trial).
    ConfigError if train or test is empty."""
    if int(blocks) < 1:
        raise ConfigError(f"blocks {blocks} must be >= 1", field="blocks")
    if int(blocks) == 1:
        return within_trial_split(samples, fraction, val_fraction)
    if not 0 < fraction < 1 or not 0 <= val_fraction < 1:
        raise ConfigError(f"fraction {fraction} must be in (0, 1), val_fraction in [0, 1)", field="fraction")
    train, val, test = [], [], []
    for trial in samples.trials:
        idx = np.flatnonzero(samples.trial == trial)
        t0, t1 = samples.start_s[idx].min(), samples.end_s[idx].max()
        seg = (t1 - t0) / blocks
        edges = [(t0 + k * seg, t0 + k * seg + fraction * seg) for k in range(int(blocks))]
        for i in idx:
            a, b = samples.start_s[i], samples.end_s[i]
            home = [(lo, hi) for lo, hi in edges if a >= lo and b <= hi]
            if home:
                lo, hi = home[0]
                (val if val_fraction > 0 and a >= hi - val_fraction * (hi - lo) else train).append(i)
            elif all(b < lo or a > hi for lo, hi in edges):
                test.append(i)
    if not train or not test:
        raise ConfigError(f"{blocks} blocks of {fraction:g} of every trial leave {len(train)} train and {len(test)} "
                          "test samples", field="fraction", hint="use shorter windows, fewer blocks or longer trials")
    return Split(f"blocked_{fraction:g}x{blocks}", np.asarray(train, dtype=int), np.asarray(test, dtype=int),
                 np.asarray(val, dtype=int), f"outside {blocks} blocks of every trial")


def _chronological_tail(samples: SampleSet, indices: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(head, tail) of ``indices``: in every trial the samples ending before the last ``fraction`` of its time
    span, and those starting after it; samples straddling the cut are dropped (no shared frames)."""
    head, tail = [], []
    for trial in dict.fromkeys(samples.trial[indices].tolist()):
        idx = indices[samples.trial[indices] == trial]
        t0, t1 = samples.start_s[idx].min(), samples.end_s[idx].max()
        cut = t1 - fraction * (t1 - t0)
        head += [i for i in idx if samples.end_s[i] <= cut]
        tail += [i for i in idx if samples.start_s[i] >= cut]
    return np.asarray(head, dtype=int), np.asarray(tail, dtype=int)


def head_of_each_trial(samples: SampleSet, indices: np.ndarray, fraction: float) -> np.ndarray:
    """The first ``ceil(fraction x n)`` (at least one) of the n ``indices`` of every trial, in time order: a
    smaller training set for the effect of the training-set size. Returns sorted indices."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"training fraction {fraction} must be in (0, 1]", field="train_fraction")
    idx = np.asarray(indices, dtype=int)
    keep = []
    for trial in dict.fromkeys(samples.trial[idx].tolist()):
        mine = idx[samples.trial[idx] == trial]
        mine = mine[np.argsort(samples.start_s[mine], kind="stable")]
        keep.append(mine[:max(1, math.ceil(fraction * len(mine) - 1e-9))])
    return np.sort(np.concatenate(keep)) if keep else idx


def _group_folds(samples: SampleSet, groups: np.ndarray, kind: str, n_val_trials: int, seed: int,
                 val_fraction: float = 0.0) -> list[Split]:
    values = list(dict.fromkeys(groups.tolist()))
    if len(values) < 2:
        raise ConfigError(f"{kind}: need at least 2 groups, found {values}", field=kind)
    if not 0.0 <= val_fraction < 1.0 or (val_fraction > 0 and n_val_trials > 0):
        raise ConfigError(f"{kind}: val_fraction {val_fraction} must be in [0, 1) and excludes n_val_trials",
                          field="val_fraction")
    folds = []
    for k, value in enumerate(values):
        test = np.flatnonzero(groups == value)
        rest = np.flatnonzero(groups != value)
        val = np.zeros(0, dtype=int)
        if val_fraction > 0:
            rest, val = _chronological_tail(samples, rest, val_fraction)
        if n_val_trials > 0:
            rest_trials = list(dict.fromkeys(samples.trial[rest].tolist()))
            if n_val_trials >= len(rest_trials):
                raise ConfigError(f"{kind}: {n_val_trials} validation trials leave none to train on "
                                  f"({len(rest_trials)} trials outside the test group {value!r})", field="n_val_trials")
            rng = np.random.default_rng([seed, k])
            chosen = {rest_trials[i] for i in rng.choice(len(rest_trials), n_val_trials, replace=False)}
            in_val = np.isin(samples.trial[rest], list(chosen))
            val, rest = rest[in_val], rest[~in_val]
        folds.append(Split(f"{kind}:{value}", rest, test, val, str(value)))
    return folds


def leave_one_trial_out(samples: SampleSet, *, n_val_trials: int = 0, seed: int = 0,
                        val_fraction: float = 0.0) -> list[Split]:
    """One fold per trial: test on it, train on the others; ``n_val_trials`` of those (picked from ``seed``
    and the fold number) validate instead, or (``val_fraction`` > 0) the last ``val_fraction`` of every training
    trial's time span validates (chronological, straddling samples dropped: for few, long trials). The test
    trial is never in the training or validation set."""
    return _group_folds(samples, samples.trial, "leave_one_trial_out", n_val_trials, seed, val_fraction)


def leave_one_group_out(samples: SampleSet, attribute: str, *, n_val_trials: int = 0, seed: int = 0) -> list[Split]:
    """One fold per value of a trial attribute (e.g. ``speed`` for cross-speed): test on that group's trials,
    train on the other groups' (validation trials as in :func:`leave_one_trial_out`)."""
    groups = np.asarray([str(v) for v in samples.attribute(attribute)], dtype=object)
    return _group_folds(samples, groups, f"leave_one_{attribute}_out", n_val_trials, seed)


def cross_speed(samples: SampleSet, attribute: str = "speed", *, n_val_trials: int = 0, seed: int = 0) -> list[Split]:
    """Cross-speed protocol: :func:`leave_one_group_out` on the trials' speed attribute."""
    return leave_one_group_out(samples, attribute, n_val_trials=n_val_trials, seed=seed)


# ------------------------------------------------------------------------------------- scaling, torch
@dataclass
class Standardiser:
    """Per-channel ``(x - mean) / std`` fitted on training samples only (never on the test fold).

    mean, std: (n_channels,) over every frame of the (batch, time, channel) array it was fitted on.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardiser":
        flat = np.asarray(x, dtype=float).reshape(-1, np.shape(x)[-1])
        std = flat.std(axis=0)
        return cls(flat.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=float) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=float) * self.std + self.mean


class TorchSamples:
    """Map-style dataset for ``torch.utils.data.DataLoader``: item i is a dict of tensors
    ``emg`` (T, n_emg), ``targets`` (T, n_targets), ``dt_s`` () and ``index`` () (position in the SampleSet);
    the loader's default collation stacks them to (batch, time, channel)."""

    def __init__(self, samples: SampleSet, indices: np.ndarray | None = None, dtype: str = "float32") -> None:
        import torch

        idx = np.arange(len(samples)) if indices is None else np.asarray(indices, dtype=int)
        tdtype = getattr(torch, dtype)
        self.index = torch.as_tensor(idx, dtype=torch.long)
        self.emg = torch.as_tensor(samples.emg[idx], dtype=tdtype)
        self.targets = torch.as_tensor(samples.targets[idx], dtype=tdtype)
        self.dt_s = torch.as_tensor(samples.dt_s[idx], dtype=tdtype)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"emg": self.emg[i], "targets": self.targets[i], "dt_s": self.dt_s[i], "index": self.index[i]}


def make_loader(samples: SampleSet, indices: np.ndarray, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                drop_last: bool = False, dtype: str = "float32"):  # -> torch.utils.data.DataLoader
    """DataLoader over ``samples[indices]`` whose batch order depends only on ``seed`` (and the epoch)."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(TorchSamples(samples, indices, dtype), batch_size=batch_size, shuffle=shuffle,
                      generator=generator, drop_last=drop_last, num_workers=0)
