"""What a model contains (coordinates, root joint, masses, markers, muscles), read in a child process."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pimsk.osim.runner import run_child


@dataclass
class ModelInfo:
    """Plain-data summary of an .osim model (SI units)."""

    name: str
    mass_kg: float
    gravity: list[float]
    ground: str
    root_joints: list[str]
    com_default_m: list[float]
    coordinates: list[dict]
    markers: list[str]
    bodies: dict[str, dict]
    muscles: list[str]
    actuators: list[str]

    def free_coordinates(self) -> list[dict]:
        """Coordinates a tracking controller must drive: not locked, prescribed or coupled-dependent."""
        return [c for c in self.coordinates
                if not (c["locked"] or c["prescribed"] or c["dependent"] or c["motion"] == "coupled")]

    def floating_root(self) -> str | None:
        """The ground joint with a translational coordinate (a free or planar pelvis), if any."""
        for c in self.coordinates:
            if c["joint"] in self.root_joints and c["motion"] == "translational":
                return c["joint"]
        return None


def read_model_info(model: str | Path, *, log_file: str | Path | None = None) -> ModelInfo:
    """Load ``model`` in a child process and return its :class:`ModelInfo`."""
    with tempfile.TemporaryDirectory(prefix="pimsk_model_info_") as tmp:
        out = Path(tmp) / "info.json"
        log = Path(log_file) if log_file else Path(tmp) / "model_info.log"
        run_child(["model-info", str(Path(model).resolve()), str(out)], log_file=log, cwd=tmp, timeout_s=600,
                  step="model-info", setup=model)
        data = json.loads(out.read_text())
    return ModelInfo(**data)
