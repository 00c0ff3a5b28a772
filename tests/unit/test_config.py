"""Subject-file validation: errors name the file and the field."""

from pathlib import Path

import pytest

from pimsk.config import load_subject, resolve_path
from pimsk.errors import ConfigError

GOOD = """
id: s01
mass_kg: 72.6
height_m: 1.80
model: builtin:leg
trials:
  - {name: walk1, file: walk1.c3d, plates: {"1": r, "2": l}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "subject.yaml"
    p.write_text(text)
    return p


def test_valid_subject_loads(tmp_path: Path) -> None:
    doc = load_subject(_write(tmp_path, GOOD))
    assert doc["id"] == "s01" and doc["trials"][0]["plates"] == {"1": "r", "2": "l"}


def test_height_in_mm_is_rejected_naming_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_subject(_write(tmp_path, GOOD.replace("height_m: 1.80", "height_m: 1803")))
    assert exc.value.field == "height_m"
    assert "subject.yaml" in str(exc.value)


def test_bad_plate_side_names_nested_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_subject(_write(tmp_path, GOOD.replace('"2": l', '"2": left')))
    assert exc.value.field == "trials.0.plates"


def test_unknown_key_and_yaml_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mass_lb"):
        load_subject(_write(tmp_path, GOOD + "mass_lb: 160\n"))
    with pytest.raises(ConfigError) as exc:
        load_subject(_write(tmp_path, "id: [unclosed\n"))
    assert "line" in (exc.value.field or "")


def test_duplicate_trials(tmp_path: Path) -> None:
    text = GOOD + "  - {name: walk1, file: other.c3d}\n"
    with pytest.raises(ConfigError, match="duplicate"):
        load_subject(_write(tmp_path, text))


def test_resolve_path_data_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIMSK_DATA", str(tmp_path))
    assert resolve_path("${PIMSK_DATA}/a.c3d", Path("/x")) == tmp_path / "a.c3d"
    assert resolve_path("b.c3d", tmp_path) == tmp_path / "b.c3d"
