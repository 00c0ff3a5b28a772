"""Small typed containers: time-first arrays with labels and units."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Table:
    """Time series of scalar columns (MOT/STO).

    time_s: (n_frames,) seconds; data: (n_frames, n_columns); labels: column names (no time).
    ``in_degrees`` tells whether rotational columns are in degrees (file boundary only).
    """

    time_s: np.ndarray
    data: np.ndarray
    labels: list[str]
    name: str = "table"
    in_degrees: bool = False
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=float).reshape(-1)
        self.data = np.asarray(self.data, dtype=float).reshape(len(self.time_s), -1)
        if self.data.shape[1] != len(self.labels):
            raise ValueError(f"{self.name}: {self.data.shape[1]} columns but {len(self.labels)} labels")

    @property
    def n_frames(self) -> int:
        return int(self.time_s.shape[0])

    def column(self, label: str) -> np.ndarray:
        """(n_frames,) values of one column; KeyError names the column."""
        try:
            return self.data[:, self.labels.index(label)]
        except ValueError:
            raise KeyError(f"column {label!r} not in {self.name}") from None

    def to_frame(self):  # -> pandas.DataFrame
        import pandas as pd

        df = pd.DataFrame(self.data, columns=self.labels)
        df.insert(0, "time", self.time_s)
        return df


@dataclass
class Markers:
    """Marker trajectories.

    time_s: (n_frames,); xyz: (n_frames, n_markers, 3) in ``units`` (NaN where missing);
    labels: marker names; rate_hz: sampling rate.
    """

    time_s: np.ndarray
    xyz: np.ndarray
    labels: list[str]
    rate_hz: float
    units: str = "m"
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=float).reshape(-1)
        self.xyz = np.asarray(self.xyz, dtype=float).reshape(len(self.time_s), -1, 3)
        if self.xyz.shape[1] != len(self.labels):
            raise ValueError(f"{self.xyz.shape[1]} markers but {len(self.labels)} labels")

    @property
    def n_frames(self) -> int:
        return int(self.time_s.shape[0])

    def marker(self, label: str) -> np.ndarray:
        """(n_frames, 3) trajectory of one marker."""
        try:
            return self.xyz[:, self.labels.index(label), :]
        except ValueError:
            raise KeyError(f"marker {label!r} not found") from None

    def in_metres(self) -> "Markers":
        """Copy converted to metres from mm/cm/m."""
        scale = {"m": 1.0, "mm": 1e-3, "cm": 1e-2}.get(self.units.strip().lower())
        if scale is None:
            raise ValueError(f"unknown marker unit {self.units!r}")
        return Markers(self.time_s.copy(), self.xyz * scale, list(self.labels), self.rate_hz, "m", dict(self.meta))
