"""`pimsk emg` and the gait-cycle tools on real EMG: MOtoNMS Control1_UNIPD, 5 walks, 15 right-leg muscles
at 1020 Hz (subjects/motonms_unipd/subject.yaml names the channels).

Checks: the band-pass upper edge is lowered below Nyquist (510 Hz) to 0.8 x 510 = 408 Hz; envelopes are finite
and non-negative; every channel's peak over the 5 walks is exactly 1 and no walk is normalised on its own; the
kinematics time base (60 Hz) is honoured; the right heel strike found from plate 1's vertical force (20 N)
agrees with the C3D's own "Foot Strike" event within one marker frame (1/60 s). No OpenSim; ~5 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pimsk.cli import main
from pimsk.io.containers import Table
from pimsk.io.storage import read_storage, write_storage
from pimsk.paths import PROJECT_ROOT

SUBJECT_FILE = PROJECT_ROOT / "subjects" / "motonms_unipd" / "subject.yaml"

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def walks(data_dir):
    """Conversion of every walk of the subject (EMG named by muscle, GRF per foot, events)."""
    from pimsk.config import load_subject, resolve_path
    from pimsk.convert.c3d_to_opensim import C3DConvertOptions, convert_c3d_data
    from pimsk.io.c3d_read import read_c3d

    subject = load_subject(SUBJECT_FILE)
    out = {}
    for trial in subject["trials"]:
        path = resolve_path(trial["file"], Path(subject["_dir"]))
        if not path.is_file():
            pytest.skip(f"{path} not found")
        options = C3DConvertOptions(rotation=subject["lab_to_opensim"],
                                    plate_feet={int(k): v for k, v in trial["plates"].items()},
                                    emg_map=dict(subject["emg"]["channels"]), subject=subject["id"],
                                    trial=trial["name"])
        out[trial["name"]] = (convert_c3d_data(read_c3d(path, subject=subject["id"], trial=trial["name"]), options),
                              trial)
    return out


def test_envelopes_of_the_real_walks(walks, tmp_path, capsys) -> None:
    raw, kin = [], []
    for name, (conv, _) in walks.items():
        assert conv.emg is not None and len(conv.emg.labels) == 15
        assert float(conv.emg.meta["DataRate"]) == 1020.0
        raw.append(write_storage(tmp_path / f"{name}.sto", conv.emg, extra_header={"DataRate": "1020", "units": "V"}))
        mk = conv.markers
        kin.append(write_storage(tmp_path / f"{name}_kin.mot", Table(mk.time_s, np.zeros((mk.n_frames, 1)), ["t"])))
    out = tmp_path / "env"
    assert main(["emg", *map(str, raw), "--out-dir", str(out), "--subject", "motonms_unipd"]) == 0
    assert "lowered to 408 Hz" in capsys.readouterr().out

    ref = json.loads((out / "emg_reference.json").read_text())
    assert ref["method"] == "peak_over_trials" and ref["rate_hz"] == [1020.0] * 5
    assert ref["band_hz_used"] == [[20.0, 408.0]] * 5
    envs = {name: read_storage(out / f"{name}_envelopes.sto") for name in walks}
    stacked = np.vstack([e.data for e in envs.values()])
    assert stacked.shape[1] == 15 and np.all(np.isfinite(stacked)) and stacked.min() >= 0.0
    np.testing.assert_allclose(stacked.max(axis=0), 1.0, rtol=1e-12)
    per_trial = np.array([e.data.max(axis=0) for e in envs.values()])  # (5 walks, 15 channels)
    assert np.all(per_trial <= 1.0 + 1e-12)
    assert (per_trial < 0.95).sum() >= 15  # most trial peaks are below 1: one reference for all walks
    for name, e in envs.items():
        np.testing.assert_allclose(e.time_s, walks[name][0].emg.time_s, atol=1e-9)

    # at the 60 Hz kinematics times
    out60 = tmp_path / "env60"
    assert main(["emg", *map(str, raw), "--out-dir", str(out60), "--times-from", *map(str, kin)]) == 0
    for name, e in envs.items():
        e60 = read_storage(out60 / f"{name}_envelopes.sto")
        np.testing.assert_allclose(e60.time_s, walks[name][0].markers.time_s, atol=1e-9)
        np.testing.assert_allclose(e60.data, np.column_stack(
            [np.interp(e60.time_s, e.time_s, e.data[:, k]) for k in range(15)]), atol=1e-12)


def test_heel_strike_from_plate_matches_the_c3d_event(walks, tmp_path) -> None:
    from pimsk.learn.datasets import build_trial, gait_cycles, heel_strikes_from_events, heel_strikes_from_grf

    for name, (conv, trial) in walks.items():  # measured: plate - event = -13.3 .. -0.6 ms over the 5 walks
        from_plate = heel_strikes_from_grf(conv.grf, "ground_force_r_vy", threshold_n=20.0)
        events = tmp_path / f"{name}_events.json"
        events.write_text(json.dumps({"events": conv.events}))
        from_events = heel_strikes_from_events(events, "r")
        assert from_plate.size == 1 and from_events.size == 1, name
        assert abs(from_plate[0] - from_events[0]) <= 1 / 60.0, name
        assert abs(from_plate[0] - trial["time_range_s"][0]) <= 1 / 60.0, name  # the subject file's cycle start

    conv, trial = walks["walk1"]
    from_plate = heel_strikes_from_grf(conv.grf, "ground_force_r_vy", threshold_n=20.0)

    start, end = float(from_plate[0]), float(trial["time_range_s"][1])
    from pimsk.core.emg import EMGWarning, envelope

    with pytest.warns(EMGWarning):
        env = envelope(conv.emg.data, 1020.0)
    sample = build_trial("walk1", Table(conv.emg.time_s, env / env.max(axis=0), conv.emg.labels),
                         [(conv.grf, ["ground_force_r_vy"])], rate_hz=1020.0)
    cycle = gait_cycles(sample, [(start, end)])
    assert cycle.emg.shape == (1, 100, 15) and cycle.targets.shape == (1, 100, 1)
    assert np.all(np.isfinite(cycle.emg)) and cycle.dt_s[0] == pytest.approx((end - start) / 99)
    # the cycle starts where the vertical force crosses 20 N (linear between the same analog samples)
    assert cycle.targets[0, 0, 0] == pytest.approx(20.0, abs=1e-6)
