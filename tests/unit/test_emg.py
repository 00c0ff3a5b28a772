"""EMG envelope chain (pimsk.core.emg) and the `pimsk emg` verb, on hand-solved signals.

Golden values: Butterworth magnitudes from the closed form |H|^2 = 1 / (1 + (tan(pi f / fs) / tan(pi fc / fs))^(2N))
of the bilinear-transformed prototype (forward-backward filtering squares it); linearity of the chain
(envelope(k x) = k envelope(x)); E|x| of a Gaussian is proportional to its standard deviation, so the envelope of
amplitude-modulated noise follows the modulation.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from pimsk.cli import main
from pimsk.core.emg import (EMGError, EMGWarning, EnvelopeSettings, apply_delay, bandpass, check_channels,
                            delay_samples, effective_band_hz, envelope, lowpass, normalise, reference_from_envelopes,
                            resample_envelope, sampling_rate_hz)
from pimsk.io.containers import Table
from pimsk.io.storage import read_storage, write_storage


def _gain(y: np.ndarray, x: np.ndarray) -> float:
    """RMS ratio over the middle half (away from the filter's edge transients)."""
    n = x.shape[0]
    mid = slice(n // 4, 3 * n // 4)
    return float(np.std(y[mid]) / np.std(x[mid]))


def _butter_lowpass_gain_sq(f_hz: float, fc_hz: float, fs_hz: float, order: int) -> float:
    """|H(f)|^2 of a digital (bilinear) Butterworth low-pass: the forward-backward gain."""
    ratio = np.tan(np.pi * f_hz / fs_hz) / np.tan(np.pi * fc_hz / fs_hz)
    return float(1.0 / (1.0 + ratio ** (2 * order)))


def _am_noise(rate_hz: float = 2000.0, duration_s: float = 5.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(0.0, duration_s, 1.0 / rate_hz)
    modulation = 1.0 + 0.8 * np.sin(2 * np.pi * 1.0 * t)
    return t, modulation * np.random.default_rng(seed).standard_normal(t.size), modulation


def test_100hz_sine_passes_with_unit_gain() -> None:
    fs = 2000.0
    t = np.arange(0.0, 2.0, 1 / fs)
    x = np.sin(2 * np.pi * 100.0 * t)
    # both skirts at 100 Hz: 1 - O((20/100)^8) and 1 - O((100/450)^8), i.e. within 1e-5 of unity
    assert _gain(bandpass(x, fs), x) == pytest.approx(1.0, abs=1e-3)


def test_1000hz_sine_is_removed() -> None:
    fs = 4000.0
    t = np.arange(0.0, 2.0, 1 / fs)
    x = np.sin(2 * np.pi * 1000.0 * t)
    bound = _butter_lowpass_gain_sq(1000.0, 450.0, fs, 4)  # 3.4e-4 for the 4th-order upper skirt alone
    gain = _gain(bandpass(x, fs), x)
    assert gain < 1e-3 and gain < 1.5 * bound


def test_lowpass_gain_at_cutoff_is_minus_6_db() -> None:
    fs = 1000.0
    t = np.arange(0.0, 20.0, 1 / fs)
    x = np.sin(2 * np.pi * 6.0 * t)
    assert _gain(lowpass(x, fs, 6.0, 4), x) == pytest.approx(0.5, abs=0.01)  # |H|^2 = 1/2 at the cut-off


def test_envelope_recovers_the_modulation() -> None:
    t, x, modulation = _am_noise()
    env = envelope(x, 2000.0)
    inner = slice(2000, -2000)
    r = np.corrcoef(env[inner], modulation[inner])[0, 1]
    assert r > 0.95
    assert env.min() >= 0.0


def test_envelope_is_linear_in_amplitude() -> None:
    _, x, _ = _am_noise(seed=1)
    env1 = envelope(x, 2000.0)
    env3 = envelope(3.0 * x, 2000.0)
    np.testing.assert_allclose(env3, 3.0 * env1, rtol=1e-10, atol=1e-12)


def test_normalisation_uses_the_global_peak_across_trials() -> None:
    _, x, _ = _am_noise(seed=2)
    small = envelope(np.column_stack([x, 2.0 * x]), 2000.0)
    big = envelope(np.column_stack([3.0 * x, 0.5 * x]), 2000.0)
    ref = reference_from_envelopes([small, big], ["a", "b"])
    np.testing.assert_allclose(ref, [big[:, 0].max(), small[:, 1].max()])
    n_small, n_big = normalise(small, ref), normalise(big, ref)
    assert n_small[:, 0].max() == pytest.approx(1.0 / 3.0, rel=1e-9)  # same noise, a third of the amplitude
    assert n_big[:, 0].max() == pytest.approx(1.0)
    assert n_small[:, 1].max() == pytest.approx(1.0)
    assert n_big[:, 1].max() == pytest.approx(0.25, rel=1e-9)


def test_nyquist_adaptation_at_500_hz() -> None:
    with pytest.warns(EMGWarning, match="lowered to 200 Hz"):
        assert effective_band_hz((20.0, 450.0), 500.0) == (20.0, 200.0)
    with pytest.warns(EMGWarning, match="408"):
        assert effective_band_hz((20.0, 450.0), 1020.0) == (20.0, 408.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert effective_band_hz((20.0, 450.0), 2000.0) == (20.0, 450.0)
    fs = 500.0
    t = np.arange(0.0, 4.0, 1 / fs)
    x = np.sin(2 * np.pi * 80.0 * t)
    with pytest.warns(EMGWarning):
        y = bandpass(x, fs)
    assert np.all(np.isfinite(y)) and _gain(y, x) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(EMGError, match="not below"), pytest.warns(EMGWarning):
        effective_band_hz((20.0, 450.0), 40.0)


def test_delay_shifts_by_whole_samples() -> None:
    fs = 1000.0
    env = np.zeros((400, 2))
    env[100, 0] = 1.0
    env[200, 1] = 2.0
    assert delay_samples(fs, 0.0504) == 50
    out = apply_delay(env, fs, 0.05)
    assert out[150, 0] == 1.0 and out[250, 1] == 2.0
    assert np.count_nonzero(out) == 2
    ramp = np.arange(10.0)
    np.testing.assert_array_equal(apply_delay(ramp, 100.0, 0.03), [0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
    with pytest.raises(EMGError, match="delay"):
        apply_delay(ramp, 100.0, -0.01)


def test_resample_onto_kinematics_times() -> None:
    t = np.arange(0.0, 1.0, 1 / 1000.0)
    env = np.column_stack([2.0 * t + 1.0, t**0])
    new_t = np.arange(0.1, 0.9, 1 / 60.0)
    np.testing.assert_allclose(resample_envelope(t, env, new_t)[:, 0], 2.0 * new_t + 1.0, rtol=1e-12)
    with pytest.raises(EMGError, match="outside"):
        resample_envelope(t, env, np.array([0.5, 1.2]))


def test_flat_and_nan_channels_are_named() -> None:
    x = np.random.default_rng(0).standard_normal((1000, 3))
    x[:, 1] = 0.25
    with pytest.raises(EMGError) as info:
        envelope(x, 1000.0, labels=["a", "b", "c"])
    assert info.value.field == "b" and "flat" in str(info.value)
    x[:, 1] = np.nan
    with pytest.raises(EMGError, match="all NaN") as info:
        check_channels(x, ["a", "b", "c"], where={"trial": "walk1"})
    assert "walk1" in str(info.value) and info.value.field == "b"
    x[:, 1] = 1.0 + np.arange(1000.0)
    x[10, 2] = np.nan
    with pytest.raises(EMGError, match="first at sample 10") as info:
        check_channels(x, ["a", "b", "c"])
    assert info.value.field == "c"
    with pytest.raises(EMGError, match="not positive"):
        reference_from_envelopes([np.zeros((10, 1))], ["silent"])


def test_sampling_rate_from_time_column() -> None:
    assert sampling_rate_hz(0.3 + np.arange(500) / 1020.0) == pytest.approx(1020.0)
    with pytest.raises(EMGError, match="not uniform"):
        sampling_rate_hz(np.array([0.0, 0.001, 0.003, 0.004]))


# --------------------------------------------------------------------------------------------- the verb
def _write_raw(path, x: np.ndarray, rate_hz: float, labels: list[str], t0: float = 0.0) -> None:
    t = t0 + np.arange(x.shape[0]) / rate_hz
    write_storage(path, Table(t, x, labels, name="emg_raw"), extra_header={"DataRate": f"{rate_hz:g}", "units": "V"})


def test_verb_normalises_over_all_trials_and_resamples(tmp_path, capsys) -> None:
    fs = 1000.0
    _, x, _ = _am_noise(rate_hz=fs, duration_s=3.0, seed=3)
    x = 1e-4 * x
    _write_raw(tmp_path / "walk1.sto", np.column_stack([x, 2 * x]), fs, ["ta", "sol"])
    _write_raw(tmp_path / "walk2.sto", np.column_stack([2 * x, x]), fs, ["ta", "sol"])
    kin_t = np.arange(0.5, 2.5, 0.01)
    write_storage(tmp_path / "coords.mot", Table(kin_t, np.zeros((kin_t.size, 1)), ["knee_angle_r"], in_degrees=True))
    out = tmp_path / "env"
    argv = ["emg", str(tmp_path / "walk1.sto"), str(tmp_path / "walk2.sto"), "--out-dir", str(out),
            "--subject", "s1"]
    assert main(argv) == 0
    e1, e2 = read_storage(out / "walk1_envelopes.sto"), read_storage(out / "walk2_envelopes.sto")
    # the same noise at half / full amplitude: per-trial peaks 0.5 and 1 (never 1 and 1)
    assert e1.data[:, 0].max() == pytest.approx(0.5, rel=1e-6) and e2.data[:, 0].max() == pytest.approx(1.0)
    assert e1.data[:, 1].max() == pytest.approx(1.0) and e2.data[:, 1].max() == pytest.approx(0.5, rel=1e-6)
    ref = json.loads((out / "emg_reference.json").read_text())
    assert ref["method"] == "peak_over_trials" and ref["labels"] == ["ta", "sol"]
    assert ref["band_hz_used"] == [[20.0, 400.0], [20.0, 400.0]]  # 0.8 x 500 Hz
    with pytest.warns(EMGWarning):
        direct = envelope(np.column_stack([2 * x, x]), fs, EnvelopeSettings())
    assert ref["reference"]["ta"] == pytest.approx(direct[:, 0].max(), rel=1e-9)

    # kinematics time base and a delay of 20 ms: value at t equals the undelayed envelope at t - 0.02 s
    out2 = tmp_path / "env_kin"
    assert main(argv[:3] + ["--out-dir", str(out2), "--times-from", str(tmp_path / "coords.mot"),
                            str(tmp_path / "coords.mot"), "--delay-s", "0.02"]) == 0
    k1 = read_storage(out2 / "walk1_envelopes.sto")
    np.testing.assert_allclose(k1.time_s, kin_t, atol=1e-12)
    expected = np.interp(kin_t - 0.02, e1.time_s, e1.data[:, 0])
    np.testing.assert_allclose(k1.data[:, 0], expected, rtol=1e-6, atol=1e-9)

    # MVC reference: an MVC at 4x the amplitude of walk2's 'ta' gives walk2 a peak of 1/4
    _write_raw(tmp_path / "mvc.sto", np.column_stack([8 * x, 8 * x]), fs, ["ta", "sol"])
    out3 = tmp_path / "env_mvc"
    assert main(argv[:3] + ["--out-dir", str(out3), "--mvc", str(tmp_path / "mvc.sto")]) == 0
    assert read_storage(out3 / "walk2_envelopes.sto").data[:, 0].max() == pytest.approx(0.25, rel=1e-6)


def test_verb_reports_a_flat_channel_in_one_line(tmp_path, capsys) -> None:
    x = np.random.default_rng(0).standard_normal((2000, 2))
    x[:, 1] = 0.0
    _write_raw(tmp_path / "walk1.sto", x, 1000.0, ["ta", "dead"])
    assert main(["emg", str(tmp_path / "walk1.sto"), "--out-dir", str(tmp_path / "o"), "--subject", "s1"]) == 2
    err = capsys.readouterr().err
    assert "dead" in err and "flat" in err and "trial walk1" in err and "Traceback" not in err


def test_verb_reuses_a_reference_and_names_trials(tmp_path, capsys) -> None:
    fs = 1000.0
    _, x, _ = _am_noise(rate_hz=fs, duration_s=2.0, seed=4)
    for k in (1, 2):
        (tmp_path / f"t{k}").mkdir()
        _write_raw(tmp_path / f"t{k}" / "emg_raw.sto", np.column_stack([k * x, x, -x]), fs, ["ta", "sol", "gas"])
    raws = [str(tmp_path / "t1" / "emg_raw.sto"), str(tmp_path / "t2" / "emg_raw.sto")]
    assert main(["emg", *raws, "--out-dir", str(tmp_path / "a")]) == 2  # both stems are 'emg_raw'
    assert "--trial-names" in capsys.readouterr().err
    assert main(["emg", *raws, "--out-dir", str(tmp_path / "a"), "--trial-names", "walk1", "walk2",
                 "--channels", "ta,sol"]) == 0
    both = read_storage(tmp_path / "a" / "walk1_envelopes.sto")
    assert both.labels == ["ta", "sol"] and both.data[:, 0].max() == pytest.approx(0.5, rel=1e-6)
    # walk1 alone with the reference of both: the same envelopes as when processed together
    assert main(["emg", raws[0], "--out-dir", str(tmp_path / "b"), "--trial-names", "walk1", "--channels", "ta,sol",
                 "--reference-in", str(tmp_path / "a" / "emg_reference.json")]) == 0
    alone = read_storage(tmp_path / "b" / "walk1_envelopes.sto")
    np.testing.assert_allclose(alone.data, both.data, rtol=1e-12)
    assert json.loads((tmp_path / "b" / "emg_reference.json").read_text())["method"] == "reference_in"
    assert main(["emg", raws[0], "--out-dir", str(tmp_path / "c"), "--channels", "ta,vl"]) == 2
    assert "vl" in capsys.readouterr().err
