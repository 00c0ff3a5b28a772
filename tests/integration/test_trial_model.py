"""The trial's model written with OpenSim (pimsk.osim.trial_model.write_trial_model) and the verbs' --lock /
--keep-muscles options, on the code-built wrist model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pimsk.errors import ConfigError

pytestmark = pytest.mark.opensim


@pytest.fixture(scope="module")
def wrist_model(tmp_path_factory, opensim_module) -> Path:
    from pimsk.osim.models import build_wrist_model

    path = tmp_path_factory.mktemp("trial_model") / "wrist.osim"
    build_wrist_model(path)
    return path


def _forces(model) -> list[str]:
    fs = model.getForceSet()
    return [fs.get(i).getName() for i in range(fs.getSize())]


def test_locks_coordinates_and_keeps_the_muscle_subset(wrist_model, tmp_path, opensim_module) -> None:
    osim = opensim_module
    from pimsk.osim.trial_model import write_trial_model

    generic = osim.Model(str(wrist_model))
    muscles = [generic.getMuscles().get(i).getName() for i in range(generic.getMuscles().getSize())]
    others = [f for f in _forces(generic) if f not in muscles]
    out = write_trial_model(wrist_model, tmp_path / "m.osim", locked_deg={"wrist_flexion_r": -12.5},
                            muscles=["ECU", "FCR"], trial="t1")
    m = osim.Model(str(out))
    state = m.initSystem()
    c = m.getCoordinateSet().get("wrist_flexion_r")
    assert c.getDefaultLocked() and c.getLocked(state)
    assert c.getValue(state) == pytest.approx(math.radians(-12.5), abs=1e-12)
    kept = {m.getMuscles().get(i).getName() for i in range(m.getMuscles().getSize())}
    assert kept == {"ECU", "FCR"}
    assert [f for f in _forces(m) if f not in kept] == others  # every other force stays
    assert m.getName().endswith("_t1")
    assert len(muscles) > 2  # the subset removed something


@pytest.mark.parametrize("kwargs, field, word", [
    ({"locked_deg": {"knee_angle_r": 10.0}, "muscles": None}, "--lock", "wrist_flexion_r"),
    ({"locked_deg": {}, "muscles": ["FCR", "soleus_r"]}, "--keep-muscles", "ECRB"),
])
def test_unknown_names_raise_naming_the_option_and_the_model(wrist_model, tmp_path, kwargs, field, word) -> None:
    from pimsk.osim.trial_model import write_trial_model

    with pytest.raises(ConfigError) as err:
        write_trial_model(wrist_model, tmp_path / "m.osim", subject="s1", trial="t1", **kwargs)
    assert err.value.field == field and err.value.file == str(wrist_model)
    assert word in (err.value.hint or "")  # the hint lists what the model has
    assert not (tmp_path / "m.osim").exists()


def test_verb_option_fails_in_one_line_before_running_a_tool(wrist_model, tmp_path, capsys) -> None:
    from pimsk.cli import main

    rc = main(["id", "--model", str(wrist_model), "--coordinates", str(tmp_path / "none.mot"), "--out",
               str(tmp_path / "id"), "--lock", "elbow_flexion=30", "--subject", "s1", "--trial", "t1"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err and "elbow_flexion" in err and "--lock" in err
    assert not (tmp_path / "id" / "moments.sto").exists()
