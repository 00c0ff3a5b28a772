"""States-header repair on hand-corrupted copies of OpenSim-format states files (no OpenSim needed).

OpenSim 4.6 writes ``<name>\\nversion=1\\nnRows=N\\nnColumns=C\\ninDegrees=no\\nendheader\\n<labels>`` and, at
process exit, flushes a 65-byte stub (below) over the head of the file. How much of the label line the
stub eats depends on the length of the original header (tool name, row and column counts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pimsk.errors import FileFormatError
from pimsk.osim.sto_repair import header_is_damaged, repair_states_header
from pimsk.osim.storage import read_storage

STUB = b"UNKNOWN\nversion=1\nnRows=0\nnColumns=1\ninDegrees=no\nendheader\ntime\n"


def _pristine(name: str, n_rows: int, labels: list[str]) -> bytes:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(n_rows, len(labels) + 1))
    data[:, 0] = np.arange(n_rows) * 0.01
    head = [name, "version=1", f"nRows={n_rows}", f"nColumns={len(labels) + 1}", "inDegrees=no", "endheader",
            "\t".join(["time", *labels])]
    rows = ["\t".join(f"{v:16.8f}" for v in row) for row in data]
    return ("\n".join(head + rows) + "\n").encode()


def _corrupt(raw: bytes) -> bytes:
    return STUB + raw[len(STUB):]


LABELS = ["/jointset/r_shoulder/r_shoulder_elev/value", "/jointset/r_shoulder/r_shoulder_elev/speed",
          "/forceset/BIClong/activation", "/forceset/BIClong/fiber_length"]


@pytest.mark.parametrize("name,n_rows", [
    ("walk_subject", 115),  # header longer than the stub: junk line ("der") left between, labels intact
    ("arm26", 311),         # stub ends exactly on "time": label line starts with a tab
    ("cmc", 115),           # short header: "time\t/" of the label line is lost
    ("cmc", 5),             # shorter: "time\t/j" lost, "/j" restored from the other paths
    ("x", 3),               # shortest: "time\t/joints" lost
])
def test_repair_restores_the_file_byte_for_byte(tmp_path: Path, name: str, n_rows: int) -> None:
    raw = _pristine(name, n_rows, LABELS)
    f = tmp_path / f"{name}_states.sto"
    f.write_bytes(_corrupt(raw))
    assert header_is_damaged(f)
    assert repair_states_header(f, name=name) is True
    assert f.read_bytes() == raw
    t = read_storage(f)
    assert t.labels == LABELS and t.n_frames == n_rows


def test_intact_file_is_left_alone(tmp_path: Path) -> None:
    raw = _pristine("cmc", 20, LABELS)
    f = tmp_path / "cmc_states.sto"
    f.write_bytes(raw)
    assert not header_is_damaged(f)
    assert repair_states_header(f) is False
    assert f.read_bytes() == raw


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    f = tmp_path / "trial3_states.sto"
    f.write_bytes(_corrupt(_pristine("whatever_long_name", 50, LABELS)))
    repair_states_header(f)
    assert f.read_text().splitlines()[0] == "trial3"


def test_unrecoverable_labels_raise(tmp_path: Path) -> None:
    """A 1-letter name with tiny counts: the stub eats past the first label into the second."""
    raw = _pristine("x", 3, ["/a/q", "/a/u", "/a/v"])
    f = tmp_path / "x_states.sto"
    f.write_bytes(_corrupt(raw))
    with pytest.raises(FileFormatError, match="cannot repair"):
        repair_states_header(f, name="x")


def test_ragged_data_rows_raise(tmp_path: Path) -> None:
    raw = _corrupt(_pristine("walk_subject", 10, LABELS)) + b"  1.0\t2.0\n"
    f = tmp_path / "walk_subject_states.sto"
    f.write_bytes(raw)
    with pytest.raises(FileFormatError, match="data row"):
        repair_states_header(f, name="walk_subject")
