"""OpenSim's published example pipelines (in ``../shared/data``), staged and run as published.

For reproduction tests and benchmarks only: :func:`stage` copies a pipeline's inputs into a writable
folder laid out the way its setup files expect (the models live elsewhere in opensim-models);
:func:`run_published` runs one setup with plain OpenSim in a child process, from the setup's own
folder, exactly as ``opensim-cmd run-tool`` would (no pimsk code involved), optionally with a few
top-level properties changed (a shorter time window).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pimsk.errors import OpenSimToolError, PimskError
from pimsk.osim import setup_xml as sx


@dataclass(frozen=True)
class Step:
    setup: str  # relative to the staged folder
    tool: str   # opensim class


PIPELINES: dict[str, dict[str, Step]] = {
    "gait10dof18musc": {
        "ik": Step("IK/walk_Setup_IK.xml", "InverseKinematicsTool"),
        "id": Step("ID/walk_Setup_ID.xml", "InverseDynamicsTool"),
        "rra": Step("RRA/walk_Setup_RRA.xml", "RRATool"),
        "cmc": Step("CMC/walk_Setup_CMC.xml", "CMCTool"),
    },
    "gait2354": {
        "scale": Step("subject01_Setup_Scale.xml", "ScaleTool"),
        "ik": Step("subject01_Setup_IK.xml", "InverseKinematicsTool"),
        "id": Step("subject01_Setup_InverseDynamics.xml", "InverseDynamicsTool"),
        "rra": Step("subject01_Setup_RRA.xml", "RRATool"),
        "cmc": Step("subject01_Setup_CMC.xml", "CMCTool"),
    },
    "arm26": {
        "ik": Step("arm26_Setup_InverseKinematics.xml", "InverseKinematicsTool"),
        "id": Step("arm26_Setup_InverseDynamics.xml", "InverseDynamicsTool"),
        "so": Step("arm26_Setup_StaticOptimization.xml", "AnalyzeTool"),
        "cmc": Step("arm26_Setup_ComputedMuscleControl.xml", "CMCTool"),
    },
}


def _copy(src: Path, dst: Path) -> None:
    """Copy file contents only (the shared data is read-only; the copies must be writable)."""
    if src.is_dir():
        for f in src.rglob("*"):
            if f.is_file():
                _copy(f, dst / f.relative_to(src))
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def stage(pipeline: str, data_root: str | Path, dest: str | Path, *, rra_reference_kinematics: bool = True) -> Path:
    """Copy ``pipeline``'s published inputs into ``dest`` (created) and return it.

    gait10dof18musc: the pipeline folder without OutputReference, ``subject01.osim`` beside the step
    folders; with ``rra_reference_kinematics`` the published RRA kinematics (CMC's input) in RRA/Results.
    gait2354: the pipeline folder without OutputReference, plus the generic ``gait2354_simbody.osim``.
    arm26: one flat folder with the tutorial's model and markers (InverseKinematics/) and the IK/ID/SO/CMC
    setups, tasks and reserves (OutputReference/, the only place the tutorial ships setups).
    """
    root = Path(data_root) / "opensim-models"
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if pipeline == "gait10dof18musc":
        src = root / "Pipelines" / "Gait10dof18musc"
        for item in src.iterdir():
            if item.name != "OutputReference":
                _copy(item, dest / item.name)
        _copy(root / "Models" / "Gait10dof18musc" / "subject01.osim", dest / "subject01.osim")
        if rra_reference_kinematics:
            _copy(src / "OutputReference" / "RRA" / "Results" / "subject_adjusted_Kinematics_q.sto",
                  dest / "RRA" / "Results" / "subject_adjusted_Kinematics_q.sto")
    elif pipeline == "gait2354":
        src = root / "Pipelines" / "Gait2354_Simbody"
        for item in src.iterdir():
            if item.name != "OutputReference":
                _copy(item, dest / item.name)
        _copy(root / "Models" / "Gait2354_Simbody" / "gait2354_simbody.osim", dest / "gait2354_simbody.osim")
    elif pipeline == "arm26":
        tut = root / "Tutorials" / "Computed_Muscle_Control"
        ref = tut / "OutputReference"
        # the tutorial's inputs (model + markers); OutputReference's .trc is an older one, 0.8 m off this model
        for f in ["arm26.osim", "arm26_elbow_flex.trc"]:
            _copy(tut / "InverseKinematics" / f, dest / f)
        for f in ["InverseKinematics/arm26_Setup_InverseKinematics.xml", "InverseDynamics/arm26_Setup_InverseDynamics.xml",
                  "StaticOptimization/arm26_Setup_StaticOptimization.xml",
                  "ComputedMuscleControl/arm26_Setup_ComputedMuscleControl.xml",
                  "ComputedMuscleControl/arm26_ComputedMuscleControl_Tasks.xml",
                  "ComputedMuscleControl/arm26_Reserve_Actuators.xml"]:
            _copy(ref / f, dest / Path(f).name)
    else:
        raise PimskError(f"unknown published pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
    return dest


_SCRIPT = (
    "import sys, opensim as o\n"
    "o.Logger.removeFileSink()\n"
    "o.Logger.setLevelString(sys.argv[3])\n"
    "ok = getattr(o, sys.argv[1])(sys.argv[2]).run()\n"
    "sys.exit(0 if ok else 3)\n"
)


def with_overrides(setup: str | Path, overrides: Mapping[str, str], suffix: str = "_pimsk") -> Path:
    """A copy of ``setup`` beside it with top-level tool properties replaced (tag -> text)."""
    setup = Path(setup)
    tree = sx.parse(setup)
    tool = sx.tool_element(tree, setup)
    for tag, value in overrides.items():
        el = tool.find(tag)
        if el is None:
            el = ET.SubElement(tool, tag)
        el.text = value
    out = setup.with_name(setup.stem + suffix + setup.suffix)
    tree.write(out, encoding="UTF-8", xml_declaration=True)
    return out


def run_published(setup: str | Path, tool: str, *, overrides: Mapping[str, str] | None = None,
                  log_file: str | Path | None = None, level: str = "info", timeout_s: float = 3600) -> float:
    """Run ``setup`` with plain OpenSim (``opensim.<tool>(setup).run()``) from its folder; wall time (s)."""
    setup = Path(setup).resolve()
    run_file = with_overrides(setup, overrides) if overrides else setup
    log = open(log_file, "a") if log_file else subprocess.DEVNULL
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _SCRIPT, tool, run_file.name, level], cwd=run_file.parent,
                              stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
    finally:
        if log_file:
            log.close()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise OpenSimToolError(f"published setup failed (exit {proc.returncode})", file=str(run_file))
    return wall
