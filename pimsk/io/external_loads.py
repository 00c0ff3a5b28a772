"""OpenSim ExternalLoads XML: which columns of a GRF file act on which body.

Built with xml.etree in the layout OpenSim 4 writes (``OpenSimDocument Version="40000"`` >
``ExternalLoads`` > ``objects`` > ``ExternalForce``...) and read back the same way. The data file is
stored relative to the XML's folder when it lies on the same drive, as OpenSim's tools resolve it
from the XML's folder.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pimsk.errors import FileFormatError
from pimsk.io.grf_columns import grf_identifiers

OPENSIM_DOCUMENT_VERSION = "40000"


@dataclass
class ExternalForceSpec:
    """One ExternalForce: the columns (identifiers = label prefixes) applied to a model body.

    name: e.g. 'right'; applied_to_body: e.g. 'calcn_r'; force/point_expressed_in_body: frames of the
    force vector and of the point ('ground' for lab-frame GRFs); identifiers: e.g. 'ground_force_r_v',
    'ground_force_r_p', 'ground_torque_r_' (torque may be empty: no free moment).
    """

    name: str
    applied_to_body: str
    force_identifier: str
    point_identifier: str
    torque_identifier: str = ""
    force_expressed_in_body: str = "ground"
    point_expressed_in_body: str = "ground"
    data_source_name: str = ""

    @classmethod
    def for_side(cls, side: str, applied_to_body: str, name: str | None = None) -> "ExternalForceSpec":
        """Spec using pimsk's GRF column names (``grf_labels(side)``), e.g. for_side('r', 'calcn_r')."""
        force, point, torque = grf_identifiers(side)
        return cls(name=name or {"r": "right", "l": "left"}.get(side, f"force_{side}"),
                   applied_to_body=applied_to_body, force_identifier=force, point_identifier=point,
                   torque_identifier=torque)


@dataclass
class ExternalLoadsSpec:
    """Content of an ExternalLoads XML: name, GRF data file (absolute path), forces, and the
    optional (legacy) model-kinematics file and its low-pass cutoff in Hz (None: not set)."""

    name: str
    datafile: Path
    loads: list[ExternalForceSpec]
    model_kinematics_file: Path | None = None
    lowpass_cutoff_hz: float | None = None


_FIELDS = (
    "applied_to_body",
    "force_expressed_in_body",
    "point_expressed_in_body",
    "force_identifier",
    "point_identifier",
    "torque_identifier",
    "data_source_name",
)


def _rel(target: Path, folder: Path) -> str:
    """``target`` as written in the XML: a relative path is already relative to the XML's folder."""
    if not target.is_absolute():
        return target.as_posix()
    try:
        return Path(os.path.relpath(target.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(target.resolve())


def write_external_loads(
    path: str | Path,
    grf_file: str | Path,
    loads: list[ExternalForceSpec],
    *,
    name: str | None = None,
    model_kinematics_file: str | Path | None = None,
    lowpass_cutoff_hz: float | None = None,
) -> Path:
    """Write an ExternalLoads XML that ``opensim.ExternalLoads(path, True)`` loads; returns the path.

    grf_file: the .mot with the columns the identifiers name. A relative path is taken as relative to
    the XML's folder and written unchanged (e.g. 'grf.mot' beside the XML); an absolute path is
    written relative to the XML's folder, as OpenSim's tools resolve it from there.
    """
    path = Path(path)
    if not loads:
        raise FileFormatError("no external forces given", file=path, field="ExternalForce")
    names = [spec.name for spec in loads]
    if len(set(names)) != len(names):
        raise FileFormatError(f"duplicate ExternalForce names {names}", file=path, field="ExternalForce")
    for spec in loads:
        for field in ("name", "applied_to_body", "force_identifier", "point_identifier"):
            if not str(getattr(spec, field)).strip():
                raise FileFormatError(f"ExternalForce {spec.name!r} has an empty {field}", file=path, field=field)

    document = ET.Element("OpenSimDocument", Version=OPENSIM_DOCUMENT_VERSION)
    root = ET.SubElement(document, "ExternalLoads", name=name or path.stem)
    objects = ET.SubElement(root, "objects")
    for spec in loads:
        force = ET.SubElement(objects, "ExternalForce", name=spec.name)
        for field in _FIELDS:
            value = getattr(spec, field)
            if field == "data_source_name" and not value:
                continue
            ET.SubElement(force, field).text = value
    ET.SubElement(root, "groups")
    ET.SubElement(root, "datafile").text = _rel(Path(grf_file), path.parent)
    if model_kinematics_file is not None:
        ET.SubElement(root, "external_loads_model_kinematics_file").text = _rel(Path(model_kinematics_file),
                                                                                 path.parent)
    if lowpass_cutoff_hz is not None:
        ET.SubElement(root, "lowpass_cutoff_frequency_for_load_kinematics").text = repr(float(lowpass_cutoff_hz))
    ET.indent(document, space="\t")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(document).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def _text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def read_external_loads(path: str | Path) -> ExternalLoadsSpec:
    """Read an ExternalLoads XML (OpenSim 2.x-4.x layouts); the datafile is resolved from the XML's folder."""
    path = Path(path)
    try:
        tree = ET.parse(path)
    except FileNotFoundError:
        raise FileFormatError("ExternalLoads file not found", file=path) from None
    except ET.ParseError as exc:
        raise FileFormatError(f"not well-formed XML: {exc}", file=path) from None
    root = tree.getroot()
    loads_el = root if root.tag == "ExternalLoads" else root.find("ExternalLoads")
    if loads_el is None:
        raise FileFormatError("no <ExternalLoads> element", file=path, field="ExternalLoads")
    loads = []
    for force in loads_el.iter("ExternalForce"):
        if _text(force, "isDisabled").lower() == "true" or _text(force, "appliesForce").lower() == "false":
            continue
        values = {field: _text(force, field) for field in _FIELDS}
        if values["data_source_name"] == "Unassigned":
            values["data_source_name"] = ""
        for field in ("force_expressed_in_body", "point_expressed_in_body"):
            values[field] = values[field] or "ground"
        loads.append(ExternalForceSpec(name=force.get("name", ""), **values))
    datafile = _text(loads_el, "datafile")
    if not datafile:
        raise FileFormatError("no <datafile> (the GRF .mot)", file=path, field="datafile")
    kinematics = _text(loads_el, "external_loads_model_kinematics_file")
    cutoff = _text(loads_el, "lowpass_cutoff_frequency_for_load_kinematics")
    try:
        cutoff_hz = float(cutoff) if cutoff else None
    except ValueError:
        raise FileFormatError(f"cutoff {cutoff!r} is not a number", file=path,
                              field="lowpass_cutoff_frequency_for_load_kinematics") from None
    return ExternalLoadsSpec(
        name=loads_el.get("name", path.stem),
        datafile=(path.parent / datafile).resolve(),
        loads=loads,
        model_kinematics_file=(path.parent / kinematics).resolve() if kinematics else None,
        lowpass_cutoff_hz=cutoff_hz if cutoff_hz is None or cutoff_hz > 0 else None,
    )
