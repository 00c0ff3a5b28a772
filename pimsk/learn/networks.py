"""PI-CNN: a 1-D convolutional network from EMG envelopes to joint angles and muscle forces per time step.

Architecture after Zhang et al. (2023), "Physics-informed deep learning for musculoskeletal modelling:
predicting muscle forces and joint kinematics from surface EMG", IEEE TNSRE 31: convolutional blocks over the
time axis (Conv1d -> batch norm -> ReLU/ELU -> dropout), then fully connected layers applied at every time step,
regressing the outputs (angles and forces) frame by frame. Dropout is channel-wise by default (a feature is
dropped for the whole sample), so that training-mode outputs stay smooth in time: the physics loss
differentiates them twice along the time axis. Depth, width, kernel, activation, dropout and the
fully connected sizes are configurable (:class:`CNNConfig`). The physics-free CNN baseline is the same network
trained with lambda = 0 (see :mod:`pimsk.learn.losses`).

Inputs: EMG envelopes ``(batch, time, n_emg)`` (dimensionless, as written by ``pimsk emg``) and the time step
``dt_s`` ``(batch,)`` in s. The network standardises the envelopes with the training set's per-channel mean and
standard deviation (buffers set by :meth:`PICNN.set_scaling`) and, when ``use_dt``, appends one constant channel
``log(dt_s / dt_ref_s)`` (gait cycles of different durations have different time steps). Convolutions keep the
time length ("same" padding, edge values replicated), so the output is ``(batch, time, n_outputs)`` in
standardised target units; :meth:`PICNN.to_si` maps it back to SI (rad, N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pimsk.errors import ConfigError

__all__ = ["CNNConfig", "PICNN", "build_network"]

_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass
class CNNConfig:
    """Hyperparameters of :class:`PICNN`.

    channels: feature maps per convolutional block (one int per block, or one int repeated ``n_blocks``
    times); kernel_size: odd, in frames; fc_hidden: sizes of the per-frame fully connected hidden layers.
    """

    n_blocks: int = 4
    channels: int | list[int] = 32
    kernel_size: int = 5
    activation: str = "relu"
    dropout: float = 0.1
    batch_norm: bool = True
    fc_hidden: list[int] = field(default_factory=lambda: [64])
    use_dt: bool = True
    dropout_mode: str = "channel"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, where: str = "network") -> "CNNConfig":
        """Validated config from a mapping (unknown keys and bad values raise ConfigError naming the field)."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown network settings {unknown}", field=where, hint=f"known: {sorted(known)}")
        cfg = cls(**data)
        cfg.validate(where)
        return cfg

    def block_channels(self) -> list[int]:
        if isinstance(self.channels, (list, tuple)):
            return [int(c) for c in self.channels]
        return [int(self.channels)] * int(self.n_blocks)

    def validate(self, where: str = "network") -> None:
        chans = self.block_channels()
        if isinstance(self.channels, (list, tuple)) and len(chans) != self.n_blocks:
            raise ConfigError(f"{len(chans)} channel sizes for {self.n_blocks} blocks", field=f"{where}.channels")
        if self.n_blocks < 1 or any(c < 1 for c in chans):
            raise ConfigError("need at least one block with at least one channel", field=f"{where}.n_blocks")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size {self.kernel_size} must be odd and >= 1", field=f"{where}.kernel_size")
        if self.activation not in _ACTIVATIONS:
            raise ConfigError(f"activation {self.activation!r} unknown", field=f"{where}.activation",
                              hint=f"choose one of {sorted(_ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout {self.dropout} must be in [0, 1)", field=f"{where}.dropout")
        if any(int(h) < 1 for h in self.fc_hidden):
            raise ConfigError("fc_hidden sizes must be >= 1", field=f"{where}.fc_hidden")
        if self.dropout_mode not in ("channel", "element"):
            raise ConfigError(f"dropout_mode {self.dropout_mode!r}: 'channel' or 'element'",
                              field=f"{where}.dropout_mode")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Dropout(nn.Module):
    """Dropout on (batch, channel, time) (``channel_first``) or (batch, time, channel).

    mode "channel": a dropped feature is dropped over the whole sample (``nn.Dropout1d``, spatial dropout), so
    training-time predictions stay smooth in time (their finite-difference derivatives feed the physics loss);
    mode "element": independent per frame (``nn.Dropout``).
    """

    def __init__(self, p: float, mode: str, channel_first: bool) -> None:
        super().__init__()
        self.channel_first = channel_first
        self.channel = mode == "channel"
        self.drop = nn.Dropout1d(p) if self.channel else nn.Dropout(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.channel or self.channel_first:
            return self.drop(x)
        return self.drop(x.transpose(1, 2)).transpose(1, 2)


class _ConvBlock(nn.Module):
    """Conv1d (same length) -> BatchNorm1d -> activation -> dropout, on (batch, channel, time)."""

    def __init__(self, n_in: int, n_out: int, kernel: int, activation: str, dropout: float, batch_norm: bool,
                 dropout_mode: str = "channel"):
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_out, kernel, padding=kernel // 2, padding_mode="replicate",
                              bias=not batch_norm)
        self.norm = nn.BatchNorm1d(n_out) if batch_norm else nn.Identity()
        self.act = _ACTIVATIONS[activation]()
        self.drop = _Dropout(dropout, dropout_mode, channel_first=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.act(self.norm(self.conv(x))))


class PICNN(nn.Module):
    """Convolutional blocks over time -> per-frame fully connected layers -> outputs per frame.

    forward(emg (batch, time, n_inputs), dt_s (batch,)) -> (batch, time, n_outputs), standardised outputs.
    """

    def __init__(self, n_inputs: int, n_outputs: int, config: CNNConfig | None = None,
                 input_labels: Sequence[str] | None = None, output_labels: Sequence[str] | None = None) -> None:
        super().__init__()
        self.config = config or CNNConfig()
        self.config.validate()
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.input_labels = list(input_labels) if input_labels is not None else [f"in{i}" for i in range(n_inputs)]
        self.output_labels = (list(output_labels) if output_labels is not None
                              else [f"out{i}" for i in range(n_outputs)])
        cfg = self.config
        n_in = self.n_inputs + (1 if cfg.use_dt else 0)
        blocks = []
        for c in cfg.block_channels():
            blocks.append(_ConvBlock(n_in, c, cfg.kernel_size, cfg.activation, cfg.dropout, cfg.batch_norm,
                                     cfg.dropout_mode))
            n_in = c
        self.blocks = nn.Sequential(*blocks)
        head: list[nn.Module] = []
        for h in cfg.fc_hidden:
            head += [nn.Linear(n_in, int(h)), _ACTIVATIONS[cfg.activation](),
                     _Dropout(cfg.dropout, cfg.dropout_mode, channel_first=False)]
            n_in = int(h)
        head.append(nn.Linear(n_in, self.n_outputs))
        self.head = nn.Sequential(*head)
        self.register_buffer("input_mean", torch.zeros(self.n_inputs))
        self.register_buffer("input_std", torch.ones(self.n_inputs))
        self.register_buffer("output_mean", torch.zeros(self.n_outputs))
        self.register_buffer("output_std", torch.ones(self.n_outputs))
        self.register_buffer("dt_ref_s", torch.ones(()))

    # -- scaling ---------------------------------------------------------------------------------------
    def set_scaling(self, input_mean: np.ndarray, input_std: np.ndarray, output_mean: np.ndarray,
                    output_std: np.ndarray, dt_ref_s: float) -> None:
        """Standardisation fitted on the training samples (never on validation/test data)."""
        for name, value in (("input_mean", input_mean), ("input_std", input_std), ("output_mean", output_mean),
                            ("output_std", output_std)):
            buf = getattr(self, name)
            buf.copy_(torch.as_tensor(np.asarray(value, dtype=float), dtype=buf.dtype))
        if not dt_ref_s > 0:
            raise ConfigError(f"dt_ref_s {dt_ref_s} must be > 0", field="dt_s")
        self.dt_ref_s.fill_(float(dt_ref_s))

    def to_si(self, z: Tensor) -> Tensor:
        """Standardised outputs -> SI (rad, N)."""
        return z * self.output_std + self.output_mean

    def to_standard(self, y: Tensor) -> Tensor:
        """SI outputs -> standardised units."""
        return (y - self.output_mean) / self.output_std

    # -- evaluation ------------------------------------------------------------------------------------
    def forward(self, emg: Tensor, dt_s: Tensor) -> Tensor:
        if emg.ndim != 3 or emg.shape[-1] != self.n_inputs:
            raise ValueError(f"emg must be (batch, time, {self.n_inputs}), got {tuple(emg.shape)}")
        x = (emg - self.input_mean) / self.input_std
        if self.config.use_dt:
            dt = torch.as_tensor(dt_s, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
            x = torch.cat([x, torch.log(dt / self.dt_ref_s).expand(x.shape[0], x.shape[1], 1)], dim=-1)
        h = self.blocks(x.transpose(1, 2)).transpose(1, 2)  # (batch, time, channels)
        return self.head(h)

    @torch.no_grad()
    def predict(self, emg: np.ndarray | Tensor, dt_s: np.ndarray | Tensor, batch_size: int = 256) -> np.ndarray:
        """SI predictions (n, time, n_outputs) in eval mode (no dropout, running batch-norm statistics)."""
        was_training = self.training
        self.eval()
        dtype = next(self.parameters()).dtype
        emg_t = torch.as_tensor(np.asarray(emg), dtype=dtype)
        dt_t = torch.as_tensor(np.asarray(dt_s), dtype=dtype).reshape(-1)
        out = [self.to_si(self(emg_t[i:i + batch_size], dt_t[i:i + batch_size]))
               for i in range(0, emg_t.shape[0], batch_size)]
        self.train(was_training)
        if not out:
            return np.zeros((0, emg_t.shape[1], self.n_outputs))
        return torch.cat(out).double().numpy()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def receptive_field_frames(self) -> int:
        """Frames of input that one output frame sees: n_blocks (kernel - 1) + 1."""
        return len(self.config.block_channels()) * (self.config.kernel_size - 1) + 1

    # -- persistence -----------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to rebuild the network (plain types and tensors; ``torch.load(weights_only=True)``)."""
        return {"kind": "picnn", "n_inputs": self.n_inputs, "n_outputs": self.n_outputs,
                "config": self.config.as_dict(), "input_labels": list(self.input_labels),
                "output_labels": list(self.output_labels),
                "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}}

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any]) -> "PICNN":
        net = cls(int(data["n_inputs"]), int(data["n_outputs"]), CNNConfig.from_dict(data["config"]),
                  data.get("input_labels"), data.get("output_labels"))
        net.load_state_dict(data["state_dict"])
        return net


def build_network(n_inputs: int, n_outputs: int, config: CNNConfig | Mapping[str, Any] | None = None, *,
                  seed: int = 0, input_labels: Sequence[str] | None = None,
                  output_labels: Sequence[str] | None = None, dtype: torch.dtype = torch.float32) -> PICNN:
    """A freshly initialised :class:`PICNN` whose weights depend only on ``seed`` (the global RNG is untouched)."""
    cfg = config if isinstance(config, CNNConfig) else CNNConfig.from_dict(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = PICNN(n_inputs, n_outputs, cfg, input_labels, output_labels)
    return net.to(dtype)

