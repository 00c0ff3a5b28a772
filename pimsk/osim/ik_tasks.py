"""IK task sets (marker weights, coordinate tasks) as plain data, read from and written to XML.

Used by Scale (marker placement), IK and the marker-error tables, so all three weigh markers alike.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from pimsk.errors import ConfigError
from pimsk.osim import setup_xml as sx


@dataclass
class CoordinateTask:
    """Keep a coordinate near a value: ``default_value`` (the model's), ``manual_value`` (``value``, rad
    or m as the coordinate), or ``from_file`` (the IK ``coordinate_file``)."""

    weight: float = 1.0
    value_type: str = "default_value"
    value: float = 0.0
    apply: bool = True


@dataclass
class IKTasks:
    """Marker weights (name -> weight; 0 or absent = unused) and coordinate tasks."""

    markers: dict[str, float] = field(default_factory=dict)
    coordinates: dict[str, CoordinateTask] = field(default_factory=dict)

    def used_markers(self) -> dict[str, float]:
        return {k: w for k, w in self.markers.items() if w > 0}

    def to_json(self) -> dict:
        return {"markers": self.used_markers(),
                "coordinates": {k: vars(v) for k, v in self.coordinates.items()}}

    @classmethod
    def from_mapping(cls, data: dict, source: str = "") -> IKTasks:
        """From ``{"markers": {name: weight}, "coordinates": {name: {weight, value_type, value}}}``."""
        try:
            markers = {str(k): float(v) for k, v in (data.get("markers") or {}).items()}
            coords = {str(k): CoordinateTask(**v) if isinstance(v, dict) else CoordinateTask(weight=float(v))
                      for k, v in (data.get("coordinates") or {}).items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad IK tasks: {exc}", file=source or None, field="ik_tasks") from None
        return cls(markers=markers, coordinates=coords)


def read_ik_tasks(path: str | Path, parent: str | None = None) -> IKTasks:
    """The IKTaskSet of a setup (IK tool, or the ``MarkerPlacer`` of a Scale setup: ``parent="MarkerPlacer"``)
    or of a bare IKTaskSet file. Tasks with ``apply`` false get weight 0."""
    tree = sx.parse(path)
    root = tree.getroot()
    scope = root.find(f".//{parent}") if parent else root
    if scope is None:
        raise ConfigError(f"no <{parent}> element", file=str(path), field=parent)
    tset = scope if scope.tag == "IKTaskSet" else scope.find(".//IKTaskSet")
    if tset is None:
        raise ConfigError("no <IKTaskSet>", file=str(path), field="IKTaskSet")
    tasks = IKTasks()
    for el in tset.iter():
        if el.tag not in ("IKMarkerTask", "IKCoordinateTask"):
            continue
        name = el.get("name", "").strip()
        apply = el.findtext("apply", "true").strip().lower() != "false"
        weight = float(el.findtext("weight", "1").split()[0]) if apply else 0.0
        if el.tag == "IKMarkerTask":
            tasks.markers[name] = weight
        else:
            tasks.coordinates[name] = CoordinateTask(
                weight=weight, apply=apply, value_type=el.findtext("value_type", "default_value").strip(),
                value=float(el.findtext("value", "0").split()[0]))
    return tasks


def load_ik_tasks(path: str | Path) -> IKTasks:
    """IK tasks from a JSON/YAML mapping (see :meth:`IKTasks.from_mapping`), an IKTaskSet XML, an IK
    setup, or a Scale setup (its MarkerPlacer tasks)."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        return IKTasks.from_mapping(_load_mapping(path), source=str(path))
    tree = sx.parse(path)
    parent = "MarkerPlacer" if tree.getroot().find(".//MarkerPlacer") is not None else None
    return read_ik_tasks(path, parent)


def _load_mapping(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", file=str(path))
    return data


def ik_task_set_element(tasks: IKTasks, name: str = "tasks") -> ET.Element:
    """``<IKTaskSet>`` with one IKMarkerTask per marker (apply = weight > 0) and the coordinate tasks."""
    tset = ET.Element("IKTaskSet", name=name)
    objs = sx.sub(tset, "objects")
    for marker, w in tasks.markers.items():
        t = sx.sub(objs, "IKMarkerTask", name=marker)
        sx.sub(t, "apply", w > 0)
        sx.sub(t, "weight", float(w))
    for coord, ct in tasks.coordinates.items():
        t = sx.sub(objs, "IKCoordinateTask", name=coord)
        sx.sub(t, "apply", ct.apply and ct.weight > 0)
        sx.sub(t, "weight", float(ct.weight))
        sx.sub(t, "value_type", ct.value_type)
        sx.sub(t, "value", float(ct.value))
    sx.sub(tset, "groups")
    return tset


def write_tasks_json(tasks: IKTasks, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(tasks.to_json(), indent=1))
    return path
