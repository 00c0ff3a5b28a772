"""What a C3D file holds, reader-independent (filled by ezc3d or the `c3d` package)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pimsk.io.containers import Markers


@dataclass
class ForcePlate:
    """One FORCE_PLATFORM entry.

    plate_type: 1..4 (C3D spec); corners_lab: (4, 3) plate corners in the lab frame, in the file's point units;
    origin: (3,) FORCE_PLATFORM:ORIGIN as stored (plate frame, point units; sign conventions per type);
    channels: 0-based analog channel indices (6 for types 2/4, 6 for type 1: Fx,Fy,Fz,Px,Py,Mz; 8 for type 3);
    cal_matrix: (n_channels, n_channels) for type 4, else None.
    """

    plate_type: int
    corners_lab: np.ndarray
    origin: np.ndarray
    channels: list[int]
    cal_matrix: np.ndarray | None = None


@dataclass
class Event:
    """A gait event: label (e.g. 'Foot Strike'), context ('Right'/'Left'), time in seconds."""

    label: str
    context: str
    time_s: float


@dataclass
class C3DData:
    """Everything pimsk uses from a C3D file.

    markers: point data in the file's units (``markers.units``), NaN where invalid (residual < 0);
    analog: (n_analog_frames, n_channels) in physical units (SCALE, OFFSET, GEN_SCALE applied);
    analog_rate_hz: analog sampling rate; first_frame: POINT first frame number (1-based as in the header).
    warnings: what the reader noticed but tolerated (e.g. why the fallback reader was used).
    """

    path: Path
    markers: Markers
    analog: np.ndarray
    analog_labels: list[str]
    analog_units: list[str]
    analog_rate_hz: float
    plates: list[ForcePlate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    first_frame: int = 1
    reader: str = ""
    parameters: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def point_rate_hz(self) -> float:
        return float(self.markers.rate_hz)
