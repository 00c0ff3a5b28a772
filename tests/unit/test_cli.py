"""The `pimsk` command: help lists verbs, errors are one line with a non-zero exit."""

import subprocess
import sys

from pimsk.cli import VERBS, main


def test_help_lists_every_verb(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


def test_unknown_verb_is_one_line_error(capsys) -> None:
    assert main(["no-such-verb"]) == 2
    err = capsys.readouterr().err
    assert "unknown verb" in err and "Traceback" not in err


def test_python_m_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "pimsk", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "VERB" in proc.stdout
