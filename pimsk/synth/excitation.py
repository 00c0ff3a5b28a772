"""Known muscle excitation patterns: a baseline plus smooth periodic bursts (pure numpy).

A burst of amplitude ``A`` and length ``T_b = duty * period`` is ``A sin^2(pi tau / T_b)`` for
``0 <= tau <= T_b`` (a raised cosine: continuous with a continuous first derivative, so the forward
integration sees no kinks). Excitation = clip(baseline + sum of bursts, min_excitation, 1).

The floor :data:`MIN_EXCITATION` = 0.02 stands for the resting tone of a relaxed muscle (a living muscle is
never fully silent) and equals the floor OpenSim's Computed Muscle Control puts on excitations
(``CMC.cpp``, ``MIN_CMC_CONTROL_VALUE``) and the ``min_control`` of the code-built models' muscles
(``pimsk.osim.models.common.MIN_CONTROL``), so SO and CMC on the synthetic data have the truth's lower bound
and are not forced to co-contract above it. A subject file may change it (``synth.min_excitation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_EXCITATION = 0.02


@dataclass(frozen=True)
class Burst:
    """Periodic raised-cosine bursts on a group of muscles.

    muscles: names; amplitude: peak excitation added (0..1); period_s: repeat period; duty: burst
    length as a fraction of the period (0..1]; start_s: onset of the first burst; stop_s: no burst
    starts at or after this time (None: never stops); gains: optional per-muscle factor on amplitude.
    """

    muscles: tuple[str, ...]
    amplitude: float
    period_s: float
    duty: float = 0.4
    start_s: float = 0.0
    stop_s: float | None = None
    gains: dict[str, float] = field(default_factory=dict)

    def shape(self, t_s: np.ndarray) -> np.ndarray:
        """(n,) burst envelope (0..amplitude) at times ``t_s`` for a muscle with gain 1."""
        t = np.asarray(t_s, dtype=float)
        tau = t - self.start_s
        k = np.floor(tau / self.period_s)
        local = tau - k * self.period_s
        t_burst = self.duty * self.period_s
        onset = self.start_s + k * self.period_s
        on = (tau >= 0.0) & (local <= t_burst)
        if self.stop_s is not None:
            on &= onset < self.stop_s
        return np.where(on, self.amplitude * np.sin(np.pi * np.clip(local, 0.0, t_burst) / t_burst) ** 2, 0.0)


@dataclass(frozen=True)
class ExcitationPattern:
    """Excitations of a set of muscles: baseline (per muscle or one number) plus bursts."""

    muscles: tuple[str, ...]
    baseline: dict[str, float]
    bursts: tuple[Burst, ...] = ()
    min_excitation: float = MIN_EXCITATION

    def __post_init__(self) -> None:
        known = set(self.muscles)
        for b in self.bursts:
            unknown = sorted(set(b.muscles) - known)
            if unknown:
                raise ValueError(f"burst names muscles not in the model: {unknown}")

    def evaluate(self, t_s: Sequence[float] | np.ndarray) -> np.ndarray:
        """(n_times, n_muscles) excitations in [min_excitation, 1], columns in ``self.muscles`` order."""
        t = np.asarray(t_s, dtype=float).reshape(-1)
        out = np.empty((t.size, len(self.muscles)))
        for j, name in enumerate(self.muscles):
            out[:, j] = self.baseline.get(name, 0.0)
        for b in self.bursts:
            env = b.shape(t)
            for name in b.muscles:
                out[:, self.muscles.index(name)] += b.gains.get(name, 1.0) * env
        return np.clip(out, self.min_excitation, 1.0)
