"""Per-output gain-and-offset recalibration of the unchanged generic model (pimsk.learn.transfer.affine_recalibration,
recalibration_rows): the closed-form baseline and the bound the bench reports beside the transfer."""

from __future__ import annotations

import numpy as np
import torch

from pimsk.learn.datasets import SampleSet
from pimsk.learn.networks import CNNConfig, build_network
from pimsk.learn.transfer import affine_recalibration, evaluate_fit, recalibration_rows

LABELS = ["knee_angle", "force"]


def test_an_exact_affine_relation_is_undone():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 10, 2))
    pred = y * np.array([2.0, 0.5]) + np.array([3.0, -40.0])  # hand-solved inverse: (p - c) / g
    new = rng.normal(size=(4, 10, 2))
    out = affine_recalibration(pred, y, new * np.array([2.0, 0.5]) + np.array([3.0, -40.0]))
    np.testing.assert_allclose(out, new, atol=1e-12)


def test_a_constant_prediction_takes_the_mean():
    y = np.arange(12.0).reshape(3, 4, 1)
    out = affine_recalibration(np.full_like(y, 5.0), y, np.full((2, 4, 1), 5.0))
    np.testing.assert_allclose(out, np.full((2, 4, 1), 5.5))


def _samples(targets: np.ndarray, emg: np.ndarray) -> SampleSet:
    n, t = emg.shape[:2]
    starts = np.arange(n) * 0.2
    return SampleSet(emg, targets, np.full(n, 0.01), np.array(["a"] * n, dtype=object), starts, starts + t * 0.01,
                     ["e0", "e1", "e2"], list(LABELS), "window")


def test_rows_recover_a_scaled_model_and_the_bound_is_never_worse():
    net = build_network(3, 2, CNNConfig(n_blocks=1, channels=4, fc_hidden=[6]), seed=0, dtype=torch.float64,
                        output_labels=LABELS)
    net.set_scaling(np.zeros(3), np.ones(3), np.array([0.3, 40.0]), np.array([0.5, 12.0]), 0.01)
    net.eval()
    emg = np.random.default_rng(1).random((20, 15, 3))
    truth = net.predict(emg, np.full(20, 0.01)) * np.array([1.5, 0.7]) + np.array([-0.2, 10.0])
    truth[15:, :, 1] += np.random.default_rng(2).normal(scale=3.0, size=(5, 15))  # test-only noise on the force
    samples = _samples(truth, emg)
    share, test = np.arange(5), np.arange(5, 20)
    rows = recalibration_rows(net, samples, share, test, [0, 1], LABELS)
    generic = {r["output"]: r["nrmse"] for r in evaluate_fit(net, samples, test, [0, 1], LABELS)}
    recal = {r["output"]: r["nrmse"] for r in rows["recalibrated"]}
    bound = {r["output"]: r["nrmse"] for r in rows["recalibration_bound"]}
    assert recal["knee_angle"] < 1e-9 < generic["knee_angle"]  # the share's exact gain and offset
    assert 0 < recal["force"] < generic["force"]
    for o in LABELS:
        assert bound[o] <= recal[o] + 1e-12
