"""`pimsk c3d` on real files: OpenSim's own expected conversions, MOtoNMS walks with EMG, errors.

Golden values: opensim-core's ``std_walking{2,5}_markers.trc`` (markers, exported from Mokka, mm, lab axes,
every 10th frame plus the last), ``std_walking{2,5}_grfs.sto`` and ``std_cop_walking{2,5}_grfs.sto`` (written by
OpenSim's ``C3DFileAdapter`` in testC3DFileAdapter.cpp: every 100th analog sample plus the last).
The convention those files follow, which this converter reproduces (see pimsk/convert/c3d_to_opensim.py):

* everything in the LAB frame and the file's units (mm, N, N·mm), markers at the point rate, forces at the
  analog rate (2000 Hz), times from 0 (first frame 1);
* plate channels rotated to the lab by the plate axes from CORNERS, sign unchanged (for these Vicon files this is
  already the ground reaction: +Z up during stance);
* ``std_*_grfs.sto``: point p = mean of the corners (plate surface centre), moment m about it, with
  ORIGIN (0, 0, +37.84 / +57.15 mm, old AMTI sign) taken as 37.84 mm below the surface;
* ``std_cop_*``: p = COP on the surface, m = free moment (x, y exactly 0), no force threshold (a COP is computed
  from noise where the plate is unloaded).

pimsk writes SI units in OpenSim axes (Y up) and applies a 20 N threshold by default; the comparisons below undo
the rotation and the units and use ``force_threshold_n=0`` to compare every sample, and check separately what
the threshold changes (only samples where the vertical force is at or below it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pimsk.convert.c3d_to_opensim import C3DConvertOptions, convert_c3d, convert_c3d_data, grf_labels
from pimsk.errors import C3DError
from pimsk.io.c3d_read import read_c3d

pytestmark = [pytest.mark.data, pytest.mark.opensim]

G = 9.81
# walking direction of the two opensim-core trials (lab Z up) and which foot is on which plate there
WALKS = {
    "walking2": {"rotation": "z_up", "plate_feet": {1: "r", 2: "l"}},
    "walking5": {"rotation": "z_up_-x_forward", "plate_feet": {1: "l", 2: "r"}},
}
UNIPD = "motonms/TestData/InputData/Control1_UNIPD/2012_10_17"
UWA_FAST = "motonms/TestData/InputData/Control1_UWA/2010/Fast Walking.c3d"


def _every(n: int, step: int) -> list[int]:
    """Rows kept by testC3DFileAdapter's downsample_table: 0, step, 2 step, ... and the last."""
    return [r for r in range(n) if r % step == 0 or r == n - 1]


def _sto(osim, path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    table = osim.TimeSeriesTable(str(path))
    labels = list(table.getColumnLabels())
    data = np.array(table.getMatrix().to_numpy())
    return np.array(table.getIndependentColumn()), labels, data


def _vec3(table) -> tuple[list[str], np.ndarray]:
    """Labels and (n_frames, n_markers, 3) values of an opensim.TimeSeriesTableVec3."""
    labels = list(table.getColumnLabels())
    flat_table = table.flatten()  # keep it alive while its matrix view is read
    flat = np.array(flat_table.getMatrix().to_numpy())
    return labels, flat.reshape(flat.shape[0], len(labels), 3)


def _cols(labels: list[str], data: np.ndarray, names: list[str]) -> np.ndarray:
    return data[:, [labels.index(n) for n in names]]


@pytest.fixture(scope="module")
def walks(data_dir: Path) -> dict:
    return {name: read_c3d(data_dir / f"opensim-core/OpenSim/Tests/shared/{name}.c3d") for name in WALKS}


@pytest.mark.parametrize("name", list(WALKS))
def test_grf_matches_opensim_std(name: str, walks: dict, data_dir: Path, opensim_module, tmp_path: Path) -> None:
    osim = opensim_module
    std_dir = data_dir / "opensim-core/OpenSim/Common/Test"
    options = C3DConvertOptions(force_threshold_n=0.0, max_gap_frames=0, emg_map={}, **WALKS[name])
    conv = convert_c3d_data(walks[name], options)
    assert conv.plate_signs == [1.0, 1.0]  # these files already hold the reaction (vertical force up)
    rot = conv.rotation
    n = conv.analog_time_s.shape[0]
    rows = _every(n, 100)

    # (1) each plate, lab frame, moment about the plate centre: std_*_grfs.sto (N, mm, N·mm)
    t_std, labels, std = _sto(osim, std_dir / f"std_{name}_grfs.sto")
    assert len(rows) == len(t_std) and np.allclose(conv.analog_time_s[rows], t_std, atol=1e-9)
    for k, w in enumerate(conv.plates_lab, start=1):
        f = _cols(labels, std, [f"f{k}_{i}" for i in (1, 2, 3)])
        p = _cols(labels, std, [f"p{k}_{i}" for i in (1, 2, 3)]) * 1e-3
        m = _cols(labels, std, [f"m{k}_{i}" for i in (1, 2, 3)]) * 1e-3
        assert np.max(np.abs(w.force_n[rows] - f)) < 1e-2
        assert np.max(np.abs(w.centre_m - p)) < 1e-4
        assert np.max(np.abs(w.moment_nm[rows] - m)) < 1e-5  # 1e-2 N·mm

    # (2) grf.mot (OpenSim axes, SI) written, read back by OpenSim, rotated back to the lab: std_cop_*_grfs.sto
    files = convert_c3d(data_dir / f"opensim-core/OpenSim/Tests/shared/{name}.c3d", tmp_path, options).files
    t_mot, mot_labels, mot = _sto(osim, files["grf"])
    assert np.allclose(t_mot, conv.analog_time_s, atol=1e-9)
    t_cop, cop_labels, cop = _sto(osim, std_dir / f"std_cop_{name}_grfs.sto")
    assert np.allclose(t_mot[rows], t_cop, atol=1e-9)
    for k, side in WALKS[name]["plate_feet"].items():
        ours = _cols(mot_labels, mot, grf_labels(side))[rows]
        force, cop_m, torque = (ours[:, 3 * i:3 * i + 3] @ rot for i in range(3))  # OpenSim -> lab
        assert np.max(np.abs(force - _cols(cop_labels, cop, [f"f{k}_{i}" for i in (1, 2, 3)]))) < 1e-2
        assert np.max(np.abs(cop_m - _cols(cop_labels, cop, [f"p{k}_{i}" for i in (1, 2, 3)]) * 1e-3)) < 1e-4
        assert np.max(np.abs(torque - _cols(cop_labels, cop, [f"m{k}_{i}" for i in (1, 2, 3)]) * 1e-3)) < 1e-5


@pytest.mark.parametrize("name", list(WALKS))
def test_threshold_changes_only_unloaded_samples(name: str, walks: dict, data_dir: Path, opensim_module) -> None:
    std_file = data_dir / f"opensim-core/OpenSim/Common/Test/std_cop_{name}_grfs.sto"
    t_cop, cop_labels, cop = _sto(opensim_module, std_file)
    conv = convert_c3d_data(walks[name], C3DConvertOptions(force_threshold_n=20.0, emg_map={}, **WALKS[name]))
    exact = convert_c3d_data(walks[name], C3DConvertOptions(force_threshold_n=0.0, emg_map={}, **WALKS[name]))
    rows = _every(conv.analog_time_s.shape[0], 100)
    grf = conv.grf
    assert np.all(np.isfinite(grf.data))
    for k, side in WALKS[name]["plate_feet"].items():
        cols = [grf.labels.index(c) for c in grf_labels(side)]
        ours = grf.data[:, cols]
        # against OpenSim's file, at its rows: stance samples as OpenSim, the others empty
        f_std = _cols(cop_labels, cop, [f"f{k}_{i}" for i in (1, 2, 3)])
        p_std = _cols(cop_labels, cop, [f"p{k}_{i}" for i in (1, 2, 3)]) * 1e-3
        loaded = f_std[:, 2] > 20.0  # lab Z up; the reaction pushes up
        assert loaded.sum() >= 5 and (~loaded).sum() >= 5
        assert np.max(np.abs(ours[rows][loaded, 0:3] @ conv.rotation - f_std[loaded])) < 1e-2
        assert np.max(np.abs(ours[rows][loaded, 3:6] @ conv.rotation - p_std[loaded])) < 1e-4
        assert np.all(ours[rows][~loaded] == 0.0)
        # every analog sample: upward force above 20 N in a stance of >= 50 ms -> unchanged, else 0
        fz = conv.plates_lab[k - 1].force_n[:, 2]
        stance = np.zeros(fz.shape[0], dtype=bool)
        for seg in conv.segments:
            if seg.plate == k:
                stance[seg.start:seg.end + 1] = True
        assert np.all(fz[stance] > 20.0)
        assert np.array_equal(ours[stance], exact.grf.data[:, cols][stance])
        assert np.all(ours[~stance] == 0.0)


@pytest.mark.parametrize("name", list(WALKS))
def test_markers_match_opensim_std(name: str, walks: dict, data_dir: Path, opensim_module, tmp_path: Path) -> None:
    osim = opensim_module
    std = osim.TimeSeriesTableVec3(str(data_dir / f"opensim-core/OpenSim/Common/Test/std_{name}_markers.trc"))
    std_labels, std_xyz = _vec3(std)
    std_xyz = std_xyz * 1e-3  # mm -> m
    options = C3DConvertOptions(max_gap_frames=0, emg_map={}, **WALKS[name])
    conv = convert_c3d(data_dir / f"opensim-core/OpenSim/Tests/shared/{name}.c3d", tmp_path, options)
    written = osim.TimeSeriesTableVec3(str(conv.files["markers"]))
    assert written.getTableMetaDataAsString("Units") in ("m", "meters")
    labels, xyz = _vec3(written)
    rows = _every(xyz.shape[0], 10)
    assert len(rows) == std.getNumRows()
    assert np.allclose(np.asarray(written.getIndependentColumn())[rows], np.asarray(std.getIndependentColumn()))
    lab_xyz = xyz[rows][:, [labels.index(lab) for lab in std_labels]] @ conv.rotation  # OpenSim -> lab
    assert np.array_equal(np.isnan(lab_xyz), np.isnan(std_xyz))
    assert np.nanmax(np.abs(lab_xyz - std_xyz)) < 1e-4


def test_gap_filling_on_real_markers(data_dir: Path) -> None:
    """Frames the spline fills were NaN before; everything else is unchanged; long gaps are reported."""
    data = read_c3d(data_dir / UNIPD / "Walking1.c3d")
    raw = convert_c3d_data(data, C3DConvertOptions(max_gap_frames=0, emg_map={}, plate_feet={1: "r", 2: "l"}))
    filled = convert_c3d_data(data, C3DConvertOptions(max_gap_frames=10, emg_map={}, plate_feet={1: "r", 2: "l"}))
    a, b = raw.markers.xyz, filled.markers.xyz
    both = np.isfinite(a)
    assert np.array_equal(a[both], b[both])
    n_new = int((np.isfinite(b) & ~both).sum() // 3)
    assert n_new == sum(g.n_frames for g in filled.gaps if g.filled) > 0
    assert all(g.kind != "interior" or g.n_frames > 10 for g in filled.gaps if not g.filled)
    # a filled frame lies between its neighbours' positions within what a marker moves in a few frames
    for g in (g for g in filled.gaps if g.filled):
        j = filled.markers.labels.index(g.marker)
        ends = b[[g.start_frame - 1, g.end_frame + 1], j]
        inside = b[g.start_frame:g.end_frame + 1, j]
        span = np.linalg.norm(ends[1] - ends[0]) + 0.05
        assert np.all(np.linalg.norm(inside - ends[0], axis=1) <= span)


def test_grf_at_point_rate(walks: dict) -> None:
    analog = convert_c3d_data(walks["walking2"], C3DConvertOptions(emg_map={}, **WALKS["walking2"]))
    point = convert_c3d_data(walks["walking2"], C3DConvertOptions(emg_map={}, grf_rate="point", **WALKS["walking2"]))
    assert np.allclose(point.grf.time_s, point.markers.time_s)
    ratio = 2000 // 250  # analog samples per frame
    assert np.allclose(point.grf.data, analog.grf.data[::ratio][: point.grf.n_frames])


def _unipd_expected_sides(data_dir: Path, repetition: int) -> dict[int, str]:
    """Plate -> foot of a UNIPD walking repetition, from its acquisition.xml (StancesOnForcePlatforms)."""
    root = ET.parse(data_dir / UNIPD / "acquisition.xml").getroot()
    for trial in root.iter("Trial"):
        if trial.findtext("Type") == "Walking" and int(trial.findtext("RepetitionNumber")) == repetition:
            return {int(s.findtext("Forceplatform")): s.findtext("Leg")[0].lower() for s in trial.iter("StanceOnFP")}
    raise AssertionError(f"no Walking {repetition} in acquisition.xml")


def test_unipd_walks_emg_plates_and_body_weight(data_dir: Path, opensim_module, tmp_path: Path) -> None:
    """MOtoNMS UNIPD: 15 named EMG at 1020 Hz, two type-1 plates assigned to the feet acquisition.xml names,
    stance matching the C3D's gait events, vertical GRF peaks plausible for body weight.

    acquisition.xml holds no body mass (only lab, plates, EMG protocol), and Static1.c3d's plates read zero, so
    body weight is estimated from the walks themselves by the impulse over a step: in steady symmetric gait each
    foot's vertical impulse over its stance equals BW x step time (step time = left minus right plate contact)."""
    protocol = ET.parse(data_dir / "motonms/ConfigurationFiles/AcquisitionInterface/EMGsProtocols/"
                                   "UNIPD-15muscles-r.xml").getroot()
    muscles = [m.text.strip() for m in protocol.iter("Muscle")]
    assert len(muscles) == 15
    weights = []
    for rep in range(1, 6):
        path = data_dir / UNIPD / f"Walking{rep}.c3d"
        data = read_c3d(path)
        assert [p.plate_type for p in data.plates] == [1, 1]
        plate_channels = {c for p in data.plates for c in p.channels}
        emg_channels = [i for i in range(len(data.analog_labels)) if i not in plate_channels]
        emg_map = {str(i + 1): re.sub(r"\s+", "_", m) for i, m in zip(emg_channels, muscles)}
        options = C3DConvertOptions(rotation="y_up_z_forward", emg_map=emg_map, subject="Control1_UNIPD",
                                    trial=f"Walking{rep}")
        conv = convert_c3d_data(data, options)
        # EMG: 15 named channels at 1020 Hz, the C3D's own labels in the protocol's order
        assert conv.emg.labels == [re.sub(r"\s+", "_", m) for m in muscles]
        assert conv.emg.meta["DataRate"] == "1020"
        assert np.allclose(np.diff(conv.emg.time_s), 1 / 1020.0)
        assert [data.analog_labels[i][:20] for i in emg_channels] == [m[:20] for m in muscles]
        # plates -> feet from the foot markers agree with acquisition.xml
        sides = {seg.plate: seg.side for seg in conv.segments}
        assert sides == _unipd_expected_sides(data_dir, rep)
        # the right stance on plate 1 matches the C3D's right Foot Strike / Foot Off within 2 frames (60 Hz)
        right = next(seg for seg in conv.segments if seg.side == "r")
        events = {(e["label"], e["side"]): e["time_s"] for e in conv.events}
        assert abs(events[("Foot Strike", "r")] - right.start_s) <= 2 / 60
        assert abs(events[("Foot Off", "r")] - right.end_s) <= 2 / 60
        # body weight by the step impulse, then peaks
        left = next(seg for seg in conv.segments if seg.side == "l")
        step_s = left.start_s - right.start_s
        fy = {s: conv.grf.column(f"ground_force_{s}_vy") for s in "rl"}
        bw = np.mean([np.trapezoid(fy[s], conv.grf.time_s) / step_s for s in "rl"])
        weights.append(bw)
        for s in "rl":
            assert 0.9 <= fy[s].max() / bw <= 1.6, (rep, s, fy[s].max(), bw)
    weights = np.array(weights)
    assert 45 * G < weights.mean() < 120 * G  # an adult
    assert weights.std() / weights.mean() < 0.05  # the same subject in every walk
    # the last walk written to disk opens in OpenSim
    files = convert_c3d(data_dir / UNIPD / "Walking5.c3d", tmp_path, options).files
    t, labels, emg = _sto(opensim_module, files["emg"])
    assert labels == conv.emg.labels and emg.shape == (conv.emg.n_frames, 15)
    events = json.loads(files["events"].read_text())["events"]
    assert [e["label"] for e in events] == ["Foot Strike", "Foot Off"]


def test_uwa_fast_walking_converts(data_dir: Path, opensim_module, tmp_path: Path) -> None:
    """UWA 'Fast Walking.c3d' (duplicated parameter, rejected by the `c3d` package) converts; its plate 1 peak is
    plausible for the body mass the file itself records (PROCESSING:BodyMass, 67 kg)."""
    path = data_dir / UWA_FAST
    conv = convert_c3d(path, tmp_path, C3DConvertOptions(rotation="z_up", subject="Control1_UWA", trial="FastWalking"))
    assert {"markers", "grf", "external_loads", "emg", "events"} <= set(conv.files)
    assert conv.emg.n_frames == conv.analog_time_s.shape[0] and len(conv.emg.labels) == 16
    assert not any(lab.startswith("*") for lab in conv.markers.labels)
    data = read_c3d(path)
    mass_kg = float(np.asarray(data.parameters["PROCESSING:BODYMASS"]).reshape(-1)[0])
    assert mass_kg == pytest.approx(67.0)
    assert [(s.plate, s.side) for s in conv.segments] == [(1, "r")]
    peak = conv.grf.column("ground_force_r_vy").max()
    assert 0.9 <= peak / (mass_kg * G) <= 1.8
    table = opensim_module.TimeSeriesTableVec3(str(conv.files["markers"]))
    assert table.getNumColumns() == len(conv.markers.labels)


def test_written_files_open_in_opensim(walks: dict, data_dir: Path, opensim_module, tmp_path: Path) -> None:
    osim = opensim_module
    conv = convert_c3d(data_dir / "opensim-core/OpenSim/Tests/shared/walking2.c3d", tmp_path,
                       C3DConvertOptions(**WALKS["walking2"]))
    loads = osim.ExternalLoads(str(conv.files["external_loads"]), True)
    assert loads.getSize() == 2
    forces = {loads.get(i).getAppliedToBodyName(): loads.get(i) for i in range(loads.getSize())}
    assert set(forces) == {"calcn_r", "calcn_l"}
    assert forces["calcn_r"].getForceIdentifier() == "ground_force_r_v"
    assert forces["calcn_l"].getPointIdentifier() == "ground_force_l_p"
    assert forces["calcn_l"].getTorqueIdentifier() == "ground_torque_l_"
    datafile = Path(loads.getDataFileName())
    assert (conv.files["external_loads"].parent / datafile).resolve() == conv.files["grf"].resolve()
    storage = osim.Storage(str(conv.files["grf"]))
    assert storage.getSize() == conv.grf.n_frames and storage.getColumnLabels().getSize() == 19
    report = json.loads(conv.files["report"].read_text())
    assert report["plate_signs"] == [1.0, 1.0] and report["filled_gaps"] >= 0


def test_missing_required_marker_fails_clearly(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "opensim-core/OpenSim/Tests/shared/walking2.c3d"
    options = C3DConvertOptions(required_markers=["RCAL", "RHEE_missing"], subject="S01", trial="walk2")
    with pytest.raises(C3DError) as info:
        convert_c3d(path, tmp_path / "out", options)
    err = info.value
    assert "RHEE_missing" in str(err) and "RCAL" not in err.field
    assert err.subject == "S01" and err.trial == "walk2" and str(path) in str(err)
    assert not (tmp_path / "out" / "markers.trc").exists()


def test_cli_missing_required_marker_one_line(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "opensim-core/OpenSim/Tests/shared/walking2.c3d"
    proc = subprocess.run([sys.executable, "-m", "pimsk", "c3d", str(path), "--out-dir", str(tmp_path),
                           "--subject", "S01", "--trial", "walk2", "--required-markers", "RCAL,NOPE"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert "NOPE" in errors[0] and "S01" in errors[0] and "walk2" in errors[0] and "walking2.c3d" in errors[0]


def test_cli_converts(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "opensim-core/OpenSim/Tests/shared/walking5.c3d"
    proc = subprocess.run([sys.executable, "-m", "pimsk", "c3d", str(path), "--out-dir", str(tmp_path),
                           "--rotation", "z_up_-x_forward", "--plate-feet", "1=l,2=r", "--max-gap-frames", "5",
                           "--force-threshold-n", "25", "--emg-map", "none"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    for name in ("markers.trc", "grf.mot", "external_loads.xml", "events.json", "conversion.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "emg_raw.sto").exists()
    report = json.loads((tmp_path / "conversion.json").read_text())
    assert {(s["plate"], s["side"]) for s in report["segments"]} == {(1, "l"), (2, "r")}


def test_marker_rename_drop_keep(walks: dict) -> None:
    options = C3DConvertOptions(rename_markers={"RCAL": "RHEE", "LCAL": "RCAL_x"}, drop_markers=["C7"],
                                required_markers=["RHEE"], emg_map={}, **WALKS["walking2"])
    conv = convert_c3d_data(walks["walking2"], options)
    labels = conv.markers.labels
    assert "RHEE" in labels and "RCAL_x" in labels and "RCAL" not in labels and "C7" not in labels
    raw = walks["walking2"].markers
    back = conv.markers.marker("RHEE") @ conv.rotation * 1e3  # OpenSim m -> lab mm
    finite = np.isfinite(raw.marker("RCAL")).all(axis=1)
    assert np.allclose(back[finite], raw.marker("RCAL")[finite])
    keep = convert_c3d_data(walks["walking2"], C3DConvertOptions(keep_markers=["LASI", "RASI"], emg_map={},
                                                                **WALKS["walking2"]))
    assert keep.markers.labels == ["LASI", "RASI"]


def test_cli_subject_file(data_dir: Path, tmp_path: Path) -> None:
    """Rotation, EMG channels and plate assignment from a subject file (validated by pimsk.config)."""
    from pimsk.cli import main

    subject = tmp_path / "subject.yaml"
    subject.write_text(
        "id: unipd1\nmass_kg: 84\nheight_m: 1.80\nmodel: builtin:leg\nlab_to_opensim: 'z,y,-x'\n"
        "emg:\n  channels: {'Right Soleus': soleus_r, 'Right Tibialis anterior': tibant_r}\n"
        "trials:\n  - {name: Walking2, file: Walking2.c3d, plates: {'1': r, '2': none},"
        " rename_markers: {RCA: RHEE}}\n")
    out = tmp_path / "out"
    assert main(["c3d", str(data_dir / UNIPD / "Walking2.c3d"), "--out-dir", str(out), "--trial", "Walking2",
                 "--subject-file", str(subject)]) == 0
    report = json.loads((out / "conversion.json").read_text())
    assert report["subject"] == "unipd1"
    assert np.array_equal(report["rotation_lab_to_opensim"], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    assert [(s["plate"], s["side"]) for s in report["segments"]] == [(1, "r"), (2, None)]
    header = [line for line in (out / "emg_raw.sto").read_text().splitlines()[:12] if line.startswith("time")]
    assert header == ["time\tsoleus_r\ttibant_r"]
    assert "RHEE" in (out / "markers.trc").read_text().splitlines()[3]
