"""Surface EMG -> normalised linear envelope (numpy/scipy only).

The chain is the classic one used to drive EMG-informed musculoskeletal models (Lloyd & Besier 2003,
J Biomech 36:765; Buchanan et al. 2004, J Appl Biomech 20:367), with filter settings in the ranges of the
ISEK / SENIAM recommendations (Merletti & Di Torino 1999, J Electromyogr Kinesiol 9:III; Hermens et al. 2000,
J Electromyogr Kinesiol 10:361):

1. band-pass 20-450 Hz (zero-phase Butterworth) to remove movement artefact and DC offset below and noise
   above the surface-EMG spectrum; the upper edge is lowered when the sampling rate cannot carry it
   (:func:`effective_band_hz`);
2. full-wave rectification;
3. low-pass 6 Hz (zero-phase Butterworth): the linear envelope;
4. normalisation by a per-channel reference: the peak envelope of an MVC trial if there is one, otherwise the
   peak over ALL of the subject's trials (:func:`reference_from_envelopes`), never per trial, so that relative
   amplitudes between trials survive;
5. optional electromechanical delay (:func:`apply_delay`) and resampling onto the kinematics' times
   (:func:`resample_envelope`).

Conventions: arrays are time-first ``(n_samples, n_channels)``; rates in Hz, times in seconds. Filters are
designed with :func:`scipy.signal.butter` in second-order sections and applied forwards and backwards with
:func:`scipy.signal.sosfiltfilt` (zero phase). ``order`` is the ``N`` given to ``butter``: a band-pass of order
``N`` has ``2N`` poles; the forward-backward pass squares the magnitude response, so the gain at a cut-off is
-6 dB (not -3 dB). Cut-offs are used as given (no double-pass correction).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal

from pimsk.errors import PimskError

#: Default fraction of the Nyquist frequency that the band-pass upper edge may reach (see effective_band_hz).
MAX_EDGE_FRACTION = 0.8


class EMGError(PimskError):
    """EMG data that cannot be processed (flat or missing channel, bad rate, unusable reference)."""


class EMGWarning(UserWarning):
    """EMG processing went on but changed something the user asked for (e.g. the band-pass upper edge)."""


@dataclass(frozen=True)
class EnvelopeSettings:
    """Filter settings of the envelope chain.

    band_hz: (low, high) band-pass edges, Hz; lowpass_hz: envelope low-pass cut-off, Hz;
    order_band / order_low: Butterworth order N given to scipy.signal.butter;
    max_edge_fraction: the highest fraction of Nyquist the band-pass upper edge may reach.
    """

    band_hz: tuple[float, float] = (20.0, 450.0)
    lowpass_hz: float = 6.0
    order_band: int = 4
    order_low: int = 4
    max_edge_fraction: float = MAX_EDGE_FRACTION


def _as_2d(x: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        return arr[:, None], True
    if arr.ndim != 2:
        raise EMGError(f"EMG must be (n_samples,) or (n_samples, n_channels), got shape {arr.shape}")
    return arr, False


def _check_rate(rate_hz: float) -> float:
    rate = float(rate_hz)
    if not np.isfinite(rate) or rate <= 0:
        raise EMGError(f"sampling rate {rate_hz!r} Hz is not a positive number", field="rate_hz")
    return rate


def _check_order(order: int, name: str) -> int:
    if int(order) != order or order < 1:
        raise EMGError(f"filter order {order!r} must be an integer >= 1", field=name)
    return int(order)


def effective_band_hz(band_hz: Sequence[float], rate_hz: float,
                      max_edge_fraction: float = MAX_EDGE_FRACTION) -> tuple[float, float]:
    """Band-pass edges (Hz) usable at ``rate_hz``: the upper edge is ``min(high, max_edge_fraction * rate_hz / 2)``.

    An edge at or near Nyquist is no filter at all (the bilinear transform crowds the whole transition band
    against the folding frequency), so the edge is kept at ``max_edge_fraction`` (default 0.8) of Nyquist:
    at 1020 Hz (MOtoNMS) 450 -> 408 Hz, at 500 Hz 450 -> 200 Hz; at >= 1125 Hz, 450 Hz is kept.
    An :class:`EMGWarning` says when the edge was lowered. Raises EMGError when the band is empty.
    """
    rate = _check_rate(rate_hz)
    if len(band_hz) != 2:
        raise EMGError(f"band must be (low, high) in Hz, got {band_hz!r}", field="band_hz")
    low, high = float(band_hz[0]), float(band_hz[1])
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 or high <= low:
        raise EMGError(f"band {low:g}-{high:g} Hz: need 0 < low < high", field="band_hz")
    if not 0 < max_edge_fraction < 1:
        raise EMGError(f"max_edge_fraction {max_edge_fraction} must be in (0, 1)", field="max_edge_fraction")
    limit = max_edge_fraction * rate / 2.0
    if high > limit:
        warnings.warn(f"band-pass upper edge {high:g} Hz lowered to {limit:g} Hz "
                      f"({max_edge_fraction:g} x Nyquist at {rate:g} Hz)", EMGWarning, stacklevel=2)
        high = limit
    if low >= high:
        raise EMGError(f"band-pass lower edge {low:g} Hz is not below the usable upper edge {high:g} Hz "
                       f"at {rate:g} Hz", field="band_hz", hint="the EMG sampling rate is too low for this band")
    return low, high


def check_channels(emg: np.ndarray, labels: Sequence[str] | None = None, *, flat_tol: float = 0.0,
                   where: dict[str, str | None] | None = None) -> None:
    """Raise EMGError naming the channel when one is all-NaN, has any NaN/inf, or is flat.

    emg: (n_samples, n_channels); flat means peak-to-peak <= ``flat_tol`` (units of the signal), i.e. a
    disconnected or saturated electrode. ``where`` (subject/trial/file) is added to the error.
    """
    arr, _ = _as_2d(emg)
    where = dict(where or {})
    names = list(labels) if labels is not None else [f"channel {k + 1}" for k in range(arr.shape[1])]
    if arr.shape[0] < 2:
        raise EMGError(f"EMG has {arr.shape[0]} samples", **where)
    for k in range(arr.shape[1]):
        col = arr[:, k]
        finite = np.isfinite(col)
        if not finite.any():
            raise EMGError("channel holds no data (all NaN)", field=names[k],
                           hint="drop it from the EMG channel map", **where)
        if not finite.all():
            first = int(np.argmin(finite))
            raise EMGError(f"{int((~finite).sum())} samples are NaN/inf (first at sample {first})",
                           field=names[k], hint="fill the gap in the source or drop the channel", **where)
        if np.ptp(col) <= flat_tol:
            raise EMGError(f"channel is flat (peak-to-peak {np.ptp(col):g} <= {flat_tol:g})", field=names[k],
                           hint="electrode disconnected? drop it from the EMG channel map", **where)


def bandpass(emg: np.ndarray, rate_hz: float, band_hz: Sequence[float] = (20.0, 450.0), order: int = 4,
             max_edge_fraction: float = MAX_EDGE_FRACTION) -> np.ndarray:
    """Zero-phase Butterworth band-pass along time; emg (n_samples,) or (n_samples, n_channels), same units out.

    The upper edge is adapted to the rate (:func:`effective_band_hz`).
    """
    arr, flat = _as_2d(emg)
    low, high = effective_band_hz(band_hz, rate_hz, max_edge_fraction)
    sos = signal.butter(_check_order(order, "order_band"), [low, high], btype="bandpass", fs=float(rate_hz),
                        output="sos")
    out = signal.sosfiltfilt(sos, arr, axis=0)
    return out[:, 0] if flat else out


def lowpass(x: np.ndarray, rate_hz: float, cutoff_hz: float = 6.0, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass along time; x (n_samples,) or (n_samples, n_channels)."""
    arr, flat = _as_2d(x)
    rate = _check_rate(rate_hz)
    if not 0 < cutoff_hz < rate / 2:
        raise EMGError(f"low-pass cut-off {cutoff_hz:g} Hz must lie in (0, {rate / 2:g}) Hz at {rate:g} Hz",
                       field="lowpass_hz")
    sos = signal.butter(_check_order(order, "order_low"), float(cutoff_hz), btype="lowpass", fs=rate, output="sos")
    out = signal.sosfiltfilt(sos, arr, axis=0)
    return out[:, 0] if flat else out


def rectify(x: np.ndarray) -> np.ndarray:
    """Full-wave rectification |x|."""
    return np.abs(np.asarray(x, dtype=float))


def envelope(emg: np.ndarray, rate_hz: float, settings: EnvelopeSettings | None = None, *,
             labels: Sequence[str] | None = None, where: dict[str, str | None] | None = None) -> np.ndarray:
    """Linear envelope (un-normalised, units of the raw EMG): band-pass -> |.| -> low-pass.

    emg: (n_samples, n_channels) raw EMG sampled at rate_hz. Returns the same shape, >= 0: the low-pass's
    small undershoots below zero (Butterworth ringing, not muscle activity) are clipped to 0.
    Channels are checked first (:func:`check_channels`): a flat or NaN channel raises EMGError naming it.
    """
    s = settings or EnvelopeSettings()
    arr, flat = _as_2d(emg)
    check_channels(arr, labels, where=where)
    band = bandpass(arr, rate_hz, s.band_hz, s.order_band, s.max_edge_fraction)
    env = lowpass(rectify(band), rate_hz, s.lowpass_hz, s.order_low)
    np.maximum(env, 0.0, out=env)
    return env[:, 0] if flat else env


def reference_from_envelopes(envelopes: Sequence[np.ndarray], labels: Sequence[str] | None = None, *,
                             where: dict[str, str | None] | None = None) -> np.ndarray:
    """Per-channel normalisation reference: the peak of the envelopes over ALL trials given.

    envelopes: one (n_samples_i, n_channels) array per trial (or the MVC trial alone), same channel order.
    Returns (n_channels,) in the envelopes' units. Normalising every trial by it keeps amplitudes comparable
    between trials (never normalise per trial). Raises EMGError when a channel's peak is not positive.
    """
    arrays = [_as_2d(e)[0] for e in envelopes]
    if not arrays:
        raise EMGError("no envelopes to take a reference from", **dict(where or {}))
    n_ch = arrays[0].shape[1]
    if any(a.shape[1] != n_ch for a in arrays):
        raise EMGError(f"trials have different channel counts: {[a.shape[1] for a in arrays]}",
                       **dict(where or {}))
    ref = np.max(np.vstack(arrays), axis=0)
    names = list(labels) if labels is not None else [f"channel {k + 1}" for k in range(n_ch)]
    for k in range(n_ch):
        if not np.isfinite(ref[k]) or ref[k] <= 0:
            raise EMGError(f"normalisation reference {ref[k]:g} is not positive", field=names[k],
                           hint="the channel is silent in every trial", **dict(where or {}))
    return ref


def normalise(env: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """env (n_samples, n_channels) / reference (n_channels,): dimensionless, 1 at the reference peak."""
    ref = np.asarray(reference, dtype=float).reshape(-1)
    arr, flat = _as_2d(env)
    if arr.shape[1] != ref.shape[0]:
        raise EMGError(f"{arr.shape[1]} channels but {ref.shape[0]} reference values")
    out = arr / ref
    return out[:, 0] if flat else out


def delay_samples(rate_hz: float, delay_s: float) -> int:
    """Electromechanical delay in whole samples at rate_hz (nearest)."""
    if not np.isfinite(delay_s) or delay_s < 0:
        raise EMGError(f"electromechanical delay {delay_s!r} s must be >= 0", field="delay_s")
    return int(round(float(delay_s) * _check_rate(rate_hz)))


def apply_delay(env: np.ndarray, rate_hz: float, delay_s: float) -> np.ndarray:
    """Shift the envelope later in time by the electromechanical delay: ``out[i] = env[i - k]``,
    ``k = round(delay_s * rate_hz)``; the first k samples hold ``env[0]``.

    The EMG leads the force it causes by ~10-100 ms (Cavanagh & Komi 1979, Eur J Appl Physiol 42:159), so the
    excitation driving a muscle model at time t is the EMG of time t - delay (Lloyd & Besier 2003).
    Resolution is one sample (1 ms at 1 kHz); apply it at the EMG rate, before resampling.
    """
    arr, flat = _as_2d(env)
    k = delay_samples(rate_hz, delay_s)
    if k == 0:
        out = arr.copy()
    elif k >= arr.shape[0]:
        out = np.repeat(arr[:1], arr.shape[0], axis=0)
    else:
        out = np.concatenate([np.repeat(arr[:1], k, axis=0), arr[:-k]], axis=0)
    return out[:, 0] if flat else out


def resample_envelope(time_s: np.ndarray, env: np.ndarray, new_time_s: np.ndarray, *,
                      tolerance_s: float | None = None) -> np.ndarray:
    """Linear interpolation of the envelope (n_samples, n_channels) at ``new_time_s`` (n_new,) -> (n_new, n_channels).

    Safe without an anti-aliasing filter because the envelope is already low-passed (6 Hz) far below the
    kinematics' Nyquist frequency. New times outside the EMG's time range by more than ``tolerance_s``
    (default one EMG sample) raise EMGError; within it the end value is held.
    """
    t = np.asarray(time_s, dtype=float).reshape(-1)
    tn = np.asarray(new_time_s, dtype=float).reshape(-1)
    arr, flat = _as_2d(env)
    if t.shape[0] != arr.shape[0]:
        raise EMGError(f"{t.shape[0]} times but {arr.shape[0]} envelope samples")
    if t.shape[0] < 2 or not np.all(np.diff(t) > 0):
        raise EMGError("EMG time must be strictly increasing with at least 2 samples", field="time")
    if tn.size == 0:
        raise EMGError("no target times to resample onto", field="time")
    tol = float(np.median(np.diff(t))) if tolerance_s is None else float(tolerance_s)
    if tn.min() < t[0] - tol or tn.max() > t[-1] + tol:
        raise EMGError(f"target times {tn.min():.4f}-{tn.max():.4f} s reach outside the EMG "
                       f"({t[0]:.4f}-{t[-1]:.4f} s)", field="time",
                       hint="the kinematics must lie within the EMG recording")
    out = np.column_stack([np.interp(tn, t, arr[:, k]) for k in range(arr.shape[1])])
    return out[:, 0] if flat else out


def sampling_rate_hz(time_s: np.ndarray, *, rel_tol: float = 0.01,
                     where: dict[str, str | None] | None = None) -> float:
    """Rate (Hz) of a uniformly sampled time column; EMGError when the steps differ by more than rel_tol."""
    t = np.asarray(time_s, dtype=float).reshape(-1)
    if t.size < 2:
        raise EMGError(f"{t.size} samples: cannot tell the sampling rate", field="time", **dict(where or {}))
    dt = np.diff(t)
    step = float(np.median(dt))
    if step <= 0 or np.max(np.abs(dt - step)) > rel_tol * step:
        raise EMGError(f"time steps are not uniform ({dt.min():.6g}-{dt.max():.6g} s)", field="time",
                       hint="filters need uniformly sampled EMG", **dict(where or {}))
    return 1.0 / step
