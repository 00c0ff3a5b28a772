"""Unit tests of pimsk.learn.identify: bounded parameters, MVC excitation gain, activation noise ratio, settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.errors import ConfigError
from pimsk.learn.identify import DEFAULT_BOUNDS, BoundedMuscleParameters, IdentifySettings, \
    activation_noise_ratio, excitation_level, mvc_excitation_gain


def _params() -> MuscleParameters:
    return MuscleParameters.from_values(["A", "B"], max_isometric_force_n=[400.0, 250.0],
                                        optimal_fiber_length_m=[0.06, 0.05], tendon_slack_length_m=[0.24, 0.22],
                                        pennation_angle_at_optimal_rad=[0.05, 0.15])


def test_bounded_parameters_start_at_the_generic_values_and_stay_in_bounds():
    base = _params()
    bounded = BoundedMuscleParameters(base)
    p = bounded()
    for name in DEFAULT_BOUNDS:
        assert torch.allclose(getattr(p, name), getattr(base, name), rtol=1e-12, atol=0.0), name
    # untouched fields are the base's
    assert torch.equal(p.pennation_angle_at_optimal_rad, base.pennation_angle_at_optimal_rad)
    with torch.no_grad():
        for raw in bounded.raw.values():
            raw.fill_(50.0)
    hi = bounded()
    with torch.no_grad():
        for raw in bounded.raw.values():
            raw.fill_(-50.0)
    lo = bounded()
    # relative bounds: factors on the generic value; absolute bounds in SI (DEFAULT_BOUNDS)
    assert torch.allclose(hi.max_isometric_force_n, 2.0 * base.max_isometric_force_n)
    assert torch.allclose(lo.max_isometric_force_n, 0.5 * base.max_isometric_force_n)
    assert torch.allclose(lo.optimal_fiber_length_m, 0.5 * base.optimal_fiber_length_m)
    assert torch.allclose(hi.deactivation_time_constant_s, torch.full((2,), 0.2, dtype=torch.float64))
    assert torch.allclose(lo.activation_time_constant_s, torch.full((2,), 0.005, dtype=torch.float64))


def test_bounded_parameters_pass_gradients_and_record_a_table():
    bounded = BoundedMuscleParameters(_params(), ["max_isometric_force_n", "optimal_fiber_length_m"])
    p = bounded()
    (p.max_isometric_force_n.sum() + 1000.0 * p.optimal_fiber_length_m.sum()).backward()
    for raw in bounded.raw.values():
        assert raw.grad is not None and bool((raw.grad > 0).all())
    rows = bounded.table()
    assert len(rows) == 4 and rows[0]["muscle"] == "A" and rows[0]["identified"] == pytest.approx(400.0)


def test_bounded_parameters_reject_unknown_fields_and_generic_values_outside_the_bounds():
    with pytest.raises(ConfigError, match="cannot be identified"):
        BoundedMuscleParameters(_params(), ["pennation_angle_at_optimal_rad"])
    with pytest.raises(ConfigError, match="not strictly inside"):
        BoundedMuscleParameters(_params(), ["activation_time_constant_s"],
                                bounds={"activation_time_constant_s": ("abs", 0.02, 0.05)})


def test_mvc_gain_is_one_over_the_plateau_mean():
    t = np.arange(0.0, 3.0, 0.005)
    env = np.where((t >= 0.5) & (t <= 2.5), 0.8, 0.1)[:, None] * np.array([[1.0, 0.5]])
    env[(t > 1.0) & (t < 1.01)] *= 1.2  # a fluctuation: the peak, not the mean
    plateau = (t >= 0.5) & (t <= 2.5)
    expected = 1.0 / env[plateau].mean(axis=0)
    assert np.allclose(mvc_excitation_gain(env, t, (0.5, 2.5)), expected, rtol=1e-14)
    assert mvc_excitation_gain(env, t, (0.5, 2.5))[0] == pytest.approx(1.25, rel=0.01)
    with pytest.raises(ConfigError):
        mvc_excitation_gain(env, t, (5.0, 6.0))


def test_activation_noise_ratio_is_zero_for_a_steady_envelope_and_grows_with_noise():
    t = np.arange(0.0, 3.0, 0.005)
    params = _params()
    steady = np.full((t.size, 2), 0.5)
    assert np.allclose(activation_noise_ratio(steady, t, np.array([2.0, 2.0]), params, (0.5, 2.5)), 0.0, atol=1e-12)
    rng = np.random.default_rng(0)
    noisy = steady * (1.0 + 0.1 * rng.standard_normal(steady.shape))
    kappa = activation_noise_ratio(noisy, t, np.array([2.0, 2.0]), params, (0.5, 2.5))
    assert np.all((kappa > 0.0) & (kappa < 0.1))  # the activation dynamics low-pass the 10 % white noise


def test_activation_noise_ratio_keeps_the_plateau_noise_above_excitation_one():
    # a slow 0.5 Hz fluctuation of +-10 % around the MVC mean passes the activation dynamics almost unchanged:
    # relative SD = 0.1 / sqrt(2) (hand-solved). Clipping the excitation at 1 would cut the upper half of it.
    t = np.arange(0.0, 4.0, 0.005)
    env = (0.5 * (1.0 + 0.1 * np.sin(2 * np.pi * 0.5 * t)))[:, None] * np.ones((1, 2))
    gain = 1.0 / env[(t >= 0.5) & (t <= 3.5)].mean(axis=0)
    kappa = activation_noise_ratio(env, t, gain, _params(), (0.5, 3.5))
    assert np.allclose(kappa, 0.1 / np.sqrt(2.0), rtol=0.05)


def test_activation_noise_ratio_grows_at_low_excitation():
    # De Groote activation dynamics are faster at low activation, so less of the envelope noise is smoothed
    t = np.arange(0.0, 3.0, 0.005)
    rng = np.random.default_rng(1)
    env = 0.5 * (1.0 + 0.1 * rng.standard_normal((t.size, 2)))
    gain = np.array([2.0, 2.0])
    low = activation_noise_ratio(env, t, gain, _params(), (0.5, 2.5), level=0.05)
    high = activation_noise_ratio(env, t, gain, _params(), (0.5, 2.5), level=1.0)
    assert np.all(low > high * 1.1)


def test_excitation_level_is_the_rms_of_the_clipped_excitation():
    emg = np.zeros((2, 4, 2))
    emg[..., 0] = [[0.05, 0.15, 0.05, 0.15], [0.05, 0.15, 0.05, 0.15]]  # x2: 0.1 / 0.3
    emg[..., 1] = 0.8  # x2 = 1.6, clipped to 1
    assert np.allclose(excitation_level(emg, np.array([2.0, 2.0])), [np.sqrt(0.05), 1.0], rtol=1e-12)


def test_settings_are_checked():
    s = IdentifySettings.from_dict({"weights": {"physics_ode": 2.0}})
    assert s.weights == {"physics_moment": 1.0, "physics_muscle": 1.0, "physics_ode": 2.0}
    with pytest.raises(ConfigError, match="unknown identify settings"):
        IdentifySettings.from_dict({"epochs": 3})
    with pytest.raises(ConfigError, match="weights"):
        IdentifySettings.from_dict({"weights": {"physics_ode": -1.0}})


def test_lowpass_operator_is_the_zero_phase_filter_of_any_series():
    from pimsk.core.emg import lowpass
    from pimsk.learn.identify import lowpass_operator

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).cumsum(axis=0)  # a window of 100 frames at 100 Hz, three series
    op = lowpass_operator(100, 100.0, 15.0)
    assert op.shape == (100, 100) and op.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(op @ x, lowpass(x, 100.0, 15.0), rtol=0, atol=1e-10)
    # a sinusoid well below the cut-off passes (gain 1 away from the window edges), one well above is removed
    t = np.arange(100) / 100.0
    slow, fast = np.sin(2 * np.pi * 2.0 * t), np.sin(2 * np.pi * 40.0 * t)
    assert np.abs((op @ slow - slow)[15:-15]).max() < 1e-3
    assert np.abs((op @ fast)[15:-15]).max() < 1e-2


def test_moment_lowpass_setting_is_checked():
    assert IdentifySettings.from_dict({"moment_lowpass_hz": 15}).moment_lowpass_hz == 15
    assert IdentifySettings.from_dict({}).moment_lowpass_hz is None
    with pytest.raises(ConfigError, match="moment_lowpass_hz"):
        IdentifySettings.from_dict({"moment_lowpass_hz": 0})
