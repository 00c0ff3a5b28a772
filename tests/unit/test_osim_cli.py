"""The OpenSim verbs check their arguments before starting OpenSim (no OpenSim needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pimsk.cli import VERBS, main


@pytest.mark.parametrize("verb,missing", [
    ("ik", "--model, --trc"), ("id", "--model, --coordinates"), ("so", "--model, --coordinates"),
    ("cmc", "--model, --kinematics"), ("rra", "--model, --kinematics"),
    ("scale", "--model, --trc, --mass-kg, --measurements"),
])
def test_missing_inputs_are_named(verb: str, missing: str, tmp_path: Path, capsys) -> None:
    assert verb in VERBS
    assert main([verb, "--out", str(tmp_path), "--subject", "s01"]) == 2
    err = capsys.readouterr().err
    assert f"{missing} required unless --setup is given" in err and "subject s01" in err


def test_setup_that_is_not_a_tool_is_one_line_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "model.osim"
    bad.write_text("<OpenSimDocument><Model name='m'/></OpenSimDocument>")
    assert main(["id", "--setup", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no OpenSim tool element" in err and "Traceback" not in err
