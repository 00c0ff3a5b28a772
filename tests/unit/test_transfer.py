"""pimsk.learn.transfer pieces that need no OpenSim: output re-standardisation with sign conventions, the
bounded path surrogate, the target split, the force-scale bounds and the frozen feature extractor."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from pimsk.learn.datasets import SampleSet
from pimsk.learn.networks import CNNConfig, build_network
from pimsk.learn.transfer import (BoundedSurrogate, TransferSettings, _FrozenFeatures, align_generic,
                                  rescale_outputs, target_split)
from pimsk.errors import ConfigError


def _toy():
    spec = importlib.util.spec_from_file_location("_toy_physics", Path(__file__).with_name("_toy_physics.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _net(seed: int = 0):
    net = build_network(3, 2, CNNConfig(n_blocks=2, channels=8, fc_hidden=[8]), seed=seed, dtype=torch.float64)
    net.set_scaling(np.zeros(3), np.ones(3), np.array([0.3, 40.0]), np.array([0.5, 12.0]), 0.01)
    return net.eval()


def test_rescale_outputs_keeps_the_function_and_applies_signs():
    net = _net()
    x = torch.rand(4, 30, 3, dtype=torch.float64)
    dt = torch.full((4,), 0.01, dtype=torch.float64)
    before = net.to_si(net(x, dt)).detach()
    rescale_outputs(net, np.array([-1.0, 100.0]), np.array([2.0, 30.0]), sign=np.array([-1.0, 1.0]))
    after = net.to_si(net(x, dt)).detach()
    torch.testing.assert_close(after, before * torch.tensor([-1.0, 1.0], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert net.output_std.tolist() == [2.0, 30.0] and net.output_mean.tolist() == [-1.0, 100.0]


def test_align_generic_renames_and_flips_without_touching_the_original():
    net = _net()
    x = np.random.default_rng(0).random((2, 25, 3))
    dt = np.full(2, 0.01)
    ref = net.predict(x, dt)
    aligned = align_generic(net, ["a", "b", "c"], ["knee", "F"], [-1.0, 1.0])
    np.testing.assert_allclose(aligned.predict(x, dt), ref * np.array([-1.0, 1.0]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.predict(x, dt), ref)  # original unchanged
    assert aligned.input_labels == ["a", "b", "c"] and aligned.output_labels == ["knee", "F"]


def test_frozen_features_keep_blocks_in_eval_mode():
    net = _net()
    frozen = _FrozenFeatures.frozen_copy(net)
    frozen.train(True)
    assert frozen.head.training and not any(m.training for m in frozen.blocks.modules())
    assert not any(p.requires_grad for p in frozen.blocks.parameters()) and net.blocks[0].conv.weight.requires_grad
    stats = [b.norm.running_mean.clone() for b in frozen.blocks]
    frozen(torch.rand(5, 20, 3, dtype=torch.float64), torch.full((5,), 0.01, dtype=torch.float64))
    for b, s in zip(frozen.blocks, stats):  # batch-norm statistics not updated in training mode
        torch.testing.assert_close(b.norm.running_mean, s)


def test_bounded_surrogate_equals_inside_and_holds_outside():
    toy = _toy()
    sur = toy.surrogate()
    bounded = BoundedSurrogate.from_dict(sur.to_dict())
    lo = float(sur.center[0] - sur.half_range[0])
    hi = float(sur.center[0] + sur.half_range[0])
    q_in = torch.linspace(lo, hi, 11, dtype=torch.float64)[:, None]
    torch.testing.assert_close(bounded.lengths(q_in), sur.lengths(q_in), rtol=0, atol=0)
    q_out = torch.tensor([[hi + 2.0], [lo - 5.0]], dtype=torch.float64)
    edge = torch.tensor([[hi], [lo]], dtype=torch.float64)
    torch.testing.assert_close(bounded.lengths_and_moment_arms(q_out)[0], sur.lengths(edge), rtol=0, atol=0)


def _samples() -> SampleSet:
    """Two trials of 10 s, 0.25 s windows every 0.25 s."""
    starts = np.arange(0.0, 9.76, 0.25)
    n = 2 * len(starts)
    return SampleSet(np.zeros((n, 11, 1)), np.zeros((n, 11, 1)), np.full(n, 0.1),
                     np.array(["a"] * len(starts) + ["b"] * len(starts), dtype=object), np.tile(starts, 2),
                     np.tile(starts + 0.25, 2), ["e"], ["y"], "window")


def test_target_split_uses_only_the_first_share_of_every_trial():
    s = _samples()
    sp = target_split(s, 0.2, 0.25)
    assert s.end_s[sp.train].max() <= 1.5 + 1e-9  # 20 % of 10 s = 2 s, its last quarter validates
    assert len(sp.train) == 2 * 6 and len(sp.val) >= 2  # windows 0-1.5 s train; 1.5-2 s validate
    assert s.start_s[sp.val].min() >= 1.5 - 1e-9 and s.end_s[sp.val].max() <= 2.0 + 1e-9
    assert s.start_s[sp.test].min() >= 2.0 - 1e-9
    assert set(s.trial[sp.train]) == set(s.trial[sp.test]) == {"a", "b"}
    assert not set(sp.train) & set(sp.test) and not set(sp.val) & set(sp.test)


def test_target_split_in_blocks_covers_every_part_of_the_trial():
    from pimsk.learn.transfer import _frame_share

    s = _samples()
    sp = target_split(s, 0.2, 0.0, blocks=2)  # segments of 5 s: blocks 0-1 s and 5-6 s of every trial
    assert sorted(set(np.round(s.start_s[sp.train], 2).tolist())) == [0.0, 0.25, 0.5, 0.75, 5.0, 5.25, 5.5, 5.75]
    assert not ((s.start_s[sp.test] < 1.0) | ((s.end_s[sp.test] > 5.0) & (s.start_s[sp.test] < 6.0))).any()
    assert _frame_share(s, sp) == pytest.approx(0.2)  # 2 x 1 s of 10 s, not the 6 s the blocks span
    assert _frame_share(s, target_split(s, 0.2, 0.0)) == pytest.approx(0.2)
    assert TransferSettings.from_dict({"share_blocks": 3}).share_blocks == 3
    with pytest.raises(ConfigError, match="share_blocks"):
        TransferSettings.from_dict({"share_blocks": 0})


def test_settings_validation():
    with pytest.raises(ConfigError, match="fraction"):
        TransferSettings.from_dict({"fraction": 1.5})
    with pytest.raises(ConfigError, match="only max_isometric_force"):
        TransferSettings.from_dict({"identify": {"tendon_slack_length": 0.1}})
    with pytest.raises(ConfigError, match="unknown transfer settings"):
        TransferSettings.from_dict({"epochs": 3})
    s = TransferSettings.from_dict({"fraction": 0.1, "training": {"max_epochs": 5}, "loss": {"lambda": 0.5}})
    assert s.fraction == 0.1 and s.training.max_epochs == 5 and s.loss.lam == 0.5


# ------------------------------------------------------------------------ personalisation (affine, L2-SP)
def test_personalised_plain_folds_the_output_map_exactly():
    from pimsk.learn.transfer import _Personalised

    net = _net()
    pers = _Personalised.wrap(net, "affine")
    with torch.no_grad():
        pers.out_gain.copy_(torch.tensor([1.7, -0.4], dtype=torch.float64))
        pers.out_offset.copy_(torch.tensor([0.3, 2.0], dtype=torch.float64))
    assert [n for n, p in pers.named_parameters() if p.requires_grad] == ["out_gain", "out_offset"]
    pers.train(True)
    assert not pers.head.training and not any(m.training for m in pers.blocks.modules())  # no dropout
    x = torch.rand(3, 25, 3, dtype=torch.float64)
    dt = torch.full((3,), 0.01, dtype=torch.float64)
    expected = net.to_si(net(x, dt) * torch.tensor([1.7, -0.4], dtype=torch.float64)
                         + torch.tensor([0.3, 2.0], dtype=torch.float64)).detach()
    plain = pers.plain()
    assert type(plain).__name__ == "PICNN" and not hasattr(plain, "out_gain")
    torch.testing.assert_close(plain.to_si(plain(x, dt)).detach(), expected, rtol=1e-12, atol=1e-12)
    head = _Personalised.wrap(net, "head")
    assert {n for n, p in head.named_parameters() if p.requires_grad} == {n for n, _ in net.head.named_parameters()
                                                                          for n in [f"head.{n}"]}


def _affine_target_set(net, gain, offset_si, n=12, t=30, seed=0):
    """Windows whose targets are an affine map (per output, SI) of the network's own predictions."""
    rng = np.random.default_rng(seed)
    emg = rng.random((n, t, 3)).astype(np.float32)
    dt = np.full(n, 0.01)
    y = net.predict(emg, dt) * gain + offset_si
    starts = np.arange(n) * t * 0.01
    return SampleSet(emg, y, dt, np.array(["a"] * n, dtype=object), starts, starts + t * 0.01, ["e0", "e1", "e2"],
                     ["q", "F"], "window")


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_affine_fine_tune_reaches_the_hand_solved_l2sp_optimum(alpha):
    """Affine fine-tuning without physics minimises mean((a z + c - t)^2) + alpha ((a - 1)^2 + c^2) per output
    (z, t: standardised prediction and target): a 2x2 ridge problem solved here by hand with numpy."""
    from pimsk.learn.datasets import Split
    from pimsk.learn.train import TrainSettings
    from pimsk.learn.transfer import fine_tune
    from pimsk.learn.losses import LossWeights, PhysicsSpec

    net = build_network(3, 2, CNNConfig(n_blocks=2, channels=8, fc_hidden=[8]), seed=1, output_labels=["q", "F"])
    net.set_scaling(np.zeros(3), np.ones(3), np.array([0.3, 40.0]), np.array([0.5, 12.0]), 0.01)
    probe = np.random.default_rng(1).random((8, 30, 3)).astype(np.float32)
    with torch.no_grad():  # standardised outputs of mean ~0 and std ~0.5: a well-conditioned regression
        net.head[-1].weight.mul_(80.0)
        net.eval()
        z0 = (net.predict(probe, np.full(8, 0.01)) - net.output_mean.numpy()) / net.output_std.numpy()
        net.head[-1].bias.sub_(torch.as_tensor(z0.reshape(-1, 2).mean(0), dtype=torch.float32))
    s = _affine_target_set(net, np.array([1.6, 0.7]), np.array([-0.2, 5.0]))
    split = Split("all", np.arange(len(s)), np.zeros(0, dtype=int), np.zeros(0, dtype=int), "-")
    settings = TransferSettings(fraction=0.2, val_share=0.0, loss=LossWeights(0.0), restandardise=False,
                                layers="affine", l2sp=alpha,
                                training=TrainSettings(max_epochs=600, batch_size=len(s), learning_rate=0.02))
    fit = fine_tune(net, s, split, [0, 1], settings, None, PhysicsSpec())
    z = ((net.predict(s.emg, s.dt_s) - net.output_mean.numpy()) / net.output_std.numpy()).reshape(-1, 2)
    tz = ((s.targets - net.output_mean.numpy()) / net.output_std.numpy()).reshape(-1, 2)
    w = 1.0 / z.size  # the data loss is a mean over windows, frames and outputs
    for k, name in enumerate(["q", "F"]):
        lhs = np.array([[w * (z[:, k] ** 2).sum() + alpha, w * z[:, k].sum()], [w * z[:, k].sum(), w * len(z) + alpha]])
        rhs = np.array([w * (z[:, k] * tz[:, k]).sum() + alpha, w * tz[:, k].sum()])
        a, c = np.linalg.solve(lhs, rhs)
        assert fit.physics_info["output_gain"][name] == pytest.approx(a, abs=0.02)
        assert fit.physics_info["output_offset_std"][name] == pytest.approx(c, abs=0.02)
    if alpha == 0.0:  # unpenalised: the generating map itself
        assert fit.physics_info["output_gain"]["q"] == pytest.approx(1.6, abs=0.02)
        assert fit.physics_info["output_gain"]["F"] == pytest.approx(0.7, abs=0.02)


def test_l2sp_penalty_is_alpha_times_squared_distance_to_the_start():
    from pimsk.learn.losses import LossWeights
    from pimsk.learn.transfer import _L2SPLoss, _Personalised

    net = _Personalised.wrap(_net(), "head")
    loss = _L2SPLoss(LossWeights(0.0), [0, 1], None, net.trainable(), alpha=0.5)
    batch = {"targets": torch.zeros(2, 20, 2, dtype=torch.float64)}
    z = torch.zeros(2, 20, 2, dtype=torch.float64)
    with torch.no_grad():
        base = loss(z, batch, net)
    assert float(base["total"]) == pytest.approx(float(base["data"]), abs=1e-15)  # at the generic weights
    with torch.no_grad():
        net.head[0].weight[0, 0] += 0.3
        net.head[-1].bias[1] -= 0.2
        moved = loss(z, batch, net)
    assert float(moved["total"] - moved["data"]) == pytest.approx(0.5 * (0.3 ** 2 + 0.2 ** 2), rel=1e-12)


def test_search_settings_and_choice():
    from pimsk.learn.transfer import choose_candidate

    s = TransferSettings.from_dict({"search": {"layers": ["affine", "head"], "l2sp": [0.1, 1], "epochs": [30, 10]}})
    assert s.candidates() == [{"layers": "affine", "l2sp": 0.1}, {"layers": "affine", "l2sp": 1.0},
                              {"layers": "head", "l2sp": 0.1}, {"layers": "head", "l2sp": 1.0}]
    assert s.epoch_budgets() == [10, 30]
    c = s.chosen("head", 0.1, 30)
    assert (c.layers, c.l2sp, c.training.max_epochs, c.val_share, c.search) == ("head", 0.1, 30, 0.0, {})
    with pytest.raises(ConfigError, match="layers"):
        TransferSettings.from_dict({"search": {"layers": ["all"]}})
    with pytest.raises(ConfigError, match="search"):
        TransferSettings.from_dict({"search": {"lr": [1e-3]}})
    with pytest.raises(ConfigError, match="l2sp"):
        TransferSettings.from_dict({"l2sp": -1})
    rows = [{"fold": f, "layers": la, "l2sp": al, "epochs": e, "nrmse": v}
            for f, la, al, e, v in [("a", "generic", float("nan"), 0, 0.01), ("b", "generic", float("nan"), 0, 0.01),
                                    ("a", "affine", 0.1, 10, 0.20), ("b", "affine", 0.1, 10, 0.30),
                                    ("a", "head", 0.1, 10, 0.10), ("b", "head", 0.1, 10, 0.50),
                                    ("a", "head", 1.0, 30, 0.26), ("b", "head", 1.0, 30, 0.26)]]
    assert choose_candidate(rows) == {"layers": "affine", "l2sp": 0.1, "epochs": 10, "nrmse_simulated": 0.25}


def test_cached_generic_reuses_only_an_identical_training(tmp_path):
    from pimsk.learn.datasets import Split
    from pimsk.learn.transfer import cached_generic

    net = _net()
    s = _affine_target_set(net, np.ones(2), np.zeros(2), n=8)
    split = Split("s", np.arange(6), np.zeros(0, dtype=int), np.arange(6, 8), "-")
    raw = {"method": "cnn", "network": {"n_blocks": 1, "channels": 4, "fc_hidden": [4]},
           "training": {"max_epochs": 2, "batch_size": 4}, "loss": {"lambda": 0.0}}
    first = cached_generic(s, split, raw, None, 0, tmp_path / "g")
    again = cached_generic(s, split, raw, None, 0, tmp_path / "g")
    assert "reused" not in first.physics_info and again.physics_info["reused"] == str(tmp_path / "g")
    x = s.emg[:2]
    np.testing.assert_array_equal(again.model.predict(x, s.dt_s[:2]), first.model.predict(x, s.dt_s[:2]))
    other = cached_generic(s, split, raw, None, 1, tmp_path / "g")  # another seed: trained again
    assert "reused" not in other.physics_info
    changed = cached_generic(s, split, {**raw, "training": {"max_epochs": 3, "batch_size": 4}}, None, 1, tmp_path / "g")
    assert "reused" not in changed.physics_info
