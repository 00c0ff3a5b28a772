"""`pimsk synth` end to end on short runs of the demo subjects: C3D files, EMG, truth, determinism.

Golden values come from OpenSim itself (replayed states, InverseDynamicsSolver) and from the subject
file (scale factors, perturbations, noise levels), never from the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pimsk.paths import PROJECT_ROOT

pytestmark = pytest.mark.opensim

WRIST = PROJECT_ROOT / "subjects" / "demo_wrist" / "subject.yaml"
LEG = PROJECT_ROOT / "subjects" / "demo_leg" / "subject.yaml"
SHORT_S = 1.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory, opensim_module):
    """Wrist subject three times (CLI seed 5, API seed 5, API seed 6) and the leg's pair trial, shortened."""
    from pimsk.cli import main
    from pimsk.synth.generate import synthesize

    root = tmp_path_factory.mktemp("synth")
    rc = main(["synth", "--config", str(WRIST), "--out", str(root / "a"), "--seed", "5",
               "--max-duration", str(SHORT_S)])
    assert rc == 0
    synthesize(WRIST, root / "b", seed=5, max_duration_s=SHORT_S)
    synthesize(WRIST, root / "c", seed=6, max_duration_s=SHORT_S)
    synthesize(LEG, root / "leg", max_duration_s=2.0, only_trials=["static", "knee_pair"])
    return root


def _truth(folder: Path) -> dict:
    return json.loads((folder / "truth" / "truth.json").read_text())


def _config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _read(path: Path):
    from pimsk.osim.storage import read_storage

    return read_storage(path)


def _c3d(path: Path):
    import ezc3d

    return ezc3d.c3d(str(path))


def _lab_markers_in_opensim_m(c) -> tuple[list[str], np.ndarray]:
    """(n, k, 3) C3D markers rotated into OpenSim ground with the subject's lab_to_opensim (z_up: x,z,-y)."""
    labels = list(c["parameters"]["POINT"]["LABELS"]["value"])
    lab = np.transpose(c["data"]["points"][:3], (2, 1, 0)) / 1000.0
    rot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    return labels, np.einsum("ij,nkj->nki", rot, lab)


def _set_state(model, state, table, k: int) -> None:
    import opensim as osim

    state.setTime(float(table.time_s[k]))
    model.setStateVariableValues(state, osim.Vector.createFromMat(np.ascontiguousarray(table.data[k])))


def test_c3d_files_read_back(runs):
    truth = _truth(runs / "a")
    cfg = _config(WRIST)
    for name, trial in truth["trials"].items():
        c = _c3d(runs / "a" / trial["c3d"])
        p = c["parameters"]
        assert p["POINT"]["RATE"]["value"][0] == cfg["synth"]["marker_rate_hz"]
        assert list(p["POINT"]["UNITS"]["value"]) == ["mm"]
        assert list(p["POINT"]["LABELS"]["value"]) == ["R_ELB_LAT", "R_ELB_MED", "R_FA_DORS", "R_RAD_STY",
                                                       "R_ULN_STY", "R_MCP2", "R_MCP5", "R_HAND_DORS", "R_MCP3",
                                                       "R_HAND_ULN"]
        n = c["data"]["points"].shape[2]
        marker_rate = cfg["synth"]["marker_rate_hz"]
        assert n == trial["n_frames"] == round(trial["duration_s"] * marker_rate) + 1
        assert np.all(np.isfinite(c["data"]["points"]))
        if trial["kind"] == "static":
            assert c["data"]["analogs"].size == 0
            continue
        rate = p["ANALOG"]["RATE"]["value"][0]
        assert rate >= 1000.0 and rate == cfg["synth"]["emg_rate_hz"]
        assert list(p["ANALOG"]["LABELS"]["value"]) == list(cfg["emg"]["channels"])
        assert list(p["ANALOG"]["UNITS"]["value"]) == ["V"] * 5
        assert c["data"]["analogs"].shape == (1, 5, n * round(rate / marker_rate))


def test_static_markers_are_the_scaled_model_markers_plus_noise(runs, opensim_module):
    model = opensim_module.Model(str(runs / "a" / "truth" / "static" / "model.osim"))
    state = model.initSystem()
    labels, xyz = _lab_markers_in_opensim_m(_c3d(runs / "a" / "static.c3d"))
    expected = np.array([model.getMarkerSet().get(m).getLocationInGround(state).to_numpy() for m in labels])
    assert np.abs(xyz.mean(axis=0) - expected).max() < 0.3e-3  # mean of >= 101 frames: noise sd / 10
    sd_mm = 1000.0 * (xyz - expected).std()
    assert sd_mm == pytest.approx(_config(WRIST)["synth"]["noise"]["marker_sd_mm"], rel=0.1)


def test_dynamic_markers_follow_the_truth_states(runs, opensim_module):
    folder = runs / "a" / "truth" / "flex_medium"
    model = opensim_module.Model(str(folder / "model.osim"))
    state = model.initSystem()
    states = _read(folder / "states.sto")
    labels, xyz = _lab_markers_in_opensim_m(_c3d(runs / "a" / "flex_medium.c3d"))
    assert np.ptp(np.degrees(states.column("/jointset/wrist_flex_r/wrist_flexion_r/value"))) > 30.0
    err = []
    for k in range(0, states.n_frames, 10):
        _set_state(model, state, states, k)
        model.realizePosition(state)
        true = np.array([model.getMarkerSet().get(m).getLocationInGround(state).to_numpy() for m in labels])
        err.append(xyz[k] - true)
    sd_mm = _config(WRIST)["synth"]["noise"]["marker_sd_mm"]
    assert 1000.0 * np.sqrt(np.mean(np.square(err))) == pytest.approx(sd_mm, rel=0.15)


@pytest.mark.parametrize("run,trial,coord", [("a", "flex_medium", "wrist_flexion_r"),
                                             ("leg", "knee_pair", "knee_angle_r")])
def test_opensim_ik_on_the_c3d_markers_recovers_the_truth_coordinates(runs, run, trial, coord, opensim_module):
    """OpenSim's InverseKinematicsSolver on the noisy C3D markers (truth model): RMSE < 1 deg."""
    osim = opensim_module
    labels, xyz = _lab_markers_in_opensim_m(_c3d(runs / run / f"{trial}.c3d"))
    model = osim.Model(str(runs / run / "truth" / trial / "model.osim"))
    state = model.initSystem()
    rate = _config(WRIST if run == "a" else LEG)["synth"]["marker_rate_hz"]
    table = osim.TimeSeriesTableVec3()
    table.setColumnLabels(labels)
    for k in range(xyz.shape[0]):
        row = osim.RowVectorVec3(len(labels))
        for j in range(len(labels)):
            row[j] = osim.Vec3(*xyz[k, j])
        table.appendRow(k / rate, row)
    solver = osim.InverseKinematicsSolver(model, osim.MarkersReference(table, osim.SetMarkerWeights()),
                                          osim.SimTKArrayCoordinateReference())
    solver.setAccuracy(1e-8)
    got = []
    for k in range(xyz.shape[0]):
        state.setTime(k / rate)
        solver.assemble(state) if k == 0 else solver.track(state)
        got.append(math.degrees(model.getCoordinateSet().get(coord).getValue(state)))
    truth = _read(runs / run / "truth" / trial / "coordinates.mot").column(coord)
    assert np.ptp(truth) > 20.0
    assert np.sqrt(np.mean((np.array(got) - truth) ** 2)) < 1.0


def test_raw_emg_is_excitation_modulated_noise_leading_by_the_emd(runs):
    """Mean-square EMG = (gain u(t + emd))^2 + floor^2: find the lag from the data alone (correlation
    summed over the channels), then regress for the gain and the floor."""
    cfg = _config(WRIST)
    c = _c3d(runs / "a" / "flex_medium.c3d")
    rate = c["parameters"]["ANALOG"]["RATE"]["value"][0]
    emg = c["data"]["analogs"][0].T  # (n, channels)
    exc = _read(runs / "a" / "truth" / "flex_medium" / "excitations.sto")
    t = np.arange(emg.shape[0]) / rate
    win = int(0.05 * rate)
    kernel = np.ones(win) / win
    inner = slice(win, -win)
    emd = cfg["synth"]["noise"]["emd_s"]
    channels = list(cfg["emg"]["channels"].items())
    power = [np.convolve(emg[:, j] ** 2, kernel, mode="same") for j in range(len(channels))]

    def smoothed_u2(muscle: str, lag: float) -> np.ndarray:
        u = np.interp(t + lag, exc.time_s, exc.column(muscle))
        return np.convolve(u ** 2, kernel, mode="same")

    lags = np.round(np.arange(-0.1, 0.1001, 0.005), 3)
    scores = np.array([sum(np.corrcoef(power[j][inner], smoothed_u2(m, lag)[inner])[0, 1]
                           for j, (_, m) in enumerate(channels)) for lag in lags]) / len(channels)
    best = lags[int(np.argmax(scores))]
    assert best == pytest.approx(emd, abs=0.0101)
    assert scores.max() > scores[list(lags).index(0.0)] + 0.03  # a delay is clearly there
    gain = cfg["synth"]["noise"]["emg_gain_uv"] * 1e-6
    floor = cfg["synth"]["noise"]["emg_floor_uv"] * 1e-6
    for j, (label, muscle) in enumerate(channels):
        slope, intercept = np.polyfit(smoothed_u2(muscle, emd)[inner], power[j][inner], 1)
        assert math.sqrt(slope) == pytest.approx(gain, rel=0.15), label
        assert math.sqrt(max(intercept, 0.0)) < 3 * floor, label


@pytest.mark.parametrize("run,trials", [("a", ["flex_slow", "flex_fast"]), ("leg", ["knee_pair"])])
def test_truth_forces_equal_opensim_on_replayed_states(runs, run, trials, opensim_module):
    from pimsk.osim.logging import quiet_opensim

    quiet_opensim("error")  # setting a locked coordinate's stored value warns
    try:
        for trial in trials:
            folder = runs / run / "truth" / trial
            model = opensim_module.Model(str(folder / "model.osim"))
            state = model.initSystem()
            states, forces = _read(folder / "states.sto"), _read(folder / "forces.sto")
            names = model.getStateVariableNames()
            assert [names.get(i) for i in range(names.getSize())] == states.labels
            assert np.ptp(forces.data, axis=0).max() > 10.0  # the trial does move force
            for k in range(states.n_frames):
                _set_state(model, state, states, k)
                model.realizeDynamics(state)
                got = [model.getMuscles().get(m).getTendonForce(state) for m in forces.labels]
                np.testing.assert_allclose(got, forces.data[k], rtol=1e-10, atol=1e-9)
    finally:
        quiet_opensim()


@pytest.mark.parametrize("run,trial", [("a", "flex_fast"), ("leg", "knee_pair")])
def test_truth_moments_equal_inverse_dynamics_of_truth_kinematics(runs, run, trial, opensim_module):
    """OpenSim's InverseDynamicsSolver (muscles switched off) on the truth q, u, udot gives the truth
    muscle moment (sum of moment arm x tendon force) of every free coordinate."""
    osim = opensim_module
    folder = runs / run / "truth" / trial
    model = osim.Model(str(folder / "model.osim"))
    for i in range(model.getMuscles().getSize()):
        model.updMuscles().get(i).set_appliesForce(False)
    state = model.initSystem()
    q, u, a = (_read(folder / f) for f in ("coordinates.mot", "speeds.sto", "accelerations.sto"))
    moments = _read(folder / "moments.sto")
    coords = [model.getCoordinateSet().get(i).getName() for i in range(model.getCoordinateSet().getSize())]
    assert q.labels == coords
    solver = osim.InverseDynamicsSolver(model)
    for k in range(0, q.n_frames, 3):
        state.setTime(float(q.time_s[k]))
        for j, name in enumerate(coords):
            c = model.getCoordinateSet().get(name)
            c.setValue(state, math.radians(q.data[k, j]), False)
            c.setSpeedValue(state, u.data[k, j])
        model.realizeVelocity(state)
        tau = solver.solve(state, osim.Vector(list(a.data[k]))).to_numpy()
        for label in moments.labels:
            j = coords.index(label.removesuffix("_moment"))
            assert tau[j] == pytest.approx(moments.column(label)[k], abs=1e-8)


def test_truth_records_scale_factors_masses_and_parameters(runs, opensim_module):
    for run, path in (("a", WRIST), ("leg", LEG)):
        truth, cfg = _truth(runs / run), _config(path)
        for body, f in cfg["synth"]["scale_factors"].items():
            assert truth["scale_factors"][body] == [f] * 3
        generic = opensim_module.Model(str(runs / run / truth["generic_model"]))
        gs = generic.initSystem()
        scaled = opensim_module.Model(str(runs / run / truth["truth_model"]))
        ss = scaled.initSystem()
        # every marker pair on one body: distance ratio = that body's factor
        mk = scaled.getMarkerSet()
        by_body: dict[str, list[str]] = {}
        for i in range(mk.getSize()):
            by_body.setdefault(mk.get(i).getParentFrame().getName(), []).append(mk.get(i).getName())
        for body, names in by_body.items():
            a, b = names[0], names[1]
            d = [np.linalg.norm(np.array(m.getMarkerSet().get(a).getLocationInGround(s).to_numpy())
                                - np.array(m.getMarkerSet().get(b).getLocationInGround(s).to_numpy()))
                 for m, s in ((scaled, ss), (generic, gs))]
            assert d[0] / d[1] == pytest.approx(truth["scale_factors"][body][0], rel=1e-9), body
        mass = sum(scaled.getBodySet().get(i).getMass() for i in range(scaled.getBodySet().getSize()))
        gmass = sum(generic.getBodySet().get(i).getMass() for i in range(generic.getBodySet().getSize()))
        assert mass == pytest.approx(gmass * cfg["mass_kg"] / cfg["synth"]["generic_body_mass_kg"], rel=1e-9)
        params = truth["muscle_parameters"]
        for muscle, changes in cfg["synth"]["muscle_perturbation_pct"].items():
            for p, pct in changes.items():
                assert params["truth"][muscle][p] == pytest.approx(params["scaled"][muscle][p] * (1 + pct / 100))
            m = scaled.getMuscles().get(muscle)
            assert m.getMaxIsometricForce() == pytest.approx(params["truth"][muscle]["max_isometric_force"])
            assert m.getTendonSlackLength() == pytest.approx(params["truth"][muscle]["tendon_slack_length"])


def test_same_seed_same_bytes_other_seed_other_noise(runs):
    a, b, c = runs / "a", runs / "b", runs / "c"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "synth_timing.json")
    assert len(files) > 30
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "synth_timing.json")
    for rel in files:
        same = (a / rel).read_bytes() == (b / rel).read_bytes()
        if rel.name == "truth.json":  # records the seed and nothing random otherwise
            assert (a / rel).read_text() == (c / rel).read_text().replace('"seed": 6', '"seed": 5')
        assert same, rel
        if rel.suffix == ".c3d":
            assert (a / rel).read_bytes() != (c / rel).read_bytes(), rel
        elif rel.suffix in (".sto", ".mot", ".osim"):
            assert (a / rel).read_bytes() == (c / rel).read_bytes(), rel  # the simulation ignores the seed
    _, xa = _lab_markers_in_opensim_m(_c3d(a / "flex_slow.c3d"))
    _, xc = _lab_markers_in_opensim_m(_c3d(c / "flex_slow.c3d"))
    sd_mm = _config(WRIST)["synth"]["noise"]["marker_sd_mm"]
    assert 1000.0 * (xa - xc).std() == pytest.approx(math.sqrt(2) * sd_mm, rel=0.1)


def test_determinate_pair_trial_has_two_muscles_and_no_co_contraction(runs):
    truth = _truth(runs / "leg")
    trial = truth["trials"]["knee_pair"]
    assert trial["muscles"] == ["vas_int_r", "bifemsh_r"]
    assert trial["free_coordinates"] == ["knee_angle_r"]
    assert set(trial["emg_channels"]) == {"EMG_VI", "EMG_BFSH"}
    exc = _read(runs / "leg" / "truth" / "knee_pair" / "excitations.sto")
    assert exc.data.max(axis=0).min() > 0.05  # both muscles burst
    floor = _config(LEG)["synth"]["min_excitation"]
    assert exc.data.min() == pytest.approx(floor)  # resting tone
    assert np.minimum(exc.column("vas_int_r"), exc.column("bifemsh_r")).max() <= floor + 1e-4  # never together
    params = truth["muscle_parameters"]  # the determinate pair is the scaled model's, unperturbed
    for muscle in trial["muscles"]:
        assert params["truth"][muscle] == params["scaled"][muscle]
    c = _c3d(runs / "leg" / "knee_pair.c3d")
    assert list(c["parameters"]["ANALOG"]["LABELS"]["value"]) == ["EMG_VI", "EMG_BFSH"]


def test_trials_are_padded_around_their_analysis_window(runs):
    """A shortened trial keeps the rest the subject file records before and after its analysis window
    (time_range_s): the window is cut to SHORT_S, the padding stays; the motion starts from rest and the
    excitations hold their baseline until the first burst, which starts inside the window."""
    cfg = _config(WRIST)
    truth = _truth(runs / "a")
    for spec in cfg["trials"]:
        t0, t1 = spec["time_range_s"]
        syn = cfg["synth"]["trials"][spec["name"]]
        got = truth["trials"][spec["name"]]
        assert got["analysis_window_s"] == pytest.approx([t0, min(t1, t0 + SHORT_S)])
        assert got["duration_s"] == pytest.approx(got["analysis_window_s"][1] + syn["duration_s"] - t1)
        folder = runs / "a" / "truth" / spec["name"]
        assert np.all(_read(folder / "speeds.sto").data[0] == 0.0)
        first_burst = min(b["start_s"] for b in syn["excitation"]["bursts"])
        assert t0 < first_burst < got["analysis_window_s"][1]
        exc = _read(folder / "excitations.sto")
        rest = exc.time_s <= first_burst
        for muscle, level in syn["excitation"]["baseline"].items():
            expected = max(level, cfg["synth"]["min_excitation"])
            np.testing.assert_allclose(exc.column(muscle)[rest], expected, rtol=0, atol=1e-12)


def _edited(tmp_path: Path, edit) -> Path:
    doc = _config(WRIST)
    edit(doc)
    path = tmp_path / "subject.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["synth"]["scale_factors"].update(radius=1.1), "synth.scale_factors"),
    (lambda d: d["synth"]["trials"]["flex_slow"]["excitation"]["bursts"][0].update(muscles=["PL"]),
     "synth.trials.flex_slow.excitation.bursts[0].muscles"),
    (lambda d: d["synth"].update(emg_rate_hz=1500.5), "synth.emg_rate_hz"),
    (lambda d: d["synth"]["muscle_perturbation_pct"].update(FCR={"strength": 3}),
     "synth.muscle_perturbation_pct.FCR.strength"),
    (lambda d: d.update(model="builtin:arm"), "model"),
    (lambda d: d["synth"]["trials"].update(flex_extra={"duration_s": 1.0}), "synth.trials"),
    (lambda d: d["static"].update(frames=3), "static"),  # the subject schema's own check
    (lambda d: d["emg"]["channels"].update(EMG_PL="PL"), "emg.channels"),
    (lambda d: d["trials"][0].update(time_range_s=[0.5, 60.0]), "trials.flex_slow.time_range_s"),
    (lambda d: d["synth"].update(min_excitation=0.9), "synth.min_excitation"),
])
def test_bad_settings_name_the_file_and_field(tmp_path, edit, field, opensim_module):
    from pimsk.errors import ConfigError
    from pimsk.synth.generate import synthesize

    path = _edited(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        synthesize(path, tmp_path / "out", max_duration_s=0.1)
    assert info.value.field == field
    assert str(path.name) in str(info.value)
