"""ELM, ML-ELM and SVR learn a known smooth function of the envelopes; seeding; lagged features; metrics."""

from __future__ import annotations

import numpy as np
import pytest

from pimsk.errors import ConfigError
from pimsk.learn.baselines import ELM, MultilayerELM, SVRBaseline, frame_features, load_baseline, make_baseline
from pimsk.learn.metrics import anova, nrmse, output_metrics, pearson_r, r_squared, rmse


def _data(n: int, t: int, seed: int):
    """Smooth envelopes (n, t, 2) in [0, 1] and targets y = [sin(2 x1) + x2^2, x1 x2 - 0.5 x2] per frame."""
    rng = np.random.default_rng(seed)
    time = np.linspace(0.0, 1.0, t)[None, :, None]
    freq = rng.uniform(0.5, 2.0, (n, 1, 2))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1, 2))
    x = 0.5 + 0.45 * np.sin(2 * np.pi * freq * time + phase)
    y = np.stack([np.sin(2.0 * x[..., 0]) + x[..., 1] ** 2, x[..., 0] * x[..., 1] - 0.5 * x[..., 1]], axis=-1)
    return x, y, np.full(n, 0.01)


@pytest.mark.parametrize("model", [
    ELM(n_hidden=150, c=1e4, seed=0),
    MultilayerELM(hidden=[40, 40], n_hidden=150, c=1e4, c_ae=1e3, seed=0),
    SVRBaseline(c=10.0, epsilon=0.01, max_frames=1500, seed=0),
], ids=["elm", "mlelm", "svr"])
def test_baselines_fit_a_known_smooth_function(model):
    x, y, dt = _data(30, 50, seed=1)
    xt, yt, dtt = _data(10, 50, seed=2)
    pred = model.fit(x, y, dt).predict(xt, dtt)
    assert pred.shape == yt.shape
    r2 = r_squared(yt, pred)
    assert (r2 > 0.999).all(), r2  # a 2-neuron ELM gets 0.40 / 0.91 here


def test_elm_depends_on_its_seed_only():
    x, y, dt = _data(10, 30, seed=3)
    p1 = ELM(n_hidden=30, seed=5).fit(x, y, dt).predict(x, dt)
    p2 = ELM(n_hidden=30, seed=5).fit(x, y, dt).predict(x, dt)
    p3 = ELM(n_hidden=30, seed=6).fit(x, y, dt).predict(x, dt)
    assert np.array_equal(p1, p2) and not np.allclose(p1, p3)
    m1 = MultilayerELM(hidden=[10], n_hidden=30, seed=5).fit(x, y, dt).predict(x, dt)
    m2 = MultilayerELM(hidden=[10], n_hidden=30, seed=5).fit(x, y, dt).predict(x, dt)
    assert np.array_equal(m1, m2)


def test_lagged_features_are_earlier_frames_of_the_same_sample():
    emg = np.arange(2 * 5 * 1, dtype=float).reshape(2, 5, 1)
    feats = frame_features(emg, np.array([0.01, 0.02]), lags=[0, 2], use_dt=True).reshape(2, 5, 3)
    assert feats[0, :, 0].tolist() == [0, 1, 2, 3, 4]
    assert feats[0, :, 1].tolist() == [0, 0, 0, 1, 2]  # edge-padded with the first frame
    assert feats[1, :, 1].tolist() == [5, 5, 5, 6, 7]
    assert np.allclose(feats[1, :, 2], np.log(0.02))


def test_baseline_save_load_and_settings_errors(tmp_path):
    x, y, dt = _data(6, 20, seed=4)
    model = make_baseline("elm", {"n_hidden": 20, "C": 100.0, "lags": [0, 3]}, seed=1).fit(x, y, dt)
    model.save(tmp_path / "m.pkl")
    assert np.array_equal(load_baseline(tmp_path / "m.pkl").predict(x, dt), model.predict(x, dt))
    with pytest.raises(ConfigError, match="unknown baseline"):
        make_baseline("rf")
    with pytest.raises(ConfigError, match="bad settings"):
        make_baseline("svr", {"n_hidden": 3})


# ---------------------------------------------------------------------------------------------- metrics
def test_metrics_on_a_hand_solved_case():
    true = np.array([0.0, 1.0, 2.0, 3.0])[:, None]
    pred = np.array([0.0, 1.0, 2.0, 4.0])[:, None]
    assert rmse(true, pred)[0] == pytest.approx(0.5)
    assert nrmse(true, pred)[0] == pytest.approx(0.5 / 3.0)
    # r = cov / (sd sd): deviations (-1.5, -.5, .5, 1.5) and (-1.75, -.75, .25, 2.25): 6.5 / sqrt(5 * 8.75)
    assert pearson_r(true, pred)[0] == pytest.approx(6.5 / np.sqrt(5.0 * 8.75))
    assert r_squared(true, pred)[0] == pytest.approx(1.0 - 1.0 / 5.0)
    rows = output_metrics(np.stack([true, 2 * true], -1)[:, 0], np.stack([pred, 2 * pred], -1)[:, 0], ["a", "b"])
    assert rows[1]["rmse"] == pytest.approx(1.0) and rows[1]["nrmse"] == pytest.approx(1.0 / 6.0)
    assert np.isnan(nrmse(np.ones((3, 1)), np.zeros((3, 1))))[0]


def test_anova_on_a_hand_solved_case():
    # means 2 and 5, grand mean 3.5: SSB = 2 * 3 * 1.5^2 = 13.5 (df 1), SSW = 2 + 2 = 4 (df 4): F = 13.5
    res = anova({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    assert res["f"] == pytest.approx(13.5)
    assert 0.0 < res["p"] < 0.05
    assert np.isnan(anova({"a": [1.0, 2.0], "b": [3.0]})["f"])  # one usable group only
