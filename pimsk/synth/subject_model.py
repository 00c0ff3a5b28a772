"""The synthetic subject's model: the generic code-built model, scaled by known factors with OpenSim's
Model scaling, its muscles optionally perturbed by given percentages; and per-trial variants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pimsk.errors import ConfigError
from pimsk.synth.config import SynthConfig, TrialSpec

_GET = {
    "max_isometric_force": ("getMaxIsometricForce", "setMaxIsometricForce"),
    "optimal_fiber_length": ("getOptimalFiberLength", "setOptimalFiberLength"),
    "tendon_slack_length": ("getTendonSlackLength", "setTendonSlackLength"),
    "pennation_angle_at_optimal": ("getPennationAngleAtOptimalFiberLength", "setPennationAngleAtOptimalFiberLength"),
    "max_contraction_velocity": ("getMaxContractionVelocity", "setMaxContractionVelocity"),
}


def muscle_parameters(model) -> dict[str, dict[str, float]]:
    """{muscle: {parameter: value}} in SI units (N, m, rad, optimal lengths per second)."""
    out = {}
    ms = model.getMuscles()
    for i in range(ms.getSize()):
        m = ms.get(i)
        out[m.getName()] = {p: float(getattr(m, get)()) for p, (get, _) in _GET.items()}
    return out


def model_mass_kg(model) -> float:
    bodies = model.getBodySet()
    return float(sum(bodies.get(i).getMass() for i in range(bodies.getSize())))


@dataclass
class SubjectModel:
    """Paths and numbers of the subject model that the truth file records."""

    generic_path: Path
    truth_path: Path
    scale_factors: dict[str, tuple[float, float, float]]
    generic_model_mass_kg: float
    model_mass_kg: float
    params_generic: dict[str, dict[str, float]]
    params_scaled: dict[str, dict[str, float]]
    params_truth: dict[str, dict[str, float]]


def build_subject_model(cfg: SynthConfig, out_dir: Path) -> SubjectModel:
    """Write ``model_generic.osim`` and ``truth/model_truth.osim`` (scaled + perturbed) under ``out_dir``."""
    from pimsk.osim.models import BUILDERS
    from pimsk.osim.models.scaling import scale_model, scale_factor_table

    builder = BUILDERS[cfg.builder]
    generic_path = out_dir / "model_generic.osim"
    generic = builder(generic_path)
    params_generic = muscle_parameters(generic)
    generic_mass = model_mass_kg(generic)

    model = builder()
    scale = dict(cfg.scale_factors)
    try:
        table = scale_factor_table(model, scale)
    except ValueError as exc:
        raise ConfigError(str(exc), subject=cfg.subject, file=str(cfg.path), field="synth.scale_factors") from None
    mass = generic_mass * cfg.mass_kg / cfg.generic_body_mass_kg
    model = scale_model(model, {**scale, "model_mass_kg": mass})
    params_scaled = muscle_parameters(model)

    ms = model.updMuscles()
    for muscle, changes in cfg.perturbation_pct.items():
        if muscle not in params_scaled:
            raise ConfigError(f"unknown muscle {muscle!r}", subject=cfg.subject, file=str(cfg.path),
                              field=f"synth.muscle_perturbation_pct.{muscle}",
                              hint=f"muscles: {', '.join(params_scaled)}")
        m = ms.get(muscle)
        for p, pct in changes.items():
            get, set_ = _GET[p]
            getattr(m, set_)(getattr(m, get)() * (1.0 + pct / 100.0))
    model.finalizeConnections()
    model.initSystem()
    truth_path = out_dir / "truth" / "model_truth.osim"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    model.setName(f"{cfg.subject}_truth")
    model.printToXML(str(truth_path))
    return SubjectModel(generic_path, truth_path, table, generic_mass, model_mass_kg(model),
                        params_generic, params_scaled, muscle_parameters(model))


def trial_model(truth_path: Path, trial: TrialSpec, cfg: SynthConfig):
    """The subject model for one trial: muscles outside ``trial.muscles`` removed, ``trial.locked_rad``
    coordinates locked at their values, initial pose set as the coordinates' defaults."""
    import opensim as osim

    model = osim.Model(str(truth_path))
    names = [model.getMuscles().get(i).getName() for i in range(model.getMuscles().getSize())]
    if trial.muscles is not None:
        unknown = sorted(set(trial.muscles) - set(names))
        if unknown:
            raise ConfigError(f"unknown muscles {unknown}", subject=cfg.subject, trial=trial.name,
                              file=str(cfg.path), field="trials.muscles", hint=f"muscles: {', '.join(names)}")
        forces = model.updForceSet()
        for name in names:
            if name not in trial.muscles:
                forces.remove(forces.getIndex(name))
    coords = model.updCoordinateSet()
    for name, value in {**trial.pose_rad, **trial.locked_rad}.items():
        if not coords.contains(name):
            raise ConfigError(f"unknown coordinate {name!r}", subject=cfg.subject, trial=trial.name,
                              file=str(cfg.path), field="pose_deg/locked_coordinates_deg")
        coords.get(name).setDefaultValue(value)
    for name in trial.locked_rad:
        coords.get(name).setDefaultLocked(True)
    model.setName(f"{cfg.subject}_{trial.name}")
    model.finalizeConnections()
    return model
