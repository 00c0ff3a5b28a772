"""read_c3d on the real C3D files of ../shared/data.

Golden values come from outside the code under test: the data provider's C3D_READ_REPORT.txt (what ezc3d 1.7.2
and c3d 0.6.0 read from each file), the files' own channel labels, the C3D spec's analog formula applied to the
unmodified file, and the other encodings of the same recording (kineticstoolkit Sample01/Sample02).
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pimsk.errors import C3DError
from pimsk.io._c3d_mutate import minimal_c3d, parameter_entries, replace_parameter
from pimsk.io.c3d_read import read_c3d, shutdown_worker
from pimsk.io._c3d_worker import FAULT_ENV

pytestmark = pytest.mark.data

SUITE = "kineticstoolkit/data/c3d_test_suite"
SAMPLE01 = ["Eb015pi", "Eb015pr", "Eb015vi", "Eb015vr"]  # Intel/DEC x int/real
SAMPLE02 = ["dec_int", "dec_real", "pc_int", "pc_real", "sgi_int", "sgi_real"]
UNIPD = "motonms/TestData/InputData/Control1_UNIPD/2012_10_17"
UWA_FAST = "motonms/TestData/InputData/Control1_UWA/2010/Fast Walking.c3d"
UNIT_M = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}


# --------------------------------------------------------------------------------------------- the report
def _report(data_dir: Path) -> dict[str, dict[str, object]]:
    """C3D_READ_REPORT.txt as {relative path: {'ezc3d': {...} | None, 'points': [...], 'analogs': [...]}}."""
    out: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    for line in (data_dir / "C3D_READ_REPORT.txt").read_text().splitlines():
        if line.startswith("== "):
            rel = line[3:].rsplit(" ", 1)[0].removeprefix("./")
            current = out.setdefault(rel, {"ezc3d": None, "points": None, "analogs": None})
        elif current is None:
            continue
        elif line.startswith("  ezc3d OK:"):
            current["ezc3d"] = dict(re.findall(r"(\w+)=(\S+)", line))
        elif line.startswith("  point labels:"):
            current["points"] = line.split(":", 1)[1][1:].split(",")
        elif line.startswith("  analog labels:"):
            current["analogs"] = line.split(":", 1)[1][1:].split(",")
    return out


@pytest.fixture(scope="module")
def report(data_dir: Path) -> dict[str, dict[str, object]]:
    return _report(data_dir)


REPORTED = [
    f"{SUITE}/Sample01/Eb015pi.c3d",
    f"{SUITE}/Sample02/dec_real.c3d",
    f"{SUITE}/ezc3d/BTS.c3d",
    f"{SUITE}/ezc3d/Qualisys.c3d",
    f"{UNIPD}/Static1.c3d",
    f"{UNIPD}/Walking1.c3d",
    UWA_FAST,
    "opensim-core/OpenSim/Tests/shared/walking2.c3d",
    "pyomeca/tests/data/markers_analogs.c3d",
]


@pytest.mark.parametrize("rel", REPORTED)
def test_matches_the_data_report(data_dir: Path, report, rel: str) -> None:
    """Rates, counts, units, plates and labels agree with what the data provider recorded for ezc3d."""
    expected = report[rel]
    info = expected["ezc3d"]
    data = read_c3d(data_dir / rel)
    assert data.reader == "ezc3d"
    assert data.point_rate_hz == pytest.approx(float(info["point_rate"]))
    assert data.analog_rate_hz == pytest.approx(float(info["analog_rate"]))
    assert data.markers.xyz.shape[:2] == (int(info["frames"]), int(info["n_points"]))
    assert data.analog.shape[1] == int(info["n_analog"])
    assert data.markers.units == info["units"]
    assert len(data.plates) == int(info["fp"])
    n_points, n_analog = int(info["n_points"]), int(info["n_analog"])
    want_points = [p or f"point{i + 1}" for i, p in enumerate(expected["points"][:n_points])]
    want_analog = [a or f"analog{i + 1}" for i, a in enumerate(expected["analogs"][:n_analog])]
    assert data.markers.labels == want_points
    assert data.analog_labels == want_analog


# ---------------------------------------------------------------------------------- hand-built file
@pytest.mark.parametrize("reader", ["ezc3d", "c3d"])
def test_hand_built_file(tmp_path: Path, reader: str) -> None:
    """A C3D written by hand: values, NaN for a negative residual, padded and duplicated labels, time axis."""
    xyz = np.arange(3 * 2 * 3, dtype=float).reshape(3, 2, 3) * 10.5
    residual = np.array([[0.5, 0.0], [-1.0, 1.0], [0.0, 0.0]])  # point 1 invalid in frame 2
    path = tmp_path / "hand.c3d"
    path.write_bytes(minimal_c3d(xyz, residual, ["LASI", "LASI"], rate_hz=50.0))
    data = read_c3d(path, readers=(reader,))
    expected = xyz.copy()
    expected[1, 0] = np.nan
    np.testing.assert_array_equal(data.markers.xyz, expected)
    assert data.markers.labels == ["LASI", "LASI_2"]
    assert data.markers.units == "mm" and data.point_rate_hz == 50.0
    np.testing.assert_allclose(data.markers.time_s, [0.0, 0.02, 0.04])
    assert data.analog.shape == (0, 0) and data.plates == [] and data.events == []


# ------------------------------------------------------------------------------------- encodings agree
def _suite(data_dir: Path, sample: str, names: list[str]):
    return {name: read_c3d(data_dir / SUITE / sample / f"{name}.c3d") for name in names}


@pytest.mark.parametrize("sample,names", [("Sample01", SAMPLE01), ("Sample02", SAMPLE02)])
def test_every_encoding_gives_the_same_data(data_dir: Path, sample: str, names: list[str]) -> None:
    """Same markers (metres), NaN pattern, labels, analog and plates in every encoding of one recording.

    Tolerance for markers: one count of the integer encoding, |POINT:SCALE| (0.0833 mm in Sample01,
    0.281 mm in Sample02), plus 1e-6 m for float32 round-off. It is needed: the suite's integer files were
    written independently and differ from the float ones by exactly one count at a few samples (59 of 9612
    coordinates in Sample02's pc_int/sgi_int). Analog: every encoding stores the same ADC counts, so channels
    must agree to 1e-3 of one count (|SCALE * GEN_SCALE|).
    """
    files = _suite(data_dir, sample, names)
    ref = files[names[0]]
    ref_m = ref.markers.xyz * UNIT_M[ref.markers.units]
    count_m = abs(float(np.asarray(ref.parameters["POINT:SCALE"]).reshape(-1)[0])) * UNIT_M[ref.markers.units]
    n_channels = ref.analog.shape[1]
    scale = np.asarray(ref.parameters["ANALOG:SCALE"], dtype=float)[:n_channels]
    gen = float(np.asarray(ref.parameters["ANALOG:GEN_SCALE"]).reshape(-1)[0])
    analog_tol = 1e-3 * np.abs(scale * gen) + 1e-12
    for name, data in files.items():
        assert data.reader == ("c3d" if name.startswith("sgi") else "ezc3d"), name
        xyz_m = data.markers.xyz * UNIT_M[data.markers.units]
        assert xyz_m.shape == ref_m.shape, name
        assert np.array_equal(np.isnan(xyz_m), np.isnan(ref_m)), name
        assert np.nanmax(np.abs(xyz_m - ref_m)) <= count_m + 1e-6, name
        assert data.markers.labels == ref.markers.labels, name
        assert data.analog_labels == ref.analog_labels, name
        assert data.analog.shape == ref.analog.shape, name
        assert np.all(np.abs(data.analog - ref.analog) <= analog_tol), name
        assert [(p.plate_type, p.channels) for p in data.plates] == [(p.plate_type, p.channels) for p in ref.plates]
        for p, q in zip(data.plates, ref.plates):
            np.testing.assert_allclose(p.corners_lab, q.corners_lab, atol=1e-3, err_msg=name)
    # The suite has invalid samples: they must be NaN, not zeros.
    assert np.isnan(ref_m).any()


def test_sample01_extra_blank_labels_are_dropped(data_dir: Path, report) -> None:
    """Sample01 stores 48 POINT:LABELS (10 blank) for 26 points: exactly the first 26 name the points."""
    data = read_c3d(data_dir / SUITE / "Sample01" / "Eb015pi.c3d")
    raw = report[f"{SUITE}/Sample01/Eb015pi.c3d"]["points"]
    assert len(raw) == 48 and raw[-1] == ""
    assert data.markers.labels == raw[:26]


def test_int_and_real_agree_with_point_scale_formula(data_dir: Path) -> None:
    """pc_int stores integers x POINT:SCALE; pc_real stores those products as floats (C3D spec)."""
    intf = read_c3d(data_dir / SUITE / "Sample02" / "pc_int.c3d")
    scale = float(np.asarray(intf.parameters["POINT:SCALE"]).reshape(-1)[0])
    counts = intf.markers.xyz / scale
    finite = np.isfinite(counts)
    np.testing.assert_allclose(counts[finite], np.round(counts[finite]), atol=1e-3)


# ------------------------------------------------------------------------------- the fallback reader
def test_sgi_files_go_through_the_fallback(data_dir: Path) -> None:
    for name in ("sgi_int", "sgi_real"):
        data = read_c3d(data_dir / SUITE / "Sample02" / f"{name}.c3d")
        assert data.reader == "c3d"
        assert any("SGI/MIPS" in w for w in data.warnings)


def test_fast_walking_with_duplicated_parameter(data_dir: Path, report) -> None:
    """UWA Fast Walking.c3d: the `c3d` package rejects it (duplicated PROCESSING parameters); ezc3d reads it."""
    data = read_c3d(data_dir / UWA_FAST)
    assert data.reader == "ezc3d"
    assert data.markers.xyz.shape == (1280, 80, 3)
    assert [p.plate_type for p in data.plates] == [2, 2]
    assert data.analog_labels[:6] == ["Fx1", "Fy1", "Fz1", "Mx1", "My1", "Mz1"]
    assert data.parameters["SUBJECTS:NAMES"] == ["Massimo-Biodex-200411"]
    with pytest.raises(C3DError, match="no reader could read it"):
        read_c3d(data_dir / UWA_FAST, readers=("c3d",))


@pytest.mark.parametrize(
    "rel", [f"{UNIPD}/Walking1.c3d", f"{SUITE}/ezc3d/Qualisys.c3d", "opensim-core/OpenSim/Tests/shared/walking2.c3d"]
)
def test_both_back_ends_agree(data_dir: Path, rel: str) -> None:
    """ezc3d and the `c3d` package give the same C3DData (c3d keeps points in float32: 1e-6 m)."""
    a = read_c3d(data_dir / rel, readers=("ezc3d",))
    b = read_c3d(data_dir / rel, readers=("c3d",))
    assert (a.reader, b.reader) == ("ezc3d", "c3d")
    unit = UNIT_M[a.markers.units]
    assert np.array_equal(np.isnan(a.markers.xyz), np.isnan(b.markers.xyz))
    assert np.nanmax(np.abs(a.markers.xyz - b.markers.xyz)) * unit < 1e-6
    np.testing.assert_allclose(a.analog, b.analog, rtol=1e-6, atol=1e-9 * np.abs(a.analog).max())
    assert a.markers.labels == b.markers.labels and a.analog_labels == b.analog_labels
    assert a.events == b.events
    assert a.first_frame == b.first_frame
    np.testing.assert_array_equal(a.markers.time_s, b.markers.time_s)
    for p, q in zip(a.plates, b.plates, strict=True):
        assert (p.plate_type, p.channels) == (q.plate_type, q.channels)
        np.testing.assert_allclose(p.corners_lab, q.corners_lab, rtol=1e-6)
        np.testing.assert_allclose(p.origin, q.origin, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------------ UNIPD walks
@pytest.mark.parametrize("trial", ["Walking1", "Walking2", "Walking3", "Walking4", "Walking5", "Static1"])
def test_unipd_plates_emg_and_events(data_dir: Path, trial: str) -> None:
    """Two type-1 plates whose channels carry the file's own Fx,Fy,Fz,Px,Py,Mz labels; 15 named EMG channels
    at 1020 Hz in the walks (the static trial has no EMG and runs its analog at 960 Hz)."""
    data = read_c3d(data_dir / UNIPD / f"{trial}.c3d", subject="Control1", trial=trial)
    assert [p.plate_type for p in data.plates] == [1, 1]
    for k, plate in enumerate(data.plates, start=1):
        assert [data.analog_labels[c] for c in plate.channels] == [f"{s}{k}" for s in ("Fx", "Fy", "Fz", "Px", "Py", "Mz")]
        assert plate.corners_lab.shape == (4, 3) and np.all(np.isfinite(plate.corners_lab))
        assert plate.cal_matrix is None
    emg = [label for label in data.analog_labels if label.startswith("Right ")]
    if trial == "Static1":
        assert data.analog_rate_hz == pytest.approx(960.0) and emg == []
        return
    assert data.point_rate_hz == pytest.approx(60.0)
    assert data.analog_rate_hz == pytest.approx(1020.0)
    assert len(emg) == 15 and "Right Soleus" in emg and "Right Tibialis anterior" in emg
    assert data.analog.shape[0] == data.markers.n_frames * 17  # 1020 / 60 samples per frame
    # Gait events: Vicon EVENT group with (minutes, seconds) times, inside the recorded span.
    assert data.events, "the walks carry EVENT parameters"
    assert {e.label for e in data.events} <= {"Foot Strike", "Foot Off"}
    assert {e.context for e in data.events} == {"Right"}
    t = data.markers.time_s
    assert all(t[0] <= e.time_s <= t[-1] for e in data.events)
    assert [e.time_s for e in data.events] == sorted(e.time_s for e in data.events)


def test_event_minutes_and_seconds_are_combined(data_dir: Path, tmp_path: Path) -> None:
    """EVENT:TIMES is (2, n) = (minutes, seconds): rewrite Walking1's times to (1 min, 2.5 s) and (0, 3 s)."""
    original = (data_dir / UNIPD / "Walking1.c3d").read_bytes()
    payload = struct.pack("<4f", 1.0, 2.5, 0.0, 3.0)
    patched = replace_parameter(original, "EVENT", "TIMES", (2, 2), payload)
    path = tmp_path / "events.c3d"
    path.write_bytes(patched)
    data = read_c3d(path)
    assert [e.time_s for e in data.events] == pytest.approx([3.0, 62.5])


def test_qualisys_first_frame_and_time_origin(data_dir: Path) -> None:
    """Qualisys.c3d starts at frame 705 (200 Hz): time_s starts at 704/200 s, on EVENT:TIMES' clock."""
    data = read_c3d(data_dir / SUITE / "ezc3d" / "Qualisys.c3d")
    assert data.first_frame == 705
    assert data.markers.time_s[0] == pytest.approx(704 / 200)
    assert all(data.markers.time_s[0] <= e.time_s <= data.markers.time_s[-1] for e in data.events)


# ---------------------------------------------------------------------------------- analog scaling
def _original_raw(data) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    n = data.analog.shape[1]
    scale = np.asarray(data.parameters["ANALOG:SCALE"], dtype=float)[:n]
    offset = np.asarray(data.parameters["ANALOG:OFFSET"], dtype=float)[:n]
    gen = float(np.asarray(data.parameters["ANALOG:GEN_SCALE"]).reshape(-1)[0])
    raw = data.analog / (scale * gen) + offset  # invert real = (raw - offset) * scale * gen
    return raw, scale, offset, gen


@pytest.mark.parametrize("name", ["pc_int", "pc_real"])
def test_single_value_analog_scale_and_offset(data_dir: Path, tmp_path: Path, name: str) -> None:
    """ANALOG:SCALE / OFFSET with one value apply it to every channel (ezc3d 1.7.2 would read past the end of
    the array, so the reader routes such files to the `c3d` package)."""
    path = data_dir / SUITE / "Sample02" / f"{name}.c3d"
    original = read_c3d(path)
    raw, _, offset, gen = _original_raw(original)
    assert np.allclose(raw, np.round(raw), atol=1e-3)  # ADC counts
    one_scale = replace_parameter(path.read_bytes(), "ANALOG", "SCALE", (1,), struct.pack("<f", -0.5))
    (tmp_path / "scale1.c3d").write_bytes(one_scale)
    data = read_c3d(tmp_path / "scale1.c3d")
    assert data.reader == "c3d"
    np.testing.assert_allclose(data.analog, (raw - offset) * -0.5 * gen, atol=1e-9)
    both = replace_parameter(one_scale, "ANALOG", "OFFSET", (1,), struct.pack("<h", 2000))
    (tmp_path / "both1.c3d").write_bytes(both)
    data = read_c3d(tmp_path / "both1.c3d")
    np.testing.assert_allclose(data.analog, (raw - 2000) * -0.5 * gen, atol=1e-9)


def test_unipd_analog_is_in_volts_as_stored(data_dir: Path) -> None:
    """UNIPD stores SCALE 1, OFFSET 0, units V: the analog values are the stored numbers themselves."""
    data = read_c3d(data_dir / UNIPD / "Walking1.c3d")
    assert set(data.analog_units) == {"V"}
    np.testing.assert_array_equal(np.asarray(data.parameters["ANALOG:SCALE"], dtype=float), 1.0)


# ---------------------------------------------------------------------------------------- bad files
def test_missing_truncated_and_garbage_files(data_dir: Path, tmp_path: Path) -> None:
    good = (data_dir / SUITE / "Sample02" / "pc_int.c3d").read_bytes()
    cases = {
        "truncated.c3d": good[: len(good) - 3000],
        "header_only.c3d": good[:512],
        "empty.c3d": b"",
        "garbage.c3d": bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
        "text.c3d": b"this is not a c3d file\n" * 100,
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(C3DError) as info:
            read_c3d(path, subject="S01", trial="T1")
        message = str(info.value)
        assert str(path) in message and "subject S01" in message and "trial T1" in message, message
    with pytest.raises(C3DError, match="file not found"):
        read_c3d(tmp_path / "nope.c3d")
    with pytest.raises(C3DError, match="truncated"):
        read_c3d(tmp_path / "truncated.c3d")


# ------------------------------------------------------------------------------------ isolation
@pytest.fixture
def fresh_worker(monkeypatch):
    """A worker started under the test's environment, and a clean one afterwards."""
    shutdown_worker()
    yield monkeypatch
    monkeypatch.delenv(FAULT_ENV, raising=False)
    shutdown_worker()


@pytest.mark.parametrize("fault,words", [("abort", "SIGABRT"), ("segv", "SIGSEGV"), ("exit", "status 3")])
def test_worker_crash_falls_back(data_dir: Path, fresh_worker, fault: str, words: str) -> None:
    """The ezc3d worker dying (abort, segfault, exit) gives the c3d reader's result, and pytest lives on."""
    fresh_worker.setenv(FAULT_ENV, fault)
    data = read_c3d(data_dir / SUITE / "Sample02" / "pc_int.c3d")
    assert data.reader == "c3d"
    assert any(w.startswith("ezc3d:") and words in w for w in data.warnings), data.warnings
    fresh_worker.delenv(FAULT_ENV)
    shutdown_worker()
    assert read_c3d(data_dir / SUITE / "Sample02" / "pc_int.c3d").reader == "ezc3d"


def test_worker_hang_times_out(data_dir: Path, fresh_worker) -> None:
    fresh_worker.setenv(FAULT_ENV, "hang")
    data = read_c3d(data_dir / SUITE / "Sample02" / "pc_int.c3d", timeout_s=1.0)
    assert data.reader == "c3d"
    assert any("timed out after 1 s" in w for w in data.warnings)


def test_both_readers_crashing_gives_c3derror(data_dir: Path, fresh_worker) -> None:
    fresh_worker.setenv(FAULT_ENV, "abort:*")
    path = data_dir / SUITE / "Sample02" / "pc_int.c3d"
    with pytest.raises(C3DError) as info:
        read_c3d(path, subject="S01", trial="walk")
    err = info.value
    assert str(path) in str(err) and "subject S01" in str(err) and "trial walk" in str(err)
    assert "SIGABRT" in err.extra["ezc3d"] and "SIGABRT" in err.extra["c3d"]


def _corrupt_entry(data: bytes, group: str, name: str, byte: str, value: int) -> bytes:
    entries = parameter_entries(data)
    groups = {-e.group_id: e.name for e in entries if e.group_id < 0}
    entry = next(e for e in entries if e.group_id > 0 and groups[e.group_id] == group and e.name == name)
    buf = bytearray(data)
    buf[entry.type_pos + (1 if byte == "n_dims" else 0)] = value
    return bytes(buf)


def test_real_ezc3d_segfault_is_contained(data_dir: Path, tmp_path: Path) -> None:
    """One corrupted byte (POINT:LABELS with 0 dimensions) segfaults bare ezc3d 1.7.2; read_c3d returns the
    intact markers through the `c3d` package. ANALOG:RATE typed as characters segfaults it too; there the
    `c3d` package fails as well and read_c3d raises C3DError naming the file."""
    src = data_dir / SUITE / "Sample02" / "pc_int.c3d"
    labels0 = tmp_path / "labels0.c3d"
    labels0.write_bytes(_corrupt_entry(src.read_bytes(), "POINT", "LABELS", "n_dims", 0))
    rate_char = tmp_path / "rate_char.c3d"
    rate_char.write_bytes(_corrupt_entry(src.read_bytes(), "ANALOG", "RATE", "type", 0xFF))
    for path in (labels0, rate_char):
        bare = subprocess.run([sys.executable, "-c", "import ezc3d, sys; ezc3d.c3d(sys.argv[1])", str(path)],
                              capture_output=True, timeout=120)
        assert bare.returncode < 0, f"bare ezc3d no longer crashes on {path.name}: update this test"
    data = read_c3d(labels0)
    assert data.reader == "c3d" and "SIGSEGV" in data.warnings[0]
    clean = read_c3d(src)
    np.testing.assert_allclose(data.markers.xyz, clean.markers.xyz, atol=1e-4, equal_nan=True)
    # The labels are lost with the dimensions (one stray character): generated names stand in.
    assert data.markers.labels == [f"point{i + 1}" for i in range(len(clean.markers.labels))]
    with pytest.raises(C3DError, match="SIGSEGV") as info:
        read_c3d(rate_char)
    assert str(rate_char) in str(info.value)
