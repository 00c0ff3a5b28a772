"""TRC, MOT/STO, ExternalLoads XML, GRF column names and ANC: hand-made files, round trips, errors.

No OpenSim here; tests/integration/test_io_opensim.py checks the same files against OpenSim's readers.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pimsk.cli import main as cli_main
from pimsk.commands.anc import select_channels
from pimsk.errors import FileFormatError
from pimsk.io._text import FileFormatWarning
from pimsk.io.anc import is_force_plate_channel, read_anc
from pimsk.io.containers import Markers, Table
from pimsk.io.external_loads import ExternalForceSpec, read_external_loads, write_external_loads
from pimsk.io.grf_columns import find_grf_groups, grf_identifiers, grf_labels
from pimsk.io.storage import read_storage, write_storage
from pimsk.io.trc import read_trc, write_trc

TRC_KEYS = "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------- TRC


def _markers(n: int = 7, m: int = 3, seed: int = 0) -> Markers:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(scale=500.0, size=(n, m, 3))
    xyz[2, 1, :] = np.nan  # a gap in the middle marker
    xyz[-1, -1, :] = np.nan  # last marker missing in the last frame (trailing empty fields)
    return Markers(np.arange(n) / 100.0, xyz, [f"M{i}" for i in range(m)], rate_hz=100.0, units="mm")


def test_trc_round_trip_is_exact(tmp_path):
    markers = _markers()
    path = write_trc(tmp_path / "a.trc", markers)
    back = read_trc(path)
    assert back.labels == markers.labels
    assert back.units == "mm" and back.rate_hz == 100.0
    np.testing.assert_array_equal(back.time_s, markers.time_s)
    np.testing.assert_array_equal(back.xyz, markers.xyz)  # NaN at the same places, values bit-equal


def test_trc_writer_layout(tmp_path):
    xyz = np.array([[[1.5, 2.0, -3.25], [np.nan, np.nan, np.nan]]])
    path = write_trc(tmp_path / "b.trc", Markers(np.array([0.5]), xyz, ["A", "B"], rate_hz=60.0, units="m"),
                     first_frame=31)
    lines = path.read_text().splitlines()
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\tb.trc"
    assert lines[1] == TRC_KEYS
    assert lines[2] == "60.0\t60.0\t1\t2\tm\t60.0\t31\t1"
    assert lines[3] == "Frame#\tTime\tA\t\t\tB\t\t"
    assert lines[4] == "\t\tX1\tY1\tZ1\tX2\tY2\tZ2"
    assert lines[5] == ""
    # NaN as empty fields, and a trailing tab as OpenSim's writer does
    assert lines[6] == "31\t0.5\t1.5\t2.0\t-3.25\t\t\t\t"


def test_trc_double_tab_header_and_frame_count_mismatch(tmp_path):
    text = (
        "PathFileType  4\t(X/Y/Z) C:\\some\\path\\\n"
        f"{TRC_KEYS}\n"
        "  100.0\t\t  100.0\t\t    900\t\t     2\t\t mm\t  100.0\t      1\t    900\n"
        "Frame#\tTime\tR.Knee\t\t\tL.Knee\t\t\t\n"
        "\t\tX1\tY1\tZ1\tX2\tY2\tZ2\n"
        "\n"
        "1\t0.00\t1\t2\t3\t4\t5\t6\n"
        "2\t0.01\t7\t8\t9\t10\t11\t12\n"
    )
    with pytest.warns(FileFormatWarning, match="NumFrames=900 but 2 data rows"):
        markers = read_trc(_write(tmp_path / "c.trc", text))
    assert markers.labels == ["R.Knee", "L.Knee"]
    assert markers.rate_hz == 100.0 and markers.units == "mm"
    np.testing.assert_array_equal(markers.xyz.reshape(2, 6), np.arange(1, 13).reshape(2, 6))
    assert markers.meta["NumFrames"] == "900" and markers.meta["first_frame"] == "1"


def test_trc_comma_delimited_and_missing_trailing_columns(tmp_path):
    text = (
        "PathFileType,4,(X/Y/Z),x.trc,,,,,\n"
        "DataRate,CameraRate,NumFrames,NumMarkers,Units,OrigDataRate,OrigDataStartFrame,OrigNumFrames,,\n"
        "50,50,3,2,mm,50,0,3,,\n"
        "Frame#,Time,A,,,B,,,\n"
        ",,X1,Y1,Z1,X2,Y2,Z2\n"
        ",,,,,,,,\n"
        "1,0,1,2,3,4,5,6\n"
        "2,0.02,1,2,3,4\n"  # B.y and B.z missing: B is NaN in this frame
        "3,0.04,1,,3,4,5,6\n"  # A.y empty: A is NaN (a marker needs all three coordinates)
    )
    with pytest.warns(FileFormatWarning, match="fewer than 6 coordinates"):
        markers = read_trc(_write(tmp_path / "d.trc", text))
    expected = np.array([[[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [np.nan] * 3], [[np.nan] * 3, [4, 5, 6]]])
    np.testing.assert_array_equal(markers.xyz, expected)
    np.testing.assert_array_equal(markers.time_s, [0, 0.02, 0.04])
    assert markers.rate_hz == 50.0


def test_trc_labels_offset_from_columns(tmp_path):
    # OpenSim's std_walking*_markers.trc: labels one tab late, X/Y/Z line three tabs in; rows are not shifted
    text = (
        "PathFileType\t4\t(X/Y/Z)\tds.trc\n"
        f"{TRC_KEYS}\n250\t250\t1\t2\tmm\t250\t1\t1\n"
        "Frame#\tTime\t\tRTH1\t\tRFHD\n\t\t\tX1\tY1\tZ1\tX2\tY2\tZ2\n\n"
        "1\t0\tNaN\tNaN\tNaN\t1\t2\t3\n"
    )
    markers = read_trc(_write(tmp_path / "e.trc", text))
    assert markers.labels == ["RTH1", "RFHD"]
    assert np.isnan(markers.xyz[0, 0]).all()
    np.testing.assert_array_equal(markers.xyz[0, 1], [1, 2, 3])


def test_trc_errors_name_file_line_and_field(tmp_path):
    with pytest.raises(FileFormatError, match="PathFileType") as info:
        read_trc(_write(tmp_path / "f.trc", "hello\n" * 6))
    assert info.value.file == tmp_path / "f.trc"
    bad = (
        f"PathFileType\t4\t(X/Y/Z)\tg.trc\n{TRC_KEYS}\n100\t100\t1\t1\tmm\t100\t1\t1\n"
        "Frame#\tTime\tKNEE\t\t\n\t\tX1\tY1\tZ1\n\n1\t0\t1\tabc\t3\n"
    )
    with pytest.raises(FileFormatError, match="line 7") as info:
        read_trc(_write(tmp_path / "g.trc", bad))
    assert info.value.field == "KNEE.Y"
    with pytest.raises(FileFormatError, match="not found"):
        read_trc(tmp_path / "missing.trc")


def test_trc_writer_refuses_what_opensim_cannot_read(tmp_path):
    markers = _markers()
    markers.time_s[3] = markers.time_s[2]
    with pytest.raises(FileFormatError, match="strictly increasing"):
        write_trc(tmp_path / "h.trc", markers)
    with pytest.raises(FileFormatError, match="label"):
        write_trc(tmp_path / "i.trc", Markers(np.zeros(1), np.zeros((1, 1, 3)), ["a\tb"], 100.0))


# ------------------------------------------------------------------------------------------- MOT/STO


def test_storage_round_trip_with_header(tmp_path):
    rng = np.random.default_rng(1)
    table = Table(np.arange(6) * 0.01, rng.normal(size=(6, 3)), ["hip_flexion_r", "knee_angle_r", "pelvis_tx"],
                  name="Coordinates", in_degrees=True)
    path = write_storage(tmp_path / "a.mot", table, extra_header={"DataRate": "100"})
    text = path.read_text().splitlines()
    assert text[:8] == ["Coordinates", "version=1", "nRows=6", "nColumns=4", "inDegrees=yes", "DataRate=100",
                        "endheader", "time\thip_flexion_r\tknee_angle_r\tpelvis_tx"]
    back = read_storage(path)
    assert back.name == "Coordinates" and back.in_degrees and back.labels == table.labels
    assert back.meta["DataRate"] == "100"
    np.testing.assert_array_equal(back.time_s, table.time_s)
    np.testing.assert_array_equal(back.data, table.data)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=40),
)
def test_storage_round_trip_any_float(tmp_path_factory, n_cols, values):
    n_rows = max(1, len(values) // n_cols)
    data = np.resize(np.array(values), (n_rows, n_cols))
    table = Table(np.arange(n_rows) * 0.5 - 3.0, data, [f"c{i}" for i in range(n_cols)])
    path = write_storage(tmp_path_factory.mktemp("s") / "p.sto", table)
    np.testing.assert_array_equal(read_storage(path).data, data)


def test_storage_nan_refused_unless_allowed(tmp_path):
    table = Table(np.array([0.0, 0.1]), np.array([[1.0, np.nan], [2.0, 3.0]]), ["a", "b"])
    with pytest.raises(FileFormatError, match="NaN at row 1") as info:
        write_storage(tmp_path / "n.sto", table)
    assert info.value.field == "b"
    path = write_storage(tmp_path / "n.sto", table, allow_nan=True)
    assert path.read_text().splitlines()[-2] == "0.0\t1.0\tNaN"
    assert np.isnan(read_storage(path).data[0, 1])


def test_storage_comma_delimited(tmp_path):
    text = (
        "Coordinates,,,\nversion=1,,,\nnRows=250,,,\nnColumns=3,,,\ninDegrees=yes,,,\n,,,\n"
        "Units are S.I. units (second, meters, Newtons, ...),,,\nendheader,,,\n"
        "time,thorax_tilt,elbow_flexion\n1.56,-27.9,1.5E-02\n1.57,-27.8,\n"
    )
    with pytest.warns(FileFormatWarning, match="250 rows but the file has 2"):
        table = read_storage(_write(tmp_path / "c.mot", text))
    assert table.name == "Coordinates" and table.in_degrees
    assert table.labels == ["thorax_tilt", "elbow_flexion"]
    np.testing.assert_array_equal(table.data, [[-27.9, 0.015], [-27.8, np.nan]])
    assert table.meta["delimiter"] == "comma"


def test_storage_double_tab_and_short_rows(tmp_path):
    text = "grf\nnRows=2\nnColumns=3\nendheader\ntime\t\ta\t\tb\n0\t\t1\t\t2\n0.5\t\t3\n"
    with pytest.warns(FileFormatWarning, match="fewer than 3 columns"):
        table = read_storage(_write(tmp_path / "d.sto", text))
    assert table.labels == ["a", "b"]
    np.testing.assert_array_equal(table.data, [[1, 2], [3, np.nan]])
    assert table.meta["delimiter"] == "tab (doubled)"


def test_storage_simm_header_padded_values_and_degrees_rule(tmp_path):
    # OpenSim 3 / SIMM: 'name' and 'datacolumns' lines, no version -> Storage assumes degrees for .mot
    text = (
        "name grf_run.mot\t\t\ndatacolumns 3\t\t\ndatarows 2\t\t\nrange 0.23 0.24\t\t\nendheader\t\t\n"
        "        time\t  R_ground_force_vx\t  R_ground_force_vy\t\n"
        "  0.23000000\t    1.50000000\t   -2.00000000\t\n  0.24000000\t    1.75000000\t   -2.25000000\t\n"
    )
    mot = read_storage(_write(tmp_path / "r.mot", text))
    assert mot.name == "grf_run.mot" and mot.in_degrees
    assert mot.labels == ["R_ground_force_vx", "R_ground_force_vy"]
    np.testing.assert_array_equal(mot.data, [[1.5, -2.0], [1.75, -2.25]])
    assert mot.meta["datarows"] == "2" and mot.meta["range"] == "0.23 0.24"
    assert not read_storage(_write(tmp_path / "r.sto", text)).in_degrees  # .sto: radians


def test_storage_header_variants(tmp_path):
    # blank first line, DataType/version=3 (OpenSim 4 STOFileAdapter), no nRows
    text = "\nDataType=double\nversion=3\nOpenSimVersion=4.3\nendheader\ntime\tsoleus\n0\t0.5\n0.1\t0.25\n"
    table = read_storage(_write(tmp_path / "emg.sto", text))
    assert table.name == "emg" and table.meta["version"] == "3" and not table.in_degrees
    # no header at all, first line 'time ...' (whitespace delimited)
    table = read_storage(_write(tmp_path / "plain.sto", "time a b\n0 1 2\n1 3 4\n"))
    np.testing.assert_array_equal(table.data, [[1, 2], [3, 4]])
    with pytest.raises(FileFormatError, match="endheader"):
        read_storage(_write(tmp_path / "x.sto", "hello\n1 2\n"))
    with pytest.raises(FileFormatError, match="inDegrees") as info:
        read_storage(_write(tmp_path / "y.mot", "x\ninDegrees=maybe\nendheader\ntime\ta\n0\t1\n"))
    assert info.value.field == "inDegrees"
    with pytest.raises(FileFormatError, match="line 7") as info:
        read_storage(_write(tmp_path / "z.sto", "x\nversion=1\nnRows=2\nendheader\n\ntime\tq\n0\t1,5\n"))
    assert info.value.field == "q"


# ----------------------------------------------------------------------------------- GRF column names


def test_grf_labels_follow_opensim_example_names():
    assert grf_labels("r") == [
        "ground_force_r_vx", "ground_force_r_vy", "ground_force_r_vz",
        "ground_force_r_px", "ground_force_r_py", "ground_force_r_pz",
        "ground_torque_r_x", "ground_torque_r_y", "ground_torque_r_z",
    ]
    assert grf_identifiers("l") == ("ground_force_l_v", "ground_force_l_p", "ground_torque_l_")
    with pytest.raises(ValueError):
        grf_identifiers("r l")


@pytest.mark.parametrize(
    "labels, expected",
    [
        (grf_labels("r") + grf_labels("l"),
         [("ground_force_r_v", "ground_force_r_p", "ground_torque_r_"),
          ("ground_force_l_v", "ground_force_l_p", "ground_torque_l_")]),
        # Gait2354 subject01_walk1_grf.mot
        ([f"{p}ground_force_{q}{a}" for p in ("", "1_") for q in "vp" for a in "xyz"]
         + [f"{p}ground_torque_{a}" for p in ("", "1_") for a in "xyz"],
         [("ground_force_v", "ground_force_p", "ground_torque_"),
          ("1_ground_force_v", "1_ground_force_p", "1_ground_torque_")]),
        # std_walking*_grfs.sto (OpenSim's C3D converter)
        ([f"{k}{i}_{c}" for i in (1, 2) for k in "fpm" for c in (1, 2, 3)],
         [("f1_", "p1_", "m1_"), ("f2_", "p2_", "m2_")]),
        # no moment columns; a filtered copy breaks OpenSim's 'exactly 3 columns' rule for the left force
        ([f"R_ground_force_{q}{a}" for q in "vp" for a in "xyz"]
         + [f"L_ground_force_{q}{a}" for q in "vp" for a in "xyz"] + ["L_ground_force_vx_filt"],
         [("R_ground_force_v", "R_ground_force_p", None)]),
    ],
)
def test_find_grf_groups(labels, expected):
    groups = find_grf_groups(labels)
    assert [(g.force_identifier, g.point_identifier, g.torque_identifier) for g in groups] == expected
    for g in groups:
        assert all(c.startswith(g.force_identifier) for c in g.force_columns)


# -------------------------------------------------------------------------------- ExternalLoads XML


def test_external_loads_round_trip(tmp_path):
    grf = tmp_path / "data" / "grf.mot"
    xml_path = tmp_path / "setup" / "loads.xml"
    loads = [ExternalForceSpec.for_side("r", "calcn_r"), ExternalForceSpec.for_side("l", "calcn_l")]
    write_external_loads(xml_path, grf, loads, lowpass_cutoff_hz=6)
    root = ET.parse(xml_path).getroot()
    assert root.tag == "OpenSimDocument" and root.get("Version") == "40000"
    assert root.find("ExternalLoads/datafile").text == "../data/grf.mot"
    spec = read_external_loads(xml_path)
    assert spec.datafile == grf.resolve() and spec.loads == loads and spec.lowpass_cutoff_hz == 6.0
    assert [s.name for s in spec.loads] == ["right", "left"]
    # a relative grf path is relative to the XML's folder, written unchanged
    write_external_loads(xml_path, "grf.mot", loads)
    assert read_external_loads(xml_path).datafile == (xml_path.parent / "grf.mot").resolve()


def test_external_loads_reads_opensim2_layout(tmp_path):
    text = """<?xml version="1.0" encoding="UTF-8"?>
<OpenSimDocument Version="20302"><ExternalLoads name="Ex2"><objects>
  <ExternalForce name="right"><isDisabled> false </isDisabled><applied_to_body> calcn_r </applied_to_body>
  <force_expressed_in_body> ground </force_expressed_in_body><point_expressed_in_body> ground </point_expressed_in_body>
  <force_identifier> ground_force_v </force_identifier><point_identifier> ground_force_p </point_identifier>
  <torque_identifier> ground_torque_ </torque_identifier><data_source_name> Unassigned </data_source_name>
  </ExternalForce>
  <ExternalForce name="off"><isDisabled>true</isDisabled><applied_to_body>calcn_l</applied_to_body>
  <force_identifier>x</force_identifier><point_identifier>y</point_identifier></ExternalForce>
</objects><groups/><datafile> subject01_walk1_grf.mot </datafile></ExternalLoads></OpenSimDocument>"""
    spec = read_external_loads(_write(tmp_path / "ex.xml", text))
    assert spec.name == "Ex2" and spec.datafile == (tmp_path / "subject01_walk1_grf.mot").resolve()
    assert spec.loads == [ExternalForceSpec("right", "calcn_r", "ground_force_v", "ground_force_p", "ground_torque_")]


def test_external_loads_errors(tmp_path):
    spec = ExternalForceSpec.for_side("r", "calcn_r")
    with pytest.raises(FileFormatError, match="duplicate"):
        write_external_loads(tmp_path / "a.xml", "grf.mot", [spec, spec])
    with pytest.raises(FileFormatError, match="empty applied_to_body"):
        write_external_loads(tmp_path / "a.xml", "grf.mot", [ExternalForceSpec("r", "", "f", "p")])
    with pytest.raises(FileFormatError, match="well-formed"):
        read_external_loads(_write(tmp_path / "b.xml", "<ExternalLoads><objects>"))


# ------------------------------------------------------------------------------------------------ ANC

ANC_HEADER = (
    "File_Type:\tAnalog R/C ASCII\tGeneration#:\t{gen}\n"
    "Board_Type:\tNI USB-6225\tPolarity:\t{pol}\n"
    "Trial_Name:\tt\tTrial#:\t1\tDuration(Sec.):\t0.001000\t#Channels:\t3\n"
    "BitDepth:\t16\tPreciseRate:\t2000.000000\n\n\n\n\n"
    "Name\tF1X\tSOL\tTA\t\nRate\t2000\t2000\t2000\t\nRange\t5000\t2500\t1000\t\n"
)


def _anc(tmp_path: Path, rows: str, gen: int = 2, pol: str = "Bipolar") -> Path:
    return _write(tmp_path / "trial.anc", ANC_HEADER.format(gen=gen, pol=pol) + rows)


def test_anc_counts_to_volts_hand_solved(tmp_path):
    # 16-bit bipolar: full scale 2**15 counts = +Range mV
    path = _anc(tmp_path, "0.000000\t16384\t-32768\t-100\t\n0.000500\t0\t8192\t32767\t\n0.001000\t1\t2\t3\t\n")
    rec = read_anc(path)
    assert rec.rate_hz == 2000.0 and rec.bit_depth == 16 and rec.table.labels == ["F1X", "SOL", "TA"]
    np.testing.assert_array_equal(rec.table.time_s, [0.0, 0.0005, 0.001])
    assert rec.table.data[0, 0] == 2.5  # 16384 / 32768 * 5 V
    assert rec.table.data[0, 1] == -2.5  # -32768 / 32768 * 2.5 V
    assert rec.table.data[0, 2] == -100 / 32768  # 1 V range
    assert rec.table.data[1, 1] == 0.625
    assert rec.table.data[1, 2] == 32767 / 32768
    np.testing.assert_array_equal(rec.counts[2], [1, 2, 3])
    assert rec.emg_channels == ["SOL", "TA"] and rec.table.meta["units"] == "V"


def test_anc_refuses_what_it_cannot_convert(tmp_path):
    rows = "0.000000\t1\t2\t3\n0.000500\t1\t2\t3\n0.001000\t1\t2\t3\n"
    with pytest.raises(FileFormatError, match="Generation# 1") as info:
        read_anc(_anc(tmp_path, rows, gen=1))
    assert info.value.field == "Generation#"
    with pytest.raises(FileFormatError, match="Unipolar"):
        read_anc(_anc(tmp_path, rows, pol="Unipolar"))
    with pytest.raises(FileFormatError, match="line 13: 3 fields") as info:
        read_anc(_anc(tmp_path, "0.000000\t1\t2\t3\n0.000500\t1\t2\n"))
    assert info.value.file == tmp_path / "trial.anc"
    with pytest.warns(FileFormatWarning, match="means 3 samples; file has 2"):
        read_anc(_anc(tmp_path, "0.000000\t1\t2\t3\n0.000500\t1\t2\t3\n"))


@pytest.mark.parametrize("name, is_fp", [("F1X", True), ("M3Z", True), ("FX1", True), ("FZ", True),
                                         ("FP1FX", True), ("SOL", False), ("GMAX", False), ("FDS", False)])
def test_force_plate_channel_names(name, is_fp):
    assert is_force_plate_channel(name) is is_fp


def test_anc_channel_selection_rules(tmp_path):
    available, emg = ["F1X", "SOL", "TA"], ["SOL", "TA"]
    path = tmp_path / "t.anc"
    assert select_channels(available, emg, [], {}, path) == (["SOL", "TA"], ["SOL", "TA"])
    assert select_channels(available, emg, [], {"TA": "tibant_r"}, path) == (["TA"], ["tibant_r"])
    assert select_channels(available, emg, ["TA", "SOL"], {"SOL": "soleus_r"}, path) == (["TA", "SOL"],
                                                                                          ["TA", "soleus_r"])
    with pytest.raises(FileFormatError, match="no channel 'GAS'"):
        select_channels(available, emg, ["GAS"], {}, path)
    with pytest.raises(FileFormatError, match="not unique"):
        select_channels(available, emg, [], {"SOL": "x", "TA": "x"}, path)


def test_pimsk_anc_command_writes_emg_sto(tmp_path, capsys):
    path = _anc(tmp_path, "0.000000\t1\t16384\t-100\n0.000500\t2\t0\t0\n0.001000\t3\t-8192\t50\n")
    out = tmp_path / "out" / "emg_raw.sto"
    analog = tmp_path / "out" / "analog.sto"
    assert cli_main(["anc", str(path), "--out", str(out), "--map", "SOL=soleus_r,TA=tib_ant_r",
                     "--analog-out", str(analog)]) == 0
    assert read_storage(analog).labels == ["F1X", "SOL", "TA"]
    np.testing.assert_array_equal(read_storage(analog).column("F1X"), [1 * 5 / 32768, 2 * 5 / 32768, 3 * 5 / 32768])
    table = read_storage(out)
    assert table.labels == ["soleus_r", "tib_ant_r"] and table.meta["DataRate"] == "2000"
    np.testing.assert_array_equal(table.data, [[1.25, -100 / 32768], [0, 0], [-0.625, 50 / 32768]])
    assert cli_main(["anc", str(path), "--out", str(out), "--channels", "GAS"]) == 2
    assert "no channel 'GAS'" in capsys.readouterr().err


def test_number_formatting_reads_back_exactly():
    from pimsk.io._text import format_number, parse_number

    for value in (0.1, 1e-300, -2.5e17, 1 / 3, math.pi * 1e5):
        assert parse_number(format_number(value)) == value
    assert format_number(float("nan")) == "NaN" and math.isnan(parse_number("-1.#IND"))
