"""CMC/RRA tracking tasks and reserve/residual actuators generated from a model.

Used when a subject file gives none. Tasks: one ``CMC_Joint`` per free coordinate (not locked,
prescribed or coupled), gains kp = 100 s^-2, kv = 20 s^-1 (critically damped, kv = 2 sqrt(kp)) as in
OpenSim's examples. Actuators: a ``CoordinateActuator`` reserve on every free coordinate, and on a
floating root joint (free or planar pelvis) a residual per root coordinate. Sizes follow OpenSim's
published examples (arm26, Gait2354, Gait10dof18musc) and scale with body mass:

- CMC reserves: optimal force 1 N·m (1 N for translations), so muscles are preferred (cost ~ control²);
- RRA joint actuators: 4 N·m/kg × mass (≈ 300 N·m at 72.6 kg as in Gait2354's RRA file);
- residuals: 0.1 N/kg × mass for root translations, 0.03 N·m/kg × mass for root rotations
  (≈ 7 N and 2 N·m at 72.6 kg; Gait2354 uses 4-8 N and 2 N·m).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from pimsk.osim import setup_xml as sx
from pimsk.osim.model_info import ModelInfo

KP_DEFAULT = 100.0
KV_DEFAULT = 20.0
CMC_RESERVE_OPTIMAL = 1.0
RRA_ACTUATOR_NM_PER_KG = 4.0
RESIDUAL_FORCE_N_PER_KG = 0.1
RESIDUAL_MOMENT_NM_PER_KG = 0.03


def write_cmc_tasks(
    info: ModelInfo,
    path: str | Path,
    *,
    kp: float = KP_DEFAULT,
    kv: float = KV_DEFAULT,
    weights: Mapping[str, float] | None = None,
    default_weight: float = 1.0,
) -> Path:
    """A ``CMC_TaskSet`` tracking every free coordinate of the model; ``weights`` per coordinate."""
    root = ET.Element("OpenSimDocument", Version="40000")
    tset = sx.sub(root, "CMC_TaskSet", name=f"{info.name}_tasks")
    objs = sx.sub(tset, "objects")
    for c in info.free_coordinates():
        t = sx.sub(objs, "CMC_Joint", name=c["name"])
        sx.sub(t, "on", True)
        sx.sub(t, "weight", float((weights or {}).get(c["name"], default_weight)))
        sx.sub(t, "active", [True, False, False])
        sx.sub(t, "kp", float(kp))
        sx.sub(t, "kv", float(kv))
        sx.sub(t, "ka", 1.0)
        sx.sub(t, "coordinate", c["name"])
    sx.sub(tset, "groups")
    return sx.write(ET.ElementTree(root), path)


def _coordinate_actuator(objs: ET.Element, name: str, coord: str, optimal: float,
                         min_control: float, max_control: float) -> None:
    a = sx.sub(objs, "CoordinateActuator", name=name)
    sx.sub(a, "min_control", float(min_control))
    sx.sub(a, "max_control", float(max_control))
    sx.sub(a, "coordinate", coord)
    sx.sub(a, "optimal_force", float(optimal))


def write_actuators(
    info: ModelInfo,
    path: str | Path,
    *,
    purpose: str = "cmc",
    reserve_optimal_force: float | None = None,
    residual_force_n: float | None = None,
    residual_moment_nm: float | None = None,
    max_control: float = math.inf,
) -> Path:
    """A ``ForceSet`` of reserves (``<coord>_reserve``) and residuals (``<coord>_residual``).

    ``purpose``: ``"cmc"`` (weak reserves that muscles outcompete) or ``"rra"`` (strong joint
    actuators that replace the muscles). Controls are bounded by ±``max_control``.
    """
    if purpose not in ("cmc", "rra"):
        raise ValueError(f"purpose must be 'cmc' or 'rra', not {purpose!r}")
    mass = info.mass_kg
    if reserve_optimal_force is None:
        reserve_optimal_force = CMC_RESERVE_OPTIMAL if purpose == "cmc" else RRA_ACTUATOR_NM_PER_KG * mass
    if residual_force_n is None:
        residual_force_n = RESIDUAL_FORCE_N_PER_KG * mass
    if residual_moment_nm is None:
        residual_moment_nm = RESIDUAL_MOMENT_NM_PER_KG * mass
    root_joint = info.floating_root()
    root = ET.Element("OpenSimDocument", Version="40000")
    fset = sx.sub(root, "ForceSet", name=f"{info.name}_{purpose}_actuators")
    objs = sx.sub(fset, "objects")
    for c in info.free_coordinates():
        if c["joint"] == root_joint:
            optimal = residual_force_n if c["motion"] == "translational" else residual_moment_nm
            _coordinate_actuator(objs, f"{c['name']}_residual", c["name"], optimal, -max_control, max_control)
        else:
            _coordinate_actuator(objs, f"{c['name']}_reserve", c["name"], reserve_optimal_force,
                                 -max_control, max_control)
    sx.sub(fset, "groups")
    return sx.write(ET.ElementTree(root), path)
