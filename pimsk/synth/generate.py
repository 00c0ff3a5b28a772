"""`pimsk synth`: a synthetic subject with known truth, from a subject file's ``synth:`` section.

For every trial: the subject model (generic model scaled by known factors, muscles perturbed) is driven
by known excitations through an OpenSim forward simulation (static trials: a held pose), and the
result is "measured": noisy markers in a lab frame (mm) and raw EMG at >= 1 kHz, written to a C3D file.
The truth (scale factors, muscle parameters, states, coordinates, excitations, activations, tendon
forces, muscle moments) goes to ``truth/``. Same seed and settings -> byte-identical files
(timings go to ``synth_timing.json`` only).
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pimsk.errors import ConfigError
from pimsk.synth.c3d_writer import write_c3d
from pimsk.synth.config import SynthConfig, TrialSpec, load_synth_config
from pimsk.synth.excitation import ExcitationPattern
from pimsk.synth.signals import lab_rotation, markers_to_lab_mm, raw_emg
from pimsk.synth.simulate import SimResult, simulate
from pimsk.synth.subject_model import build_subject_model, trial_model
from pimsk.synth.truth import write_json, write_trial_truth

TRUTH_DIR = "truth"


@dataclass
class TrialReport:
    name: str
    c3d: Path
    n_frames: int
    wall_s: float
    coordinate_range_deg: dict[str, tuple[float, float]] = field(default_factory=dict)
    peak_force_n: dict[str, float] = field(default_factory=dict)


@dataclass
class SynthReport:
    out_dir: Path
    truth_json: Path
    trials: list[TrialReport]
    wall_s: float


def trial_rng(seed: int, trial_name: str) -> np.random.Generator:
    """Noise generator of one trial: depends on the seed and the trial's name only."""
    return np.random.default_rng([seed, zlib.crc32(trial_name.encode())])


def _pattern(cfg: SynthConfig, trial: TrialSpec, muscles: list[str]) -> ExcitationPattern:
    baseline = trial.baseline if isinstance(trial.baseline, dict) else {m: trial.baseline for m in muscles}
    for i, b in enumerate(trial.bursts):
        unknown = sorted(set(b.muscles) - set(muscles))
        if unknown:
            raise ConfigError(f"burst names muscles not in this trial's model: {unknown}", subject=cfg.subject,
                              trial=trial.name, file=str(cfg.path),
                              field=f"synth.trials.{trial.name}.excitation.bursts[{i}].muscles")
    unknown = sorted(set(baseline) - set(muscles))
    if unknown:
        raise ConfigError(f"baseline names muscles not in this trial's model: {unknown}", subject=cfg.subject,
                          trial=trial.name, file=str(cfg.path), field=f"synth.trials.{trial.name}.excitation.baseline")
    return ExcitationPattern(tuple(muscles), dict(baseline), trial.bursts, min_excitation=cfg.min_excitation)


def shortened(trial: TrialSpec, max_duration_s: float) -> TrialSpec:
    """The trial with its analysis window cut to ``max_duration_s`` (the rest before and after it kept, so a
    short run is padded like a full one); a trial without a window is cut to ``max_duration_s`` in all."""
    if trial.window_s is None:
        return replace(trial, duration_s=min(trial.duration_s, max_duration_s))
    t0, t1 = trial.window_s
    t1_new = min(t1, t0 + max_duration_s)
    return replace(trial, duration_s=min(trial.duration_s, t1_new + (trial.duration_s - t1)), window_s=(t0, t1_new))


def _emg(cfg: SynthConfig, sim: SimResult, pattern: ExcitationPattern, rng: np.random.Generator):
    """Raw EMG (n_analog, n_channels) in V for the channels whose muscle is in the trial model."""
    channels = [(label, m) for label, m in cfg.emg_channels.items() if m in sim.muscles]
    if not channels:
        return None, [], {}
    cols = [pattern.muscles.index(m) for _, m in channels]
    ratio = int(round(cfg.emg_rate_hz / cfg.marker_rate_hz))
    gains_uv = np.array([cfg.noise.emg_gain_uv_by_muscle.get(m, cfg.noise.emg_gain_uv) for _, m in channels])
    emg = raw_emg(lambda t: pattern.evaluate(t)[:, cols], len(sim.time_s) * ratio, cfg.emg_rate_hz,
                  cfg.noise.emd_s, gains_uv * 1e-6, cfg.noise.emg_floor_uv * 1e-6, cfg.noise.emg_band_hz, rng)
    meta = {label: {"muscle": m, "gain_rms_v": g * 1e-6, "floor_rms_v": cfg.noise.emg_floor_uv * 1e-6}
            for (label, m), g in zip(channels, gains_uv)}
    return emg, [label for label, _ in channels], meta


def synthesize(config_path: str | Path, out_dir: str | Path, seed: int | None = None,
               max_duration_s: float | None = None, only_trials: list[str] | None = None) -> SynthReport:
    """Make the subject's C3D files and truth under ``out_dir``; see the module docstring.

    seed: overrides ``synth.seed``; max_duration_s: shortens every trial's analysis window (the padding
    around it is kept; a trial without a window is cut to it) (quick runs, tests);
    only_trials: names of the trials to make (default all in ``synth.trials``).
    """
    from pimsk.osim.logging import quiet_opensim

    t_start = time.perf_counter()
    cfg = load_synth_config(config_path)
    if seed is not None:
        cfg = replace(cfg, seed=int(seed))
    trials = list(cfg.trials)
    if only_trials:
        missing = sorted(set(only_trials) - {t.name for t in trials})
        if missing:
            raise ConfigError(f"no synth settings for trials {missing}", subject=cfg.subject, file=str(cfg.path),
                              field="synth.trials")
        trials = [t for t in trials if t.name in only_trials]
    if max_duration_s is not None:
        trials = [shortened(t, max_duration_s) for t in trials]
    try:
        rot = lab_rotation(cfg.lab_to_opensim)
    except ValueError as exc:
        raise ConfigError(str(exc), subject=cfg.subject, file=str(cfg.path), field="lab_to_opensim") from None

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quiet_opensim()
    subject = build_subject_model(cfg, out)
    unknown = sorted({m for m in cfg.emg_channels.values()} - set(subject.params_truth))
    if unknown:
        raise ConfigError(f"EMG channels map to muscles the model lacks: {unknown}", subject=cfg.subject,
                          file=str(cfg.path), field="emg.channels", hint=f"muscles: {', '.join(subject.params_truth)}")
    reports: list[TrialReport] = []
    trial_truth: dict[str, dict] = {}
    timing: dict[str, float] = {}
    for trial in trials:
        folder = out / TRUTH_DIR / trial.name
        folder.mkdir(parents=True, exist_ok=True)
        model = trial_model(subject.truth_path, trial, cfg)
        model.printToXML(str(folder / "model.osim"))
        muscles = [model.getMuscles().get(i).getName() for i in range(model.getMuscles().getSize())]
        pattern = _pattern(cfg, trial, muscles) if trial.kind == "dynamic" else None
        sim = simulate(model, pattern, trial.duration_s, cfg.marker_rate_hz, cfg.integrator_method,
                       cfg.integrator_accuracy, label=trial.name)
        rng = trial_rng(cfg.seed, trial.name)
        markers_mm = markers_to_lab_mm(sim.markers_m, rot, cfg.noise.marker_sd_mm, rng)
        emg, emg_labels, emg_meta = (None, [], {})
        if pattern is not None:
            emg, emg_labels, emg_meta = _emg(cfg, sim, pattern, rng)
        c3d_path = write_c3d(out / trial.file, markers_mm, sim.marker_names, cfg.marker_rate_hz, emg, emg_labels,
                             cfg.emg_rate_hz, subject=cfg.subject, description=f"pimsk synth {trial.name}")
        files = write_trial_truth(folder, sim)
        trial_truth[trial.name] = {
            "kind": trial.kind,
            "c3d": trial.file,
            "model": f"{TRUTH_DIR}/{trial.name}/model.osim",
            "files": {k: f"{TRUTH_DIR}/{trial.name}/{v}" for k, v in files.items()},
            "duration_s": float(sim.time_s[-1]),
            "analysis_window_s": None if trial.window_s is None else list(trial.window_s),
            "n_frames": len(sim.time_s),
            "muscles": sim.muscles,
            "free_coordinates": sim.free_coordinates,
            "locked_coordinates_rad": trial.locked_rad,
            "initial_pose_rad": trial.pose_rad,
            "excitation": None if pattern is None else {
                "min_excitation": pattern.min_excitation,
                "baseline": pattern.baseline,
                "bursts": [vars(b) | {"muscles": list(b.muscles)} for b in pattern.bursts],
                "shape": "baseline + sum amplitude*gain*sin^2(pi*tau/(duty*period)), clipped to [min, 1]",
            },
            "emg_channels": emg_meta,
            "integrator": sim.integrator,
        }
        timing[trial.name] = sim.wall_s
        reports.append(TrialReport(
            trial.name, c3d_path, len(sim.time_s), sim.wall_s,
            {c: (float(np.degrees(sim.q[:, j].min())), float(np.degrees(sim.q[:, j].max())))
             for j, c in enumerate(sim.coordinates) if c in sim.free_coordinates},
            {m: float(sim.tendon_force_n[:, j].max()) for j, m in enumerate(sim.muscles)},
        ))

    truth = {
        "subject": cfg.subject,
        "config": str(config_path),
        "config_sha256": hashlib.sha256(Path(config_path).read_bytes()).hexdigest(),
        "seed": cfg.seed,
        "mass_kg": cfg.mass_kg,
        "height_m": cfg.height_m,
        "model_builder": cfg.builder,
        "generic_model": subject.generic_path.name,
        "truth_model": f"{TRUTH_DIR}/{subject.truth_path.name}",
        "generic_body_mass_kg": cfg.generic_body_mass_kg,
        "model_mass_note": "the model holds only some segments: ScaleTool's mass must be model_mass_kg, "
                           "not the body mass",
        "generic_model_mass_kg": subject.generic_model_mass_kg,
        "model_mass_kg": subject.model_mass_kg,
        "scale_factors": {b: list(f) for b, f in subject.scale_factors.items()},
        "muscle_perturbation_pct": cfg.perturbation_pct,
        "muscle_parameters": {"generic": subject.params_generic, "scaled": subject.params_scaled,
                              "truth": subject.params_truth},
        "lab_to_opensim": {"spec": cfg.lab_to_opensim, "matrix": rot,
                           "convention": "p_opensim = matrix @ p_lab; C3D markers are in the lab frame, mm"},
        "min_excitation": cfg.min_excitation,
        "marker_rate_hz": cfg.marker_rate_hz,
        "emg_rate_hz": cfg.emg_rate_hz,
        "noise": {"marker_sd_mm": cfg.noise.marker_sd_mm, "emg_floor_rms_uv": cfg.noise.emg_floor_uv,
                  "emg_gain_rms_uv": cfg.noise.emg_gain_uv, "emg_band_hz": list(cfg.noise.emg_band_hz),
                  "emd_s": cfg.noise.emd_s},
        "emg_model": "raw(t) = gain * u(t + emd) * n(t) + floor * w(t); n: unit-RMS band-limited Gaussian, "
                     "w: white Gaussian; u: the muscle's excitation (EMG leads it by emd)",
        "units": {"angles": "rad in .sto/.json, deg in coordinates.mot", "forces": "N (tendon force)",
                  "moments": "N m (sum of moment arm x tendon force)", "lengths": "m"},
        "trials": trial_truth,
    }
    truth_json = write_json(out / TRUTH_DIR / "truth.json", truth)
    total = time.perf_counter() - t_start
    write_json(out / "synth_timing.json", {"trials_wall_s": timing, "total_wall_s": total})
    return SynthReport(out, truth_json, reports, total)
