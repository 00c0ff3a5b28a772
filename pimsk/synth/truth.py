"""The ground-truth files of a synthetic subject: OpenSim storage files and one JSON summary.

Numbers are written as the shortest decimal that round-trips (``repr``), so a replayed state is the
simulated state exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.synth.simulate import SimResult


def write_sto(path: Path, time_s: np.ndarray, data: np.ndarray, labels: list[str], name: str,
              in_degrees: bool = False) -> Path:
    """Tab-delimited OpenSim storage (.sto/.mot) file, version 1 header."""
    data = np.asarray(data, dtype=float).reshape(len(time_s), -1)
    if data.shape[1] != len(labels):
        raise ValueError(f"{path}: {data.shape[1]} columns, {len(labels)} labels")
    lines = [name, "version=1", f"nRows={len(time_s)}", f"nColumns={len(labels) + 1}",
             f"inDegrees={'yes' if in_degrees else 'no'}", "endheader", "\t".join(["time", *labels])]
    for t, row in zip(time_s, data):
        lines.append("\t".join(repr(float(v)) for v in (t, *row)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_trial_truth(folder: Path, sim: SimResult) -> dict[str, str]:
    """Write a trial's truth files into ``folder``; return {what: file name}."""
    t = sim.time_s
    files = {
        "states": write_sto(folder / "states.sto", t, sim.states, sim.state_names, "states").name,
        "coordinates": write_sto(folder / "coordinates.mot", t, _deg(sim, sim.q), sim.coordinates, "coordinates",
                                 in_degrees=True).name,
        "speeds": write_sto(folder / "speeds.sto", t, sim.u, sim.coordinates, "speeds").name,
        "accelerations": write_sto(folder / "accelerations.sto", t, sim.udot, sim.coordinates, "accelerations").name,
    }
    if sim.muscles:
        files.update({
            "excitations": write_sto(folder / "excitations.sto", t, sim.excitation, sim.muscles, "excitations").name,
            "activations": write_sto(folder / "activations.sto", t, sim.activation, sim.muscles, "activations").name,
            "forces": write_sto(folder / "forces.sto", t, sim.tendon_force_n, sim.muscles, "tendon_forces_N").name,
            "fiber_lengths": write_sto(folder / "fiber_lengths.sto", t, sim.fiber_length_m, sim.muscles,
                                       "fiber_lengths_m").name,
            "moments": write_sto(folder / "moments.sto", t, sim.muscle_moment_nm,
                                 [f"{c}_moment" for c in sim.free_coordinates], "muscle_moments_Nm").name,
        })
    return files


def _deg(sim: SimResult, values: np.ndarray) -> np.ndarray:
    """Rotational coordinates to degrees (translations stay in m: OpenSim's .mot convention)."""
    out = np.array(values, dtype=float, copy=True)
    for j, name in enumerate(sim.coordinates):
        if not name.endswith(("_tx", "_ty", "_tz")):
            out[:, j] = np.degrees(out[:, j])
    return out


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Deterministic JSON (sorted keys, 2-space indent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(payload), indent=2, sort_keys=True) + "\n")
    return path
