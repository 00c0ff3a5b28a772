"""Baseline regressors from EMG envelopes to joint angles and muscle forces, frame by frame.

* :class:`ELM`: extreme learning machine (Huang, Zhu & Siew 2006, Neurocomputing 70:489): random input
  weights and biases, one hidden layer ``H = g(X W + b)``, output weights by regularised least squares
  ``beta = (H^T H + I / C)^-1 H^T Y`` (ridge form of the Moore-Penrose solution).
* :class:`MultilayerELM`: ML-ELM (Kasun, Zhou, Huang & Vong 2013, IEEE Intelligent Systems 28(6):31): layers
  learned one by one as ELM auto-encoders (random orthogonal input weights and bias, output weights
  ``beta_k = (H^T H + I / C)^-1 H^T X_k`` reconstructing the layer's input), each layer's representation
  ``X_{k+1} = g(X_k beta_k^T)``; a final ELM regression maps the last representation to the outputs.
* :class:`SVRBaseline`: support vector regression (scikit-learn ``SVR``, RBF kernel), one model per output.

All take SampleSet-shaped arrays: ``fit(emg (n, T, n_emg), targets (n, T, n_out), dt_s (n,))`` and
``predict(emg, dt_s) -> (n, T, n_out)``. Features per frame (:func:`frame_features`): the envelopes at the frame
and at ``lags`` earlier frames of the same sample (edge-padded), plus ``log(dt_s)`` when ``use_dt``; inputs and
outputs are standardised with training statistics. Everything random depends only on ``seed``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError, FileFormatError

__all__ = ["frame_features", "ELM", "MultilayerELM", "SVRBaseline", "make_baseline", "BASELINES", "load_baseline"]


def frame_features(emg: np.ndarray, dt_s: np.ndarray | None = None, lags: Sequence[int] = (0,),
                   use_dt: bool = False) -> np.ndarray:
    """Per-frame features (n * T, n_emg * len(lags) [+ 1]) from envelopes (n, T, n_emg).

    lag k: the envelope k frames earlier in the same sample (the first frame repeated before the start).
    """
    emg = np.asarray(emg, dtype=float)
    if emg.ndim != 3:
        raise ConfigError(f"emg must be (n, time, channels), got shape {emg.shape}", field="emg")
    n, t, _ = emg.shape
    cols = []
    for k in lags:
        k = int(k)
        if k < 0:
            raise ConfigError(f"lag {k} must be >= 0", field="lags")
        idx = np.clip(np.arange(t) - k, 0, t - 1)
        cols.append(emg[:, idx, :])
    feats = np.concatenate(cols, axis=-1)
    if use_dt:
        if dt_s is None:
            raise ConfigError("use_dt needs dt_s", field="dt_s")
        logdt = np.log(np.asarray(dt_s, dtype=float)).reshape(n, 1, 1)
        feats = np.concatenate([feats, np.broadcast_to(logdt, (n, t, 1))], axis=-1)
    return feats.reshape(n * t, -1)


def _activation(name: str):
    if name == "sigmoid":
        return lambda x: 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
    if name == "tanh":
        return np.tanh
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    raise ConfigError(f"activation {name!r} unknown", field="activation", hint="sigmoid, tanh or relu")


def _ridge(h: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    """argmin |H beta - Y|^2 + |beta|^2 / C, by a Cholesky/solve of the normal equations (n_hidden small)."""
    a = h.T @ h
    a[np.diag_indices_from(a)] += 1.0 / c
    return np.linalg.solve(a, h.T @ y)


class _FrameRegressor:
    """Shared plumbing: features, standardisation, (n, T, c) shapes, persistence."""

    kind = "base"

    def __init__(self, *, lags: Sequence[int] = (0,), use_dt: bool = False, seed: int = 0) -> None:
        self.lags = [int(k) for k in lags]
        self.use_dt = bool(use_dt)
        self.seed = int(seed)
        self.x_mean = self.x_std = self.y_mean = self.y_std = None
        self.n_outputs = 0

    def _features(self, emg: np.ndarray, dt_s: np.ndarray | None) -> np.ndarray:
        return frame_features(emg, dt_s, self.lags, self.use_dt)

    def fit(self, emg: np.ndarray, targets: np.ndarray, dt_s: np.ndarray | None = None) -> "_FrameRegressor":
        x = self._features(emg, dt_s)
        y = np.asarray(targets, dtype=float)
        if y.ndim != 3 or y.shape[:2] != np.shape(emg)[:2]:
            raise ConfigError(f"targets {y.shape} must be (n, time, outputs) like emg {np.shape(emg)}", field="targets")
        y = y.reshape(x.shape[0], -1)
        self.n_outputs = y.shape[1]
        self.x_mean, self.x_std = x.mean(0), np.where(x.std(0) > 0, x.std(0), 1.0)
        self.y_mean, self.y_std = y.mean(0), np.where(y.std(0) > 0, y.std(0), 1.0)
        self._fit((x - self.x_mean) / self.x_std, (y - self.y_mean) / self.y_std)
        return self

    def predict(self, emg: np.ndarray, dt_s: np.ndarray | None = None) -> np.ndarray:
        if self.x_mean is None:
            raise ConfigError(f"{self.kind}: predict before fit", field="model")
        n, t = np.shape(emg)[:2]
        x = (self._features(emg, dt_s) - self.x_mean) / self.x_std
        y = self._predict(x) * self.y_std + self.y_mean
        return y.reshape(n, t, self.n_outputs)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Pickle of this fitted model (our own artefact; load with :func:`load_baseline`)."""
        Path(path).write_bytes(pickle.dumps({"format": "pimsk.baseline", "kind": self.kind, "model": self}))


class ELM(_FrameRegressor):
    """Single-hidden-layer extreme learning machine (Huang et al. 2006), ridge output weights (C)."""

    kind = "elm"

    def __init__(self, n_hidden: int = 200, c: float = 1e3, activation: str = "sigmoid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if n_hidden < 1 or c <= 0:
            raise ConfigError("ELM needs n_hidden >= 1 and C > 0", field="baseline")
        self.n_hidden, self.c, self.activation = int(n_hidden), float(c), activation
        _activation(activation)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self.w = rng.uniform(-1.0, 1.0, size=(x.shape[1], self.n_hidden))
        self.b = rng.uniform(-1.0, 1.0, size=self.n_hidden)
        self.beta = _ridge(_activation(self.activation)(x @ self.w + self.b), y, self.c)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return _activation(self.activation)(x @ self.w + self.b) @ self.beta


class MultilayerELM(_FrameRegressor):
    """ML-ELM (Kasun et al. 2013): stacked ELM auto-encoders, then an ELM regression layer.

    hidden: sizes of the auto-encoder layers (e.g. [100, 100]); n_hidden / c: the final regression ELM;
    c_ae: ridge constant of the auto-encoders.
    """

    kind = "mlelm"

    def __init__(self, hidden: Sequence[int] = (100, 100), n_hidden: int = 200, c: float = 1e3, c_ae: float = 1e3,
                 activation: str = "sigmoid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not hidden or any(int(h) < 1 for h in hidden) or n_hidden < 1 or c <= 0 or c_ae <= 0:
            raise ConfigError("ML-ELM needs hidden sizes >= 1, n_hidden >= 1, C > 0", field="baseline")
        self.hidden, self.n_hidden = [int(h) for h in hidden], int(n_hidden)
        self.c, self.c_ae, self.activation = float(c), float(c_ae), activation
        _activation(activation)

    @staticmethod
    def _orthogonal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
        """(n_in, n_out) with orthonormal columns (n_out <= n_in) or rows (n_out > n_in) (Kasun 2013)."""
        a = rng.standard_normal((max(n_in, n_out), min(n_in, n_out)))
        q, _ = np.linalg.qr(a)
        return q if n_in >= n_out else q.T

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        g = _activation(self.activation)
        self.betas = []
        h = x
        for size in self.hidden:
            a = self._orthogonal(rng, h.shape[1], size)
            b = rng.uniform(-1.0, 1.0, size=size)
            b /= max(np.linalg.norm(b), 1e-12)
            hidden = g(h @ a + b)
            beta = _ridge(hidden, h, self.c_ae)  # (size, n_in): reconstructs the layer input
            self.betas.append(beta)
            h = g(h @ beta.T)
        self.top = ELM(self.n_hidden, self.c, self.activation, seed=self.seed + 1)
        self.top._fit(h, y)

    def _represent(self, x: np.ndarray) -> np.ndarray:
        g = _activation(self.activation)
        for beta in self.betas:
            x = g(x @ beta.T)
        return x

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self.top._predict(self._represent(x))


class SVRBaseline(_FrameRegressor):
    """scikit-learn ``SVR`` (RBF kernel), one per output, on standardised per-frame features.

    max_frames: training frames kept (a seeded random subset) to bound the O(n^2) kernel cost.
    """

    kind = "svr"

    def __init__(self, c: float = 10.0, epsilon: float = 0.05, gamma: str | float = "scale", kernel: str = "rbf",
                 max_frames: int = 4000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if c <= 0 or epsilon < 0 or max_frames < 10:
            raise ConfigError("SVR needs C > 0, epsilon >= 0, max_frames >= 10", field="baseline")
        self.c, self.epsilon, self.gamma, self.kernel, self.max_frames = float(c), float(epsilon), gamma, kernel, int(
            max_frames)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.svm import SVR

        if x.shape[0] > self.max_frames:
            keep = np.sort(np.random.default_rng(self.seed).choice(x.shape[0], self.max_frames, replace=False))
            x, y = x[keep], y[keep]
        self.models = [SVR(kernel=self.kernel, C=self.c, epsilon=self.epsilon, gamma=self.gamma).fit(x, y[:, k])
                       for k in range(y.shape[1])]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict(x) for m in self.models])


BASELINES = {"elm": ELM, "mlelm": MultilayerELM, "svr": SVRBaseline}


def make_baseline(kind: str, settings: Mapping[str, Any] | None = None, seed: int = 0) -> _FrameRegressor:
    """A baseline by name (``elm``, ``mlelm``, ``svr``) with its settings (``C`` may be spelled ``c``)."""
    if kind not in BASELINES:
        raise ConfigError(f"unknown baseline {kind!r}", field="method", hint=f"choose one of {sorted(BASELINES)}")
    kwargs = {("c" if k == "C" else "c_ae" if k == "C_ae" else k): v for k, v in dict(settings or {}).items()}
    try:
        return BASELINES[kind](seed=seed, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad settings for {kind}: {exc}", field=f"baseline.{kind}") from None


def load_baseline(path: str | Path) -> _FrameRegressor:
    """A baseline saved by ``save``; FileFormatError if the file is something else."""
    try:
        data = pickle.loads(Path(path).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise FileFormatError(f"cannot read baseline model: {exc}", file=path) from None
    if not isinstance(data, dict) or data.get("format") != "pimsk.baseline":
        raise FileFormatError("not a pimsk baseline model", file=path, field="format")
    return data["model"]
