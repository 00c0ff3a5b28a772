"""pimsk's readers give OpenSim's numbers on the real files; every file pimsk writes opens in OpenSim.

Golden values come from OpenSim's own adapters (TRCFileAdapter via TimeSeriesTableVec3,
STOFileAdapter via TimeSeriesTable, Storage, ExternalLoads/ExternalForce). OpenSim cannot read
comma-delimited files (its TimeSeriesTable loops forever on pyomeca's .mot), so those are checked
against the csv module instead and never handed to OpenSim.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

from pimsk.cli import main as cli_main
from pimsk.io._text import FileFormatWarning
from pimsk.io.anc import read_anc
from pimsk.io.containers import Markers, Table
from pimsk.io.external_loads import ExternalForceSpec, read_external_loads, write_external_loads
from pimsk.io.grf_columns import find_grf_groups
from pimsk.io.storage import read_storage, write_storage
from pimsk.io.trc import read_trc, write_trc

pytestmark = [pytest.mark.opensim, pytest.mark.data]

TRC_FILES = [
    "opensim-models/Pipelines/Gait2354_Simbody/subject01_walk1.trc",
    "opensim-models/Pipelines/Gait2354_Simbody/subject01_static.trc",
    "opensim-models/Pipelines/Rajagopal/ExpData/motion_capture_walk.trc",  # double tabs in the header
    "opensim-models/Pipelines/Rajagopal/ExpData/motion_capture_run.trc",  # a trailing empty field per row
    "opensim-core/Bindings/Java/Matlab/examples/testData/Subject01/MarkerData/walk_free_01.trc",  # 900 vs 73
    "opensim-core/OpenSim/Common/Test/std_walking2_markers.trc",  # NaN, labels offset from the columns
    "opensim-models/Tutorials/Computed_Muscle_Control/OutputReference/InverseKinematics/arm26_elbow_flex.trc",
]

STO_FILES = [
    "opensim-models/Pipelines/Gait2354_Simbody/subject01_walk1_ik.mot",
    "opensim-models/Pipelines/Gait2354_Simbody/subject01_walk1_grf.mot",  # header lines end in many tabs
    "opensim-models/Pipelines/Rajagopal/ExpData/grf_walk.mot",
    "opensim-models/Pipelines/Rajagopal/ExpData/grf_run.mot",  # OpenSim 3 'name ...' header, no version
    "opensim-core/OpenSim/Common/Test/std_walking2_grfs.sto",  # blank-padded values, SIMM header
    "opensim-core/OpenSim/Common/Test/std_walking5_grfs.sto",
    "opensim-core/OpenSim/Examples/Moco/example3DWalking/coordinates.sto",  # nColumns=40 for 32 columns
    "opensim-core/Bindings/Java/Matlab/examples/Moco/exampleEMGTracking/emg.sto",  # blank name, version=3
    "opensim-core/Applications/CMC/tests/resources/arm26_InverseKinematics.mot",  # no inDegrees
]


def _osim_markers(osim, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(time, xyz (n, m, 3), labels) as OpenSim's TRCFileAdapter reads them."""
    table = osim.TimeSeriesTableVec3(str(path))
    flat = table.flatten()  # keep a reference: the matrix view dies with its table
    xyz = flat.getMatrix().to_numpy().copy().reshape(table.getNumRows(), table.getNumColumns(), 3)
    return np.asarray(table.getIndependentColumn()), xyz, list(table.getColumnLabels())


def _osim_table(osim, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    table = osim.TimeSeriesTable(str(path))
    return np.asarray(table.getIndependentColumn()), table.getMatrix().to_numpy().copy(), list(table.getColumnLabels())


def _storage_columns(osim, path: Path, labels: list[str]) -> tuple[bool, np.ndarray]:
    """(inDegrees, (n, c) values) as OpenSim's legacy Storage reads them."""
    storage = osim.Storage(str(path))
    columns = []
    for label in labels:
        values = osim.ArrayDouble()
        storage.getDataColumn(label, values)
        columns.append([values.get(i) for i in range(values.size())])
    return storage.isInDegrees(), np.array(columns).T


@pytest.mark.parametrize("rel", TRC_FILES)
def test_read_trc_equals_opensim(rel, data_dir, opensim_module):
    path = data_dir / rel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FileFormatWarning)
        markers = read_trc(path)
    time, xyz, labels = _osim_markers(opensim_module, path)
    assert markers.labels == labels
    np.testing.assert_array_equal(markers.time_s, time)
    np.testing.assert_array_equal(markers.xyz, xyz)  # bit-equal, NaN at the same places


def test_trc_frame_count_mismatch_trusts_rows(data_dir):
    path = data_dir / TRC_FILES[4]
    with pytest.warns(FileFormatWarning, match="NumFrames=900 but 73 data rows"):
        markers = read_trc(path)
    assert markers.n_frames == 73 and markers.meta["NumFrames"] == "900"
    assert markers.time_s[0] == pytest.approx(3.067) and markers.time_s[-1] == pytest.approx(4.267)


def test_pyomeca_comma_trc_matches_csv(data_dir):
    path = data_dir / "pyomeca/tests/data/markers.trc"
    with pytest.warns(FileFormatWarning, match="NumFrames=652 but 93 data rows"):
        markers = read_trc(path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    labels = [x for x in rows[3][2:] if x]
    data = np.array([[float(x) for x in r[: 2 + 3 * len(labels)]] for r in rows[6:] if any(r)])
    assert markers.labels == labels and len(labels) == 51 and markers.units == "mm"
    np.testing.assert_array_equal(markers.time_s, data[:, 1])
    np.testing.assert_array_equal(markers.xyz.reshape(len(data), -1), data[:, 2:])


@pytest.mark.parametrize("name, rows", [("inverse_kin.mot", 88), ("inverse_dyn.sto", 92)])
def test_pyomeca_comma_storage_matches_csv(name, rows, data_dir):
    path = data_dir / "pyomeca/tests/data" / name
    with pytest.warns(FileFormatWarning, match=f"250 rows but the file has {rows}"):
        table = read_storage(path)
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    end = next(i for i, r in enumerate(lines) if r and r[0] == "endheader")
    expected = np.array([[float(x) for x in r] for r in lines[end + 2 :] if any(r)])
    assert table.labels == lines[end + 1][1:]
    assert table.in_degrees is (name == "inverse_kin.mot")
    np.testing.assert_array_equal(np.column_stack([table.time_s, table.data]), expected)


@pytest.mark.parametrize("rel", STO_FILES)
def test_read_storage_equals_opensim(rel, data_dir, opensim_module):
    path = data_dir / rel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FileFormatWarning)
        table = read_storage(path)
    time, data, labels = _osim_table(opensim_module, path)
    assert table.labels == labels
    np.testing.assert_array_equal(table.time_s, time)
    np.testing.assert_array_equal(table.data, data)
    in_degrees, _ = _storage_columns(opensim_module, path, [])
    assert table.in_degrees == in_degrees


def test_written_trc_opens_in_opensim(tmp_path, data_dir, opensim_module):
    markers = read_trc(data_dir / TRC_FILES[2])
    xyz = markers.xyz.copy()
    xyz[10:20, 0] = np.nan  # a gap in the first marker
    xyz[-5:, -1] = np.nan  # the last marker lost at the end (trailing empty fields)
    metres = Markers(markers.time_s, xyz, markers.labels, markers.rate_hz, markers.units).in_metres()
    path = write_trc(tmp_path / "walk.trc", metres)
    time, osim_xyz, labels = _osim_markers(opensim_module, path)
    assert labels == metres.labels
    np.testing.assert_array_equal(time, metres.time_s)
    np.testing.assert_array_equal(osim_xyz, metres.xyz)
    table = opensim_module.TimeSeriesTableVec3(str(path))
    assert table.getTableMetaDataAsString("Units") == "m"
    assert float(table.getTableMetaDataAsString("DataRate")) == 100.0
    reference = opensim_module.MarkersReference(str(path), opensim_module.SetMarkerWeights())  # what IK reads
    assert reference.getNumFrames() == metres.n_frames


def test_written_storage_opens_in_opensim(tmp_path, data_dir, opensim_module):
    source = read_storage(data_dir / STO_FILES[0])
    for in_degrees in (True, False):
        table = Table(source.time_s, source.data, source.labels, name="Coordinates", in_degrees=in_degrees)
        path = write_storage(tmp_path / f"ik_{in_degrees}.mot", table, extra_header={"DataRate": "60"})
        time, data, labels = _osim_table(opensim_module, path)
        assert labels == table.labels
        np.testing.assert_array_equal(time, table.time_s)
        np.testing.assert_array_equal(data, table.data)
        storage_degrees, storage_data = _storage_columns(opensim_module, path, table.labels)
        assert storage_degrees is in_degrees
        np.testing.assert_array_equal(storage_data, table.data)


def test_nan_storage_is_read_by_time_series_table(tmp_path, opensim_module):
    table = Table(np.array([0.0, 0.01, 0.02]), np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]]), ["a", "b"])
    path = write_storage(tmp_path / "gaps.sto", table, allow_nan=True)
    _, data, _ = _osim_table(opensim_module, path)
    np.testing.assert_array_equal(data, table.data)


@pytest.mark.parametrize(
    "xml_rel",
    [
        "opensim-models/Pipelines/Gait2354_Simbody/subject01_walk1_grf.xml",
        "opensim-models/Pipelines/Rajagopal/ID/grf_run.xml",
        "opensim-models/Pipelines/Rajagopal/ID/grf_walk.xml",
    ],
)
def test_published_external_loads_match_opensim_and_grf_groups(xml_rel, data_dir, opensim_module):
    path = data_dir / xml_rel
    spec = read_external_loads(path)
    loads = opensim_module.ExternalLoads(str(path), True)
    assert [s.name for s in spec.loads] == [loads.get(i).getName() for i in range(loads.getSize())]
    for i, s in enumerate(spec.loads):
        force = loads.get(i)
        assert (s.applied_to_body, s.force_identifier, s.point_identifier, s.torque_identifier) == (
            force.get_applied_to_body().strip(), force.get_force_identifier().strip(),
            force.get_point_identifier().strip(), force.get_torque_identifier().strip())
    assert spec.datafile.is_file()
    groups = find_grf_groups(read_storage(spec.datafile).labels)
    assert [(g.force_identifier, g.point_identifier, g.torque_identifier) for g in groups] == [
        (s.force_identifier, s.point_identifier, s.torque_identifier) for s in spec.loads]


@pytest.mark.parametrize("rel", ["opensim-core/OpenSim/Common/Test/std_walking2_grfs.sto",
                                 "opensim-core/OpenSim/Common/Test/std_walking5_grfs.sto"])
def test_std_grfs_plate_groups(rel, data_dir):
    groups = find_grf_groups(read_storage(data_dir / rel).labels)
    assert [(g.force_identifier, g.point_identifier, g.torque_identifier) for g in groups] == [
        ("f1_", "p1_", "m1_"), ("f2_", "p2_", "m2_")]


def test_written_external_loads_apply_the_grf_in_opensim(tmp_path, data_dir, opensim_module, monkeypatch):
    osim = opensim_module
    grf_path = data_dir / "opensim-models/Pipelines/Rajagopal/ExpData/grf_walk.mot"
    grf = read_storage(grf_path)
    groups = find_grf_groups(grf.labels)
    loads = [ExternalForceSpec(name=f"foot_{g.key}", applied_to_body=f"calcn_{g.key.split('_')[1]}",
                               force_identifier=g.force_identifier, point_identifier=g.point_identifier,
                               torque_identifier=g.torque_identifier or "") for g in groups]
    xml_path = write_external_loads(tmp_path / "setup" / "external_loads.xml", grf_path, loads)

    model = osim.Model()
    for body_name in ("calcn_r", "calcn_l"):
        body = osim.Body(body_name, 1.0, osim.Vec3(0), osim.Inertia(1))
        model.addBody(body)
        model.addJoint(osim.FreeJoint(f"{body_name}_joint", model.getGround(), body))
    external = osim.ExternalLoads(str(xml_path), True)
    assert external.getSize() == 2
    monkeypatch.chdir(xml_path.parent)  # OpenSim's tools open the datafile from the XML's folder
    model.addModelComponent(external)
    model.initSystem()
    for i, group in enumerate(groups):
        force = external.get(i)
        assert force.get_applied_to_body() == loads[i].applied_to_body
        for k in (0, 1234, 2500, grf.n_frames - 1):
            t = float(grf.time_s[k])
            got = np.concatenate([np.array([v.get(j) for j in range(3)]) for v in
                                  (force.getForceAtTime(t), force.getPointAtTime(t), force.getTorqueAtTime(t))])
            want = np.array([grf.column(c)[k] for c in group.force_columns + group.point_columns
                             + group.torque_columns])
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_rajagopal_anc_counts_and_channels(data_dir):
    path = data_dir / "opensim-models/Pipelines/Rajagopal/ExpData/emg_walk_raw.anc"
    rec = read_anc(path)
    raw = np.loadtxt(path, skiprows=11)  # 11 header lines, then time + 28 channels of counts
    assert rec.rate_hz == 2000.0 and rec.bit_depth == 16 and rec.table.data.shape == (4780, 28)
    np.testing.assert_array_equal(rec.table.time_s, raw[:, 0])
    np.testing.assert_array_equal(rec.counts, raw[:, 1:])
    assert rec.emg_channels == ["SOL", "GAS", "TA", "MH", "BF", "VL", "VM", "RF", "GMAX", "GMED"]
    assert np.allclose(np.diff(rec.table.time_s), 1 / 2000.0, atol=1e-9)


def test_rajagopal_anc_envelopes_match_published_emg(data_dir):
    """Our channels of the raw .anc give the envelopes published for the same trial (Moco example)."""
    from scipy.signal import butter, filtfilt

    rec = read_anc(data_dir / "opensim-models/Pipelines/Rajagopal/ExpData/emg_walk_raw.anc")
    published = read_storage(data_dir / "opensim-core/OpenSim/Examples/Moco/example3DWalking/electromyography.sto")
    assert published.n_frames == rec.table.n_frames
    emg = rec.table.data[:, [rec.table.labels.index(c) for c in rec.emg_channels]]
    b, a = butter(4, [30 / 1000, 450 / 1000], "band")
    envelope = np.abs(filtfilt(b, a, emg, axis=0))
    b, a = butter(4, 6 / 1000)
    envelope = filtfilt(b, a, envelope, axis=0)
    corr = np.corrcoef(envelope.T, published.data.T)[:10, 10:]
    assert list(corr.argmax(axis=1)) == list(range(10))  # SOL~soleus, GAS~gastrocnemius, ... in order
    assert corr.diagonal().min() > 0.8


def test_pimsk_anc_writes_emg_sto_that_opensim_opens(tmp_path, data_dir, opensim_module):
    path = data_dir / "opensim-models/Pipelines/Rajagopal/ExpData/emg_walk_raw.anc"
    out = tmp_path / "emg_raw.sto"
    assert cli_main(["anc", str(path), "--out", str(out)]) == 0
    time, data, labels = _osim_table(opensim_module, out)
    assert labels == ["SOL", "GAS", "TA", "MH", "BF", "VL", "VM", "RF", "GMAX", "GMED"]
    assert data.shape == (4780, 10) and np.allclose(np.diff(time), 0.0005, atol=1e-9)
    # counts from the file's text, ranges from its header (+/- mV), 16-bit bipolar: V = counts * range / 2**15 / 1000
    raw = np.loadtxt(path, skiprows=11)
    ranges_mv = np.array([2500, 2500, 2500, 1000, 1000, 2500, 2500, 2500, 1000, 2500])
    np.testing.assert_allclose(data, raw[:, 19:] * ranges_mv / 32768 / 1000, rtol=1e-15, atol=0)
    _, storage_data = _storage_columns(opensim_module, out, labels)
    np.testing.assert_array_equal(storage_data, data)
