"""Learning samples (pimsk.learn.datasets): heel strikes, gait cycles, windows, splits, seeds.

Golden values are hand-solved: a half-sine stance force F(t) = F_max sin(pi (t - t_on) / T_stance) crosses a
threshold F_th at t_on + T_stance / pi * asin(F_th / F_max); a linear signal time-normalised over [a, b] is
linspace(a, b, 100); a trial of n frames holds 1 + (n - L) // s windows of length L and stride s.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from pimsk.errors import ConfigError
from pimsk.io.containers import Table
from pimsk.learn.datasets import (DatasetWarning, SampleSet, Standardiser, build_trial, concat, cross_speed,
                                  cycle_bounds, gait_cycles, heel_strikes_from_events, heel_strikes_from_force,
                                  heel_strikes_from_grf, leave_one_trial_out, make_loader, sliding_windows,
                                  table_in_si, time_normalise, window_starts, within_trial_split)
from pimsk.learn.datasets import blocked_split

RATE_HZ = 1000.0
F_MAX_N = 800.0
STANCE_S = 0.6
ONSETS_S = [0.3, 1.4, 2.5]


def _grf(noise_n: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Vertical force: three half-sine stances, a spike (20 ms) before the first, a 20 ms dropout mid-stance
    in the second, and a contact already loaded at t = 0."""
    t = np.arange(0.0, 3.5, 1 / RATE_HZ)
    f = np.zeros_like(t)
    for on in ONSETS_S:
        inside = (t >= on) & (t <= on + STANCE_S)
        f[inside] = F_MAX_N * np.sin(np.pi * (t[inside] - on) / STANCE_S)
    f[t < 0.1] = 500.0 * (1 - t[t < 0.1] / 0.1)  # end of a previous stance: no observed onset
    f[(t >= 0.18) & (t < 0.20)] = 100.0  # a 20 ms spike: not a contact
    f[(t >= 1.7) & (t < 1.72)] = 0.0  # a 20 ms dropout inside stance: bridged
    f += noise_n * np.random.default_rng(0).standard_normal(t.size)
    return t, f


def test_heel_strikes_from_a_synthetic_grf() -> None:
    t, f = _grf()
    strikes = heel_strikes_from_force(t, f, threshold_n=20.0, min_stance_s=0.1, min_swing_s=0.1)
    expected = np.asarray(ONSETS_S) + STANCE_S / np.pi * np.arcsin(20.0 / F_MAX_N)  # +4.78 ms
    np.testing.assert_allclose(strikes, expected, atol=1.5e-3)  # noise 3 N on a 4.2 N/ms slope, 1 ms samples
    table = Table(t, np.column_stack([np.zeros_like(f), f]), ["ground_force_r_vx", "ground_force_r_vy"])
    np.testing.assert_allclose(heel_strikes_from_grf(table, "ground_force_r_vy"), strikes)
    with pytest.raises(ConfigError, match="ground_force_l_vy"):
        heel_strikes_from_grf(table, "ground_force_l_vy")
    bounds = cycle_bounds(strikes)
    assert len(bounds) == 2 and bounds[0] == (strikes[0], strikes[1])
    with pytest.warns(DatasetWarning, match="not one gait cycle"):
        assert cycle_bounds([0.0, 1.1, 4.0]) == [(0.0, 1.1)]


def test_heel_strikes_from_events_json(tmp_path) -> None:
    doc = {"source": "x.c3d", "subject": "s", "trial": "t", "events": [
        {"label": "Foot Strike", "context": "Right", "side": "r", "time_s": 2.5, "frame": 150},
        {"label": "Foot Off", "context": "Right", "side": "r", "time_s": 3.1, "frame": 186},
        {"label": "Foot Strike", "context": "Left", "side": "l", "time_s": 3.0, "frame": 180},
        {"label": "Foot Strike", "context": "Right", "side": None, "time_s": 1.4, "frame": 84},
    ]}
    path = tmp_path / "events.json"
    path.write_text(json.dumps(doc))
    np.testing.assert_array_equal(heel_strikes_from_events(path, "r"), [1.4, 2.5])
    np.testing.assert_array_equal(heel_strikes_from_events(doc["events"], "left"), [3.0])


def _trial(name: str, duration_s: float = 4.0, rate_hz: float = 100.0, attributes: dict | None = None):
    """EMG at 1 kHz (col 0 = t, col 1 = 2t), targets at ``rate_hz``: an angle in degrees = 10 t, a force = 100 t."""
    te = np.arange(0.0, duration_s + 1e-9, 0.001)
    emg = Table(te, np.column_stack([te, 2 * te]), ["ta", "sol"], name="env")
    tk = np.arange(0.0, duration_s + 1e-9, 1 / rate_hz)
    coords = Table(tk, np.column_stack([10 * tk, tk]), ["knee_angle_r", "pelvis_tx"], name="coords", in_degrees=True)
    forces = Table(tk[5:], 100 * tk[5:, None], ["vas_lat_r"], name="forces")  # starts later (like CMC)
    return build_trial(name, emg, [(coords, ["knee_angle_r", "pelvis_tx"]), (forces, ["vas_lat_r"])],
                       attributes=attributes)


def test_build_trial_aligns_and_converts_to_si() -> None:
    trial = _trial("walk1")
    assert trial.time_s[0] == pytest.approx(0.05) and trial.time_s[-1] == pytest.approx(4.0)
    assert trial.rate_hz == pytest.approx(100.0)
    np.testing.assert_allclose(trial.emg[:, 1], 2 * trial.time_s, atol=1e-12)
    np.testing.assert_allclose(trial.targets[:, 0], np.deg2rad(10 * trial.time_s), atol=1e-12)
    np.testing.assert_allclose(trial.targets[:, 1], trial.time_s, atol=1e-12)  # a translation stays in m
    np.testing.assert_allclose(trial.targets[:, 2], 100 * trial.time_s, atol=1e-9)
    assert trial.target_labels == ["knee_angle_r", "pelvis_tx", "vas_lat_r"]
    coords = Table([0.0, 1.0], [[90.0], [180.0]], ["hip_flexion_r"], in_degrees=True)
    np.testing.assert_allclose(table_in_si(coords).data[:, 0], [np.pi / 2, np.pi])
    with pytest.raises(ConfigError, match="soleus_r") as info:
        build_trial("walk1", coords, [(coords, ["soleus_r"])])
    assert info.value.trial == "walk1"


def test_gait_cycles_have_100_frames() -> None:
    trial = _trial("walk1")
    bounds = [(0.5, 1.6), (1.6, 2.75)]
    cycles = gait_cycles(trial, bounds)
    assert cycles.emg.shape == (2, 100, 2) and cycles.targets.shape == (2, 100, 3)
    np.testing.assert_allclose(cycles.emg[1, :, 0], np.linspace(1.6, 2.75, 100), atol=1e-12)
    np.testing.assert_allclose(cycles.targets[0, :, 2], 100 * np.linspace(0.5, 1.6, 100), atol=1e-9)
    np.testing.assert_allclose(cycles.dt_s, [1.1 / 99, 1.15 / 99])
    assert cycles.kind == "cycle" and cycles.trial.tolist() == ["walk1", "walk1"]
    with pytest.warns(DatasetWarning, match="outside"):
        assert len(gait_cycles(trial, [(3.5, 4.5)])) == 0
    with pytest.raises(ConfigError):
        gait_cycles(trial, [(3.5, 4.5)], strict=True)
    np.testing.assert_allclose(time_normalise(np.arange(5.0), np.arange(5.0) ** 2, 1.0, 2.5, 4)[:, 0],
                               [1.0, 2.5, 4.0, 6.5])  # linear between samples 1, 4, 9


def test_window_count_and_content() -> None:
    assert window_starts(1000, 200, 50).size == 1 + (1000 - 200) // 50 == 17
    assert window_starts(1000, 1000, 7).tolist() == [0]
    assert window_starts(99, 100, 1).size == 0
    trial = _trial("walk1")  # 396 frames at 100 Hz
    windows = sliding_windows(trial, 50, 20)
    assert len(windows) == 1 + (396 - 50) // 20 == 18
    assert windows.emg.shape == (18, 50, 2)
    np.testing.assert_allclose(windows.emg[3, :, 0], trial.time_s[60:110])
    np.testing.assert_allclose(windows.start_s, trial.time_s[np.arange(18) * 20])
    np.testing.assert_allclose(windows.dt_s, 0.01)


def _four_trials(kind: str = "window") -> SampleSet:
    speeds = {"w1": "slow", "w2": "slow", "w3": "fast", "w4": "fast"}
    sets = []
    for i, (name, speed) in enumerate(speeds.items()):
        trial = _trial(name, duration_s=3.0 + 0.5 * i, attributes={"speed": speed})
        sets.append(sliding_windows(trial, 40, 10) if kind == "window" else gait_cycles(trial, [(0.2, 1.2), (1.2, 2.2)]))
    return concat(sets)


def test_leave_one_trial_out_never_leaks_a_trial() -> None:
    samples = _four_trials()
    folds = leave_one_trial_out(samples, n_val_trials=1, seed=7)
    assert [f.test_group for f in folds] == ["w1", "w2", "w3", "w4"]
    for fold in folds:
        train, val, test = (set(samples.trial[idx].tolist()) for idx in (fold.train, fold.val, fold.test))
        assert test == {fold.test_group}
        assert not (train & test) and not (val & test) and not (train & val)
        assert len(val) == 1 and train | val | test == {"w1", "w2", "w3", "w4"}
        assert sorted(np.concatenate([fold.train, fold.val, fold.test]).tolist()) == list(range(len(samples)))
    with pytest.raises(ConfigError, match="leave none to train"):
        leave_one_trial_out(samples, n_val_trials=3)


def test_leave_one_trial_out_validates_on_the_tail_of_each_training_trial() -> None:
    """val_fraction: the last part of every training trial validates, chronologically, without shared frames.
    Hand count for w1 (0.05-3.0 s at 100 Hz, 296 frames): 26 windows of 40 frames every 10, spanning
    0.05-2.94 s; cut at 2.94 - 0.25 x 2.89 = 2.2175 s: windows 0-17 end before it (0.44 + 0.1 i <= 2.2175),
    windows 22-25 start after it (0.05 + 0.1 i >= 2.2175), windows 18-21 straddle it and are dropped."""
    samples = _four_trials()
    folds = leave_one_trial_out(samples, val_fraction=0.25)
    assert [f.test_group for f in folds] == ["w1", "w2", "w3", "w4"]
    for fold in folds:
        assert set(samples.trial[fold.test].tolist()) == {fold.test_group}
        assert fold.test_group not in set(samples.trial[fold.train].tolist()) | set(samples.trial[fold.val].tolist())
        for trial in set(samples.trial[fold.train].tolist()):
            tr = [i for i in fold.train if samples.trial[i] == trial]
            va = [i for i in fold.val if samples.trial[i] == trial]
            assert va and samples.end_s[tr].max() <= samples.start_s[va].min()
    w1 = np.flatnonzero(samples.trial == "w1")
    fold = folds[1]
    assert [int(i) for i in fold.train if samples.trial[i] == "w1"] == w1[:18].tolist()
    assert [int(i) for i in fold.val if samples.trial[i] == "w1"] == w1[22:26].tolist()
    with pytest.raises(ConfigError, match="val_fraction"):
        leave_one_trial_out(samples, n_val_trials=1, val_fraction=0.2)


def test_cross_speed_groups_by_attribute() -> None:
    samples = _four_trials("cycle")
    folds = cross_speed(samples)
    assert [f.test_group for f in folds] == ["slow", "fast"]
    for fold in folds:
        assert set(samples.attribute("speed")[fold.test].tolist()) == {fold.test_group}
        assert fold.test_group not in set(samples.attribute("speed")[fold.train].tolist())
    samples.attributes["w2"] = {}
    with pytest.raises(ConfigError, match="speed") as info:
        cross_speed(samples)
    assert info.value.trial == "w2"


def test_within_trial_split_is_chronological() -> None:
    samples = _four_trials()
    split = within_trial_split(samples, train_fraction=0.6, val_fraction=0.5)
    assert not set(split.train) & set(split.test) and not set(split.val) & set(split.test)
    for trial in samples.trials:
        tr = [i for i in split.train if samples.trial[i] == trial]
        va = [i for i in split.val if samples.trial[i] == trial]
        te = [i for i in split.test if samples.trial[i] == trial]
        assert tr and va and te
        assert samples.end_s[tr].max() <= samples.start_s[va].min()
        assert samples.end_s[va].max() <= samples.start_s[te].min()
    cycles = concat([gait_cycles(_trial("w1"), [(0.2, 1.2)])])
    with pytest.raises(ConfigError, match="leaves"):
        within_trial_split(cycles)


def _windows_1s(starts_s: np.ndarray, trial: str = "walk") -> SampleSet:
    """Windows of 1 s (end = start + 1 s) starting at ``starts_s``, one trial, placeholder data."""
    n = len(starts_s)
    return SampleSet(np.zeros((n, 4, 1)), np.zeros((n, 4, 1)), np.full(n, 0.25),
                     np.array([trial] * n, dtype=object), np.asarray(starts_s, float), np.asarray(starts_s, float) + 1,
                     ["e"], ["y"], "window")


def test_blocked_split_spreads_the_share_and_shares_no_frame() -> None:
    # trial span 0-20 s, 2 blocks of 20 %: segments of 10 s, blocks [0, 2] and [10, 12] s (hand-solved)
    samples = _windows_1s(np.arange(0.0, 19.01, 0.5))
    split = blocked_split(samples, 0.2, 2, val_fraction=0.5)
    start = samples.start_s
    assert start[split.train].tolist() == [0.0, 0.5, 10.0, 10.5]
    assert start[split.val].tolist() == [1.0, 11.0]  # the last half of each block
    expected_test = [a for a in np.arange(0.0, 19.01, 0.5) if 2.5 <= a <= 8.5 or a >= 12.5]
    assert start[split.test].tolist() == expected_test  # windows touching a block ([a, a + 1] vs [lo, hi]) drop
    one = blocked_split(samples, 0.2, 1, val_fraction=0.5)
    ref = within_trial_split(samples, 0.2, 0.5)
    assert all(np.array_equal(getattr(one, k), getattr(ref, k)) for k in ("train", "val", "test"))
    with pytest.raises(ConfigError, match="blocks"):
        blocked_split(samples, 0.2, 0)
    with pytest.raises(ConfigError, match="leave 0 train"):
        blocked_split(samples, 0.02, 4)  # blocks of 0.1 s hold no 1 s window


def test_seeds_are_reproducible() -> None:
    samples = _four_trials()
    a = leave_one_trial_out(samples, n_val_trials=1, seed=3)
    b = leave_one_trial_out(samples, n_val_trials=1, seed=3)
    assert all(np.array_equal(x.val, y.val) and np.array_equal(x.train, y.train) for x, y in zip(a, b))
    picks = {tuple(tuple(sorted(set(samples.trial[f.val].tolist())))
                   for f in leave_one_trial_out(samples, n_val_trials=1, seed=s))
             for s in range(20)}
    assert len(picks) > 1  # the seed matters
    idx = np.arange(len(samples))

    def order(seed: int) -> list[int]:
        return [int(i) for batch in make_loader(samples, idx, 8, seed=seed) for i in batch["index"]]

    assert order(5) == order(5) and order(5) != order(6) and sorted(order(5)) == idx.tolist()
    batch = next(iter(make_loader(samples, idx, 8, shuffle=False)))
    assert tuple(batch["emg"].shape) == (8, 40, 2) and tuple(batch["targets"].shape) == (8, 40, 3)
    assert tuple(batch["dt_s"].shape) == (8,)


def test_standardiser_is_fitted_on_train_only() -> None:
    samples = _four_trials()
    split = leave_one_trial_out(samples)[0]
    scaler = Standardiser.fit(samples.targets[split.train])
    z = scaler.transform(samples.targets[split.train]).reshape(-1, 3)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(samples.targets)), samples.targets, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Standardiser.fit(np.ones((2, 3, 1))).std[0] == 1.0  # a constant channel is not divided by 0
