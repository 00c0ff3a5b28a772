"""OpenSim setup XML without OpenSim: which tool a file sets up, resolve its paths, build elements.

Everything here is plain ``xml.etree``; the OpenSim tools read what it writes. Paths in a setup are
resolved the way OpenSim resolves them when the tool runs from the setup's own folder (inputs relative
to that folder, or to ``input_directory`` where one is given).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pimsk.errors import FileFormatError

#: root element of a setup -> opensim class that runs it
TOOL_CLASSES: dict[str, str] = {
    "ScaleTool": "ScaleTool",
    "InverseKinematicsTool": "InverseKinematicsTool",
    "InverseDynamicsTool": "InverseDynamicsTool",
    "AnalyzeTool": "AnalyzeTool",
    "CMCTool": "CMCTool",
    "RRATool": "RRATool",
    "ForwardTool": "ForwardTool",
}

#: elements naming input files (relative to the setup's folder); force_set_files may hold several
INPUT_TAGS = frozenset({
    "model_file", "marker_set_file", "marker_file", "coordinate_file", "coordinates_file", "states_file",
    "speeds_file", "external_loads_file", "desired_points_file", "desired_kinematics_file", "task_set_file",
    "constraints_file", "rra_controls_file", "controls_file", "force_set_files",
    "external_loads_model_kinematics_file",
})

#: elements naming outputs: left relative (they land beside the resolved setup, where the tool runs)
OUTPUT_TAGS = frozenset({
    "output_model_file", "output_scale_file", "output_motion_file", "output_marker_file",
    "output_gen_force_file", "output_body_forces_file",
})

_EMPTY = {"", "unassigned"}


def is_unset(text: str | None) -> bool:
    """True for an empty or ``Unassigned`` path field."""
    return text is None or text.strip().lower() in _EMPTY


def parse(path: str | Path) -> ET.ElementTree:
    """Parse a setup/XML file; a malformed file raises FileFormatError naming it."""
    try:
        return ET.parse(path)
    except FileNotFoundError:
        raise FileFormatError("setup file not found", file=str(path)) from None
    except ET.ParseError as exc:
        raise FileFormatError(f"not valid XML: {exc}", file=str(path)) from None


def tool_element(tree: ET.ElementTree, path: str | Path = "") -> ET.Element:
    """The tool element (first child of ``OpenSimDocument`` or the root itself)."""
    root = tree.getroot()
    candidates = [root] + list(root)
    for el in candidates:
        if el.tag in TOOL_CLASSES:
            return el
    raise FileFormatError(
        f"no OpenSim tool element found (root <{root.tag}>); expected one of {', '.join(TOOL_CLASSES)}",
        file=str(path),
    )


def tool_class(path: str | Path) -> str:
    """Name of the opensim class that runs this setup (e.g. ``CMCTool``)."""
    return TOOL_CLASSES[tool_element(parse(path), path).tag]


def text_of(el: ET.Element, tag: str, default: str = "") -> str:
    """Stripped text of the first ``tag`` below ``el`` (any depth), or ``default``."""
    found = el.find(f".//{tag}")
    if found is None or found.text is None:
        return default
    return found.text.strip()


def _resolve_list(text: str, base: Path) -> str:
    return " ".join(str((base / p).resolve()) for p in text.split())


def resolve_setup(
    src: str | Path,
    dst: str | Path,
    results_dir: str | Path,
    overrides: Mapping[str, str] | None = None,
) -> ET.ElementTree:
    """Write ``dst``: the setup ``src`` with absolute input paths and ``results_directory`` = ``results_dir``.

    Output file names stay relative: the runner runs the tool from ``dst``'s folder, where they land.
    ``overrides`` sets top-level tool properties (tag -> text), e.g. ``{"final_time": "0.7"}``.
    """
    src = Path(src).resolve()
    tree = parse(src)
    tool = tool_element(tree, src)
    base = src.parent
    input_dir = tool.find("input_directory")
    if input_dir is not None:
        if not is_unset(input_dir.text):
            base = (base / input_dir.text.strip()).resolve()
        input_dir.text = ""
    for el in tool.iter():
        if el.tag in INPUT_TAGS and not is_unset(el.text):
            el.text = _resolve_list(el.text, base) if el.tag == "force_set_files" else str(
                (base / el.text.strip()).resolve())
    res = tool.find("results_directory")
    if res is None:
        res = ET.SubElement(tool, "results_directory")
    res.text = str(Path(results_dir).resolve())
    for tag, value in (overrides or {}).items():
        el = tool.find(tag)
        if el is None:
            el = ET.SubElement(tool, tag)
        el.text = value
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    tree.write(dst, encoding="UTF-8", xml_declaration=True)
    return tree


def expected_outputs(setup: str | Path) -> list[Path]:
    """Files a resolved setup must produce (absolute), as far as the setup itself says.

    IK: output motion; ID: generalized forces; Scale: the scaled/placed models it is told to write;
    Analyze with StaticOptimization: activations and forces; CMC/RRA: forces, controls, states, q.
    """
    setup = Path(setup).resolve()
    tree = parse(setup)
    tool = tool_element(tree, setup)
    here = setup.parent
    res_text = text_of(tool, "results_directory")
    res = (here / res_text) if res_text else here
    name = tool.get("name", "").strip()
    out: list[Path] = []

    def add(base: Path, text: str) -> None:
        if not is_unset(text):
            out.append((base / text.strip()).resolve())

    if tool.tag == "InverseKinematicsTool":
        add(here, tool.findtext("output_motion_file", ""))
    elif tool.tag == "InverseDynamicsTool":
        add(res, tool.findtext("output_gen_force_file", ""))
    elif tool.tag == "ScaleTool":
        for part in ("ModelScaler", "MarkerPlacer"):
            el = tool.find(part)
            if el is not None and el.findtext("apply", "true").strip().lower() != "false":
                add(here, el.findtext("output_model_file", ""))
    elif tool.tag == "AnalyzeTool":
        for so in tool.iter("StaticOptimization"):
            if so.findtext("on", "true").strip().lower() != "false":
                out += [res / f"{name}_StaticOptimization_activation.sto",
                        res / f"{name}_StaticOptimization_force.sto"]
    elif tool.tag in ("CMCTool", "RRATool"):
        out += [res / f"{name}_{s}.sto" for s in ("Actuation_force", "controls", "states", "Kinematics_q")]
        if tool.tag == "RRATool" and tool.findtext("adjust_com_to_reduce_residuals", "false").strip() == "true":
            add(here, tool.findtext("output_model_file", ""))
    elif tool.tag == "ForwardTool":
        out.append(res / f"{name}_states.sto")
    return out


# ---------------------------------------------------------------- building elements


def fmt(value: float | int | bool | str) -> str:
    """OpenSim text for a scalar: bools as true/false, infinities as Inf/-Inf, floats with repr precision."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


def sub(parent: ET.Element, tag: str, value: object = None, **attrib: str) -> ET.Element:
    """Append ``<tag>value</tag>``; sequences become space-separated lists; paths become absolute."""
    el = ET.SubElement(parent, tag, attrib)
    if value is None:
        return el
    if isinstance(value, Path):
        el.text = str(value.resolve())
    elif isinstance(value, (list, tuple)):
        el.text = " ".join(fmt(v) for v in value)
    else:
        el.text = fmt(value)
    return el


def document(tool_tag: str, name: str) -> tuple[ET.ElementTree, ET.Element]:
    """A new ``OpenSimDocument`` holding one ``<tool_tag name=...>``."""
    root = ET.Element("OpenSimDocument", Version="40000")
    tool = ET.SubElement(root, tool_tag, name=name)
    return ET.ElementTree(root), tool


def write(tree: ET.ElementTree, path: str | Path) -> Path:
    """Write an XML document (indented) and return its absolute path."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(tree, space="\t")
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def analysis_set(parent: ET.Element, analyses: Iterable[ET.Element] = ()) -> ET.Element:
    """``<AnalysisSet name="Analyses">`` with the given analysis elements."""
    aset = sub(parent, "AnalysisSet", name="Analyses")
    objs = sub(aset, "objects")
    for a in analyses:
        objs.append(a)
    sub(aset, "groups")
    return aset


def empty_controller_set(parent: ET.Element) -> ET.Element:
    cset = sub(parent, "ControllerSet", name="Controllers")
    sub(cset, "objects")
    sub(cset, "groups")
    return cset


def paths_text(paths: Sequence[str | Path]) -> str:
    return " ".join(str(Path(p).resolve()) for p in paths)
