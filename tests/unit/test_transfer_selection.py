"""Per-output choice between the fine-tuned and the unchanged generic model on the target's validation samples
(pimsk.learn.transfer.choose_outputs, select_outputs_on_val, mixed_predict, evaluate_mixed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet
from pimsk.learn.networks import CNNConfig, build_network
from pimsk.learn.transfer import (TransferSettings, choose_outputs, evaluate_fit, evaluate_mixed, mixed_predict,
                                  select_outputs_on_val)

LABELS = ["knee_angle", "force"]


def _net(seed: int):
    net = build_network(3, 2, CNNConfig(n_blocks=1, channels=4, fc_hidden=[6]), seed=seed, dtype=torch.float64,
                        output_labels=LABELS)
    net.set_scaling(np.zeros(3), np.ones(3), np.array([0.3, 40.0]), np.array([0.5, 12.0]), 0.01)
    return net.eval()


def _samples(targets: np.ndarray, emg: np.ndarray) -> SampleSet:
    n, t = emg.shape[:2]
    starts = np.arange(n) * 0.1
    return SampleSet(emg, targets, np.full(n, 0.01), np.array(["a"] * n, dtype=object), starts, starts + t * 0.01,
                     ["e0", "e1", "e2"], list(LABELS), "window")


def _case():
    """Generic and fine-tuned networks and samples whose angle equals the generic prediction and whose force equals
    the fine-tuned one on the validation samples (0-9), the other way round on the test samples (10-19)."""
    generic, tuned = _net(0), _net(1)
    emg = np.random.default_rng(3).random((20, 15, 3))
    dt = np.full(20, 0.01)
    pg, pt = generic.predict(emg, dt), tuned.predict(emg, dt)
    y = np.empty_like(pg)
    y[:10, :, 0], y[:10, :, 1] = pg[:10, :, 0], pt[:10, :, 1]
    y[10:, :, 0], y[10:, :, 1] = pt[10:, :, 0], pg[10:, :, 1]
    return generic, tuned, _samples(y, emg), np.arange(10), np.arange(10, 20)


def test_choice_on_validation_keeps_generic_where_it_is_better():
    generic, tuned, samples, val, _ = _case()
    choice = select_outputs_on_val(tuned, generic, samples, val, [0, 1], LABELS)
    assert choice["keep_generic"] == {"knee_angle": True, "force": False}
    assert choice["val_nrmse_generic"]["knee_angle"] < 1e-9 < choice["val_nrmse_transfer"]["knee_angle"]
    assert choice["val_nrmse_transfer"]["force"] < 1e-9 < choice["val_nrmse_generic"]["force"]


def test_the_mixture_beats_both_models_on_validation():
    generic, tuned, samples, val, _ = _case()
    keep = [True, False]
    mixed = evaluate_mixed(tuned, generic, keep, samples, val, [0, 1], LABELS)
    only_t = evaluate_fit(tuned, samples, val, [0, 1], LABELS)
    only_g = evaluate_fit(generic, samples, val, [0, 1], LABELS)
    for m, t, g in zip(mixed, only_t, only_g):
        assert m["nrmse"] < 1e-9 and m["nrmse"] <= min(t["nrmse"], g["nrmse"])
    assert max(t["nrmse"] for t in only_t) > 1e-3 and max(g["nrmse"] for g in only_g) > 1e-3


def test_the_choice_ignores_the_test_samples():
    generic, tuned, samples, val, test = _case()
    on_val = select_outputs_on_val(tuned, generic, samples, val, [0, 1], LABELS)["keep_generic"]
    on_test = select_outputs_on_val(tuned, generic, samples, test, [0, 1], LABELS)["keep_generic"]
    assert on_val == {"knee_angle": True, "force": False} and on_test == {"knee_angle": False, "force": True}


def test_mixed_predict_takes_each_output_from_its_model():
    generic, tuned = _net(0), _net(1)
    emg, dt = np.random.default_rng(1).random((4, 12, 3)), np.full(4, 0.01)
    pred = mixed_predict(tuned, generic, [False, True], emg, dt)
    np.testing.assert_array_equal(pred[..., 0], tuned.predict(emg, dt)[..., 0])
    np.testing.assert_array_equal(pred[..., 1], generic.predict(emg, dt)[..., 1])
    np.testing.assert_array_equal(mixed_predict(tuned, generic, [False, False], emg, dt), tuned.predict(emg, dt))
    with pytest.raises(ConfigError):
        mixed_predict(tuned, generic, [True], emg, dt)


def test_choose_outputs_ties_and_non_finite():
    tuned = [{"output": "a", "nrmse": 0.2}, {"output": "b", "nrmse": math.nan}, {"output": "c", "nrmse": 0.1}]
    generic = [{"output": "a", "nrmse": 0.2}, {"output": "b", "nrmse": 0.5}, {"output": "c", "nrmse": math.nan}]
    assert choose_outputs(tuned, generic) == {"a": True, "b": True, "c": False}
    with pytest.raises(ConfigError):
        choose_outputs(tuned, generic[:2])


def test_no_validation_samples_keeps_the_fine_tuned_model():
    generic, tuned, samples, _, _ = _case()
    choice = select_outputs_on_val(tuned, generic, samples, np.zeros(0, dtype=int), [0, 1], LABELS)
    assert choice["keep_generic"] == {"knee_angle": False, "force": False}


def test_setting_is_off_by_default_and_can_be_switched_on():
    assert TransferSettings.from_dict({}).select_outputs is False
    on = TransferSettings.from_dict({"select_outputs": True})
    assert on.select_outputs is True and on.chosen("affine", 0.1, 10).select_outputs is True
