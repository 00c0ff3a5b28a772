"""A trial's model set-up from a subject file, and its --lock / --keep-muscles text (pimsk.osim.trial_model)."""

from __future__ import annotations

import pytest

from pimsk.errors import ConfigError
from pimsk.osim.trial_model import format_lock, format_muscles, parse_lock, parse_muscles, trial_setup


def _doc(trial_fields: dict | None = None, synth_fields: dict | None = None, static_fields: dict | None = None) -> dict:
    doc = {"id": "s1", "_file": "/x/subject.yaml", "static": {"name": "static", "file": "s.c3d", **(static_fields or {})},
           "trials": [{"name": "other", "file": "o.c3d"}, {"name": "t1", "file": "t1.c3d", **(trial_fields or {})}]}
    if synth_fields is not None:
        doc["synth"] = {"trials": {"t1": synth_fields}}
    return doc


def test_no_setup_keeps_the_model_as_it_is() -> None:
    setup = trial_setup(_doc(), "t1")
    assert setup.locked_deg == {} and setup.muscles is None and setup.empty
    assert trial_setup(_doc(), "static").empty


def test_synthetic_trial_takes_its_synth_setup() -> None:
    doc = _doc(synth_fields={"locked_coordinates_deg": {"hip_flexion_r": 60, "ankle_angle_r": 0},
                             "muscles": ["vas_int_r", "bifemsh_r"], "duration_s": 2.0})
    setup = trial_setup(doc, "t1")
    assert setup.locked_deg == {"hip_flexion_r": 60.0, "ankle_angle_r": 0.0}
    assert setup.muscles == ("vas_int_r", "bifemsh_r")
    assert setup.source == "synth.trials.t1.locked_coordinates_deg + synth.trials.t1.muscles"
    assert trial_setup(doc, "other").empty  # another trial's set-up does not leak


def test_trial_fields_take_precedence_field_by_field() -> None:
    doc = _doc(trial_fields={"muscles": ["a"]},
               synth_fields={"locked_coordinates_deg": {"q": 10}, "muscles": ["a", "b"]})
    setup = trial_setup(doc, "t1")
    assert setup.locked_deg == {"q": 10.0}  # from synth: the trial entry gives none
    assert setup.muscles == ("a",)  # the trial entry's own list wins
    assert "trials.1.muscles" in setup.source
    # an explicit empty lock on the trial frees what the synth set-up held
    assert trial_setup(_doc(trial_fields={"locked_coordinates_deg": {}},
                            synth_fields={"locked_coordinates_deg": {"q": 10}}), "t1").locked_deg == {}


@pytest.mark.parametrize("fields, field", [
    ({"muscles": []}, "trials.1.muscles"),
    ({"muscles": "vas_int_r"}, "trials.1.muscles"),
    ({"locked_coordinates_deg": {"q": "sixty"}}, "trials.1.locked_coordinates_deg"),
])
def test_bad_setup_names_the_field(fields: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        trial_setup(_doc(trial_fields=fields), "t1")
    assert err.value.field == field and err.value.trial == "t1" and err.value.file == "/x/subject.yaml"


def test_static_trial_refuses_a_setup() -> None:
    with pytest.raises(ConfigError) as err:
        trial_setup(_doc(static_fields={"locked_coordinates_deg": {"q": 1}}), "static")
    assert err.value.field == "static.locked_coordinates_deg"


def test_unknown_trial() -> None:
    with pytest.raises(ConfigError, match="no trial 'nope'"):
        trial_setup(_doc(), "nope")


def test_lock_and_muscle_text_round_trip() -> None:
    locked = {"hip_flexion_r": 60.0, "ankle_angle_r": -2.5, "pelvis_ty": 0.93}
    assert format_lock(locked) == "hip_flexion_r=60.0,ankle_angle_r=-2.5,pelvis_ty=0.93"
    assert parse_lock(format_lock(locked)) == locked
    assert parse_lock(" q1 = 1e-3 , ") == {"q1": 0.001}
    assert parse_lock(None) == {} and parse_lock("") == {} and format_lock({}) == ""
    assert format_muscles(("a", "b")) == "a,b" and parse_muscles("a, b,") == ("a", "b")
    assert parse_muscles("") is None and parse_muscles(None) is None and format_muscles(None) == ""


@pytest.mark.parametrize("text", ["hip_flexion_r", "hip_flexion_r=sixty", "=3", "a=1,b"])
def test_malformed_lock_names_the_option(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_lock(text)
    assert err.value.field == "--lock"
