"""Measurement models: noisy markers in a lab frame and raw surface EMG from excitations (numpy).

Raw EMG follows the classic amplitude-modulated noise model (e.g. Hogan & Mann 1980, IEEE Trans
Biomed Eng 27:382; Clancy et al. 2002, J Electromyogr Kinesiol 12:1): a zero-mean band-limited
Gaussian carrier whose RMS is proportional to the neural excitation, plus an additive noise floor.
The EMG *leads* the excitation that drives the simulated muscle by the electromechanical delay:
``emg_rms(t) = gain * u(t + emd)``, i.e. ``u(t) = envelope(t - emd)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import butter, sosfiltfilt

_AXES = {"x": 0, "y": 1, "z": 2}


def lab_rotation(spec: str | list) -> np.ndarray:
    """(3, 3) lab -> OpenSim rotation (``p_osim = R @ p_lab``) from an axis spec or a matrix.

    The spec lists, for OpenSim X, Y, Z in turn, the signed lab axis it equals: ``"x,z,-y"`` is a Z-up lab
    (Vicon/Qualisys: OpenSim X = lab X, Y = lab Z, Z = -lab Y). Raises ValueError unless a proper rotation.
    """
    if isinstance(spec, str):
        parts = spec.replace(" ", "").lower().split(",")
        rot = np.zeros((3, 3))
        if len(parts) != 3 or any(p.lstrip("+-") not in _AXES for p in parts):
            raise ValueError(f"lab_to_opensim {spec!r}: expected three signed axes like 'x,z,-y'")
        for row, p in enumerate(parts):
            rot[row, _AXES[p.lstrip("+-")]] = -1.0 if p.startswith("-") else 1.0
    else:
        rot = np.asarray(spec, dtype=float)
    if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-9) or np.linalg.det(rot) < 0:
        raise ValueError(f"lab_to_opensim {spec!r} is not a proper rotation")
    return rot


def markers_to_lab_mm(markers_m: np.ndarray, lab_to_opensim: np.ndarray, sd_mm: float,
                      rng: np.random.Generator) -> np.ndarray:
    """(n, k, 3) OpenSim-ground positions (m) -> lab frame (mm) with iid Gaussian noise of ``sd_mm``."""
    lab = np.einsum("ij,nkj->nki", lab_to_opensim.T, markers_m) * 1000.0
    return lab + rng.normal(0.0, sd_mm, size=lab.shape)


def band_noise(n: int, rate_hz: float, band_hz: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """(n,) zero-mean Gaussian noise band-passed (4th-order Butterworth, zero phase), unit RMS."""
    white = rng.standard_normal(n + 2000)
    sos = butter(4, [band_hz[0], band_hz[1]], btype="bandpass", fs=rate_hz, output="sos")
    x = sosfiltfilt(sos, white)[1000:1000 + n]
    return x / np.sqrt(np.mean(x ** 2))


def raw_emg(excitation_of_t: Callable[[np.ndarray], np.ndarray], n_samples: int, rate_hz: float, emd_s: float,
            gain_v: np.ndarray, floor_v: float, band_hz: tuple[float, float],
            rng: np.random.Generator) -> np.ndarray:
    """(n_samples, n_channels) raw EMG in volts at ``rate_hz``, sample i at time i / rate_hz.

    excitation_of_t: maps times (n,) -> excitations (n, n_channels); gain_v: (n_channels,) RMS at
    full excitation; floor_v: RMS of the white additive noise floor.
    """
    t = np.arange(n_samples) / rate_hz
    u = np.asarray(excitation_of_t(t + emd_s), dtype=float).reshape(n_samples, -1)
    n_ch = u.shape[1]
    carrier = np.stack([band_noise(n_samples, rate_hz, band_hz, rng) for _ in range(n_ch)], axis=1)
    floor = rng.normal(0.0, floor_v, size=(n_samples, n_ch))
    return u * np.asarray(gain_v, dtype=float)[None, :] * carrier + floor
