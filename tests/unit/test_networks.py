"""PI-CNN network: shapes, seeding, dropout along time, persistence; lambda = 0 is exactly the CNN baseline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet
from pimsk.learn.networks import CNNConfig, PICNN, build_network
from pimsk.learn.physics_files import PhysicsAssets
from pimsk.learn.train import fit_model

_spec = importlib.util.spec_from_file_location("_toy_physics", Path(__file__).with_name("_toy_physics.py"))
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)

SMALL = {"n_blocks": 2, "channels": [8, 6], "kernel_size": 3, "fc_hidden": [8], "dropout": 0.2}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_output_shape_follows_input_time_and_batch():
    net = build_network(5, 6, {"n_blocks": 3, "channels": 16, "kernel_size": 5}, seed=0)
    for batch, time in ((4, 100), (1, 37), (3, 7)):
        out = net(torch.rand(batch, time, 5), torch.full((batch,), 0.01))
        assert out.shape == (batch, time, 6)
    assert net.receptive_field_frames() == 13
    with pytest.raises(ValueError):
        net(torch.rand(2, 10, 4), torch.full((2,), 0.01))


def test_bad_settings_raise_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match="kernel_size"):
        CNNConfig.from_dict({"kernel_size": 4})
    with pytest.raises(ConfigError, match="activation"):
        CNNConfig.from_dict({"activation": "swish"})
    with pytest.raises(ConfigError, match="network"):
        CNNConfig.from_dict({"depth": 3})
    with pytest.raises(ConfigError, match="channels"):
        CNNConfig.from_dict({"n_blocks": 3, "channels": [4, 4]})


def test_same_seed_same_network_other_seed_differs():
    a = build_network(3, 2, SMALL, seed=7)
    b = build_network(3, 2, SMALL, seed=7)
    c = build_network(3, 2, SMALL, seed=8)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    x, dt = torch.rand(2, 20, 3), torch.full((2,), 0.01)
    assert torch.equal(a.eval()(x, dt), b.eval()(x, dt))
    # building did not disturb the global generator
    torch.manual_seed(1)
    r1 = torch.rand(3)
    torch.manual_seed(1)
    build_network(3, 2, SMALL, seed=99)
    assert torch.equal(torch.rand(3), r1)


def test_time_step_is_an_input_only_with_use_dt():
    x = torch.rand(2, 30, 3)
    with_dt = build_network(3, 2, {**SMALL, "dropout": 0.0}, seed=0).eval()
    without = build_network(3, 2, {**SMALL, "dropout": 0.0, "use_dt": False}, seed=0).eval()
    assert not torch.allclose(with_dt(x, torch.tensor([0.01, 0.01])), with_dt(x, torch.tensor([0.02, 0.02])))
    assert torch.equal(without(x, torch.tensor([0.01, 0.01])), without(x, torch.tensor([0.02, 0.02])))


def test_channel_dropout_keeps_predictions_smooth_in_time():
    """A constant input gives a constant output in training mode: features are dropped for the whole sample."""
    torch.manual_seed(0)
    net = build_network(3, 2, {**SMALL, "dropout": 0.5, "batch_norm": False}, seed=0).train()
    out = net(torch.ones(4, 25, 3), torch.full((4,), 0.01))
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)
    element = build_network(3, 2, {**SMALL, "dropout": 0.5, "batch_norm": False, "dropout_mode": "element"},
                            seed=0).train()
    out = element(torch.ones(4, 25, 3), torch.full((4,), 0.01))
    assert not torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)


def test_checkpoint_round_trip_predicts_identically():
    net = build_network(3, 2, SMALL, seed=3)
    net.set_scaling(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]), np.array([5.0, -1.0]),
                    np.array([2.0, 0.5]), 0.01)
    copy = PICNN.from_checkpoint(net.checkpoint())
    x, dt = np.random.default_rng(0).random((3, 15, 3)), np.full(3, 0.01)
    assert np.array_equal(net.predict(x, dt), copy.predict(x, dt))
    assert copy.output_labels == net.output_labels


# ----------------------------------------------------------------------------- lambda = 0 == CNN
def _toy_samples(n: int = 8, t: int = 30) -> SampleSet:
    q, qd, qdd, dt = toy.quadratic_motion(n_batch=n, n_time=t)
    rng = np.random.default_rng(0)
    emg = 0.2 + 0.1 * rng.random((n, t, 2))
    forces = 50.0 + 10.0 * np.stack([np.cos(q[..., 0].numpy()), np.sin(q[..., 0].numpy())], axis=-1)
    targets = np.concatenate([q.numpy(), forces], axis=-1)
    trial = np.array([f"t{k % 2}" for k in range(n)], dtype=object)
    return SampleSet(emg, targets, dt.numpy(), trial, np.arange(n, dtype=float), np.arange(n, dtype=float) + 0.5,
                     ["FLEX", "EXT"], ["theta", "FLEX", "EXT"], "window", {"t0": {}, "t1": {}})


def _run(method: str, lam: float) -> dict:
    return {"method": method, "network": SMALL, "loss": {"lambda": lam},
            "physics": {"excitation_gain": 1.0},
            "training": {"max_epochs": 3, "batch_size": 3, "learning_rate": 1e-2, "patience": 5}}


def test_lambda_zero_trains_exactly_the_cnn_baseline():
    samples = _toy_samples()
    train, val = np.arange(6), np.arange(6, 8)
    assets = PhysicsAssets(toy.surrogate(), toy.params(), toy.chain())
    cnn_plain = fit_model(samples, train, val, _run("cnn", 1.0), None, seed=0)
    cnn_logged = fit_model(samples, train, val, _run("cnn", 1.0), assets, seed=0)
    pi_zero = fit_model(samples, train, val, _run("picnn", 0.0), assets, seed=0)
    pi_one = fit_model(samples, train, val, _run("picnn", 1.0), assets, seed=0)
    ref = cnn_plain.model.state_dict()
    for fit in (cnn_logged, pi_zero):
        for k, v in fit.model.state_dict().items():
            assert torch.equal(v, ref[k]), k
        assert [r["train_data"] for r in fit.history] == [r["train_data"] for r in cnn_plain.history]
        assert all(np.isfinite(r["train_physics_moment"]) for r in fit.history)  # physics logged, not used
    assert all(np.isnan(r["train_physics_moment"]) for r in cnn_plain.history)
    # the physics does change the training when lambda > 0
    assert any(not torch.equal(v, ref[k]) for k, v in pi_one.model.state_dict().items())
    for r in pi_one.history:
        assert r["train_total"] == pytest.approx(r["train_data"] + r["train_physics_moment"] +
                                                 r["train_physics_muscle"], rel=1e-6)  # float32 sums
