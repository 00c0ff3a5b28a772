"""Setup XML handling without OpenSim: path resolution, expected outputs, generated CMC sets, IK tasks."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pimsk.errors import FileFormatError
from pimsk.io.containers import Table
from pimsk.osim import setup_xml as sx
from pimsk.osim.cmc_defaults import write_actuators, write_cmc_tasks
from pimsk.osim.compare import compare_tables, short_label
from pimsk.osim.ik_tasks import CoordinateTask, IKTasks, ik_task_set_element, read_ik_tasks
from pimsk.osim.model_info import ModelInfo

CMC_SETUP = """<?xml version="1.0" encoding="UTF-8" ?>
<OpenSimDocument Version="30000">
  <CMCTool name="walk">
    <model_file> ../subject01.osim </model_file>
    <force_set_files>../a.xml ../b.xml</force_set_files>
    <results_directory>Results</results_directory>
    <external_loads_file>../Exp/grf.xml</external_loads_file>
    <desired_kinematics_file>../RRA/q.sto</desired_kinematics_file>
    <task_set_file>tasks.xml</task_set_file>
    <constraints_file />
    <rra_controls_file>Unassigned</rra_controls_file>
    <final_time>1.9</final_time>
  </CMCTool>
</OpenSimDocument>"""


def test_resolve_setup_makes_inputs_absolute(tmp_path: Path) -> None:
    src = tmp_path / "pipe" / "CMC" / "setup.xml"
    src.parent.mkdir(parents=True)
    src.write_text(CMC_SETUP)
    out = tmp_path / "out"
    tree = sx.resolve_setup(src, out / "setup_cmc.xml", out, {"final_time": "0.7"})
    tool = sx.tool_element(tree)
    pipe = (tmp_path / "pipe").resolve()
    assert tool.findtext("model_file") == str(pipe / "subject01.osim")
    assert tool.findtext("force_set_files") == f"{pipe / 'a.xml'} {pipe / 'b.xml'}"
    assert tool.findtext("external_loads_file") == str(pipe / "Exp" / "grf.xml")
    assert tool.findtext("task_set_file") == str(pipe / "CMC" / "tasks.xml")
    assert (tool.findtext("constraints_file") or "") == ""
    assert tool.findtext("rra_controls_file") == "Unassigned"
    assert tool.findtext("results_directory") == str(out.resolve())
    assert tool.findtext("final_time") == "0.7"
    assert sx.tool_class(out / "setup_cmc.xml") == "CMCTool"
    assert [p.name for p in sx.expected_outputs(out / "setup_cmc.xml")] == [
        "walk_Actuation_force.sto", "walk_controls.sto", "walk_states.sto", "walk_Kinematics_q.sto"]


def test_not_a_setup_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "model.xml"
    f.write_text("<OpenSimDocument><Model name='m'/></OpenSimDocument>")
    with pytest.raises(FileFormatError, match="no OpenSim tool element"):
        sx.tool_class(f)
    (tmp_path / "broken.xml").write_text("<a>")
    with pytest.raises(FileFormatError, match="not valid XML"):
        sx.tool_class(tmp_path / "broken.xml")


def _coord(name: str, joint: str, motion: str = "rotational", **kw) -> dict:
    return {"name": name, "joint": joint, "parent": "", "child": "", "motion": motion, "locked": False,
            "prescribed": False, "dependent": False, "default_value": 0.0, "range": [-1, 1], **kw}


def _info() -> ModelInfo:
    coords = [_coord("pelvis_tilt", "ground_pelvis"), _coord("pelvis_tx", "ground_pelvis", "translational"),
              _coord("pelvis_ty", "ground_pelvis", "translational"), _coord("hip_flexion_r", "hip_r"),
              _coord("knee_angle_r", "knee_r"), _coord("knee_beta", "knee_r", dependent=True),
              _coord("mtp_angle_r", "mtp_r", locked=True)]
    return ModelInfo(name="m", mass_kg=70.0, gravity=[0, -9.81, 0], ground="ground", root_joints=["ground_pelvis"],
                     com_default_m=[0, 1, 0], coordinates=coords, markers=[], bodies={}, muscles=[], actuators=[])


def test_generated_tasks_track_free_coordinates_only(tmp_path: Path) -> None:
    path = write_cmc_tasks(_info(), tmp_path / "tasks.xml", weights={"pelvis_tx": 5.0})
    joints = {e.findtext("coordinate"): e for e in ET.parse(path).getroot().iter("CMC_Joint")}
    assert set(joints) == {"pelvis_tilt", "pelvis_tx", "pelvis_ty", "hip_flexion_r", "knee_angle_r"}
    assert float(joints["pelvis_tx"].findtext("weight")) == 5.0
    assert float(joints["knee_angle_r"].findtext("kv")) == pytest.approx(2 * math.sqrt(100.0))


def test_generated_actuators_reserves_and_mass_scaled_residuals(tmp_path: Path) -> None:
    cmc = {e.get("name"): float(e.findtext("optimal_force"))
           for e in ET.parse(write_actuators(_info(), tmp_path / "a.xml")).getroot().iter("CoordinateActuator")}
    assert cmc == {"pelvis_tilt_residual": pytest.approx(0.03 * 70), "pelvis_tx_residual": pytest.approx(0.1 * 70),
                   "pelvis_ty_residual": pytest.approx(0.1 * 70), "hip_flexion_r_reserve": 1.0,
                   "knee_angle_r_reserve": 1.0}
    rra = {e.get("name"): float(e.findtext("optimal_force"))
           for e in ET.parse(write_actuators(_info(), tmp_path / "r.xml", purpose="rra")).getroot()
           .iter("CoordinateActuator")}
    assert rra["knee_angle_r_reserve"] == pytest.approx(4.0 * 70)


def test_ik_tasks_round_trip(tmp_path: Path) -> None:
    tasks = IKTasks(markers={"A": 1.0, "B": 0.0, "C": 20.0},
                    coordinates={"mtp": CoordinateTask(weight=2.0, value_type="manual_value", value=0.1)})
    root = ET.Element("OpenSimDocument")
    ET.SubElement(root, "InverseKinematicsTool").append(ik_task_set_element(tasks))
    f = tmp_path / "setup.xml"
    ET.ElementTree(root).write(f)
    back = read_ik_tasks(f)
    assert back.markers == tasks.markers and back.used_markers() == {"A": 1.0, "C": 20.0}
    assert back.coordinates["mtp"] == tasks.coordinates["mtp"]


def test_compare_tables_shared_grid_and_interpolation() -> None:
    t = np.linspace(0, 1, 11)
    a = Table(time_s=t, data=np.c_[t, 2 * t], labels=["/jointset/j/q/value", "f"])
    b = Table(time_s=t, data=np.c_[t + 0.01, 2 * t], labels=["q", "f"])
    diffs = {d.label: d for d in compare_tables(a, b)}
    assert diffs["q"].max_abs == pytest.approx(0.01) and diffs["f"].max_abs == 0.0
    fine = np.linspace(0, 1, 101)
    c = Table(time_s=fine, data=np.c_[fine, 2 * fine], labels=["q", "f"])
    assert max(d.max_abs for d in compare_tables(a, c)) < 1e-12  # linear data, interpolated exactly
    assert short_label("/forceset/soleus_r/activation") == "soleus_r.activation"
