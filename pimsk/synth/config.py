"""The ``synth:`` section of a subject file (plus the subject fields it needs), parsed and checked.

The subject file itself is validated against ``pimsk/schemas/subject.schema.json`` first (its ``synth``
object is free-form there); every problem raises :class:`pimsk.errors.ConfigError` naming the file and
the field. Per-trial synth settings: ``duration_s``, ``pose_deg`` (initial pose), ``locked_coordinates_deg``
(held by the set-up: seat, brace), ``muscles`` (the trial's model keeps only these), ``excitation``.
A dynamic trial's analysis window is the subject file's ``trials[].time_range_s`` (what a lab analyses of a
recording that starts and ends with some rest: the filters' end effects fall in that padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pimsk.errors import ConfigError
from pimsk.synth.excitation import MIN_EXCITATION, Burst

PARAMETERS = ("max_isometric_force", "optimal_fiber_length", "tendon_slack_length",
              "pennation_angle_at_optimal", "max_contraction_velocity")


@dataclass(frozen=True)
class NoiseSpec:
    """marker_sd_mm: Gaussian marker noise per axis (mm); emg_floor_uv: RMS of the additive noise
    floor (uV); emg_gain_uv: RMS EMG at full excitation (uV), per-muscle overrides in
    ``emg_gain_uv_by_muscle``; emd_s: electromechanical delay (EMG leads the excitation by it);
    emg_band_hz: pass band of the excitation-modulated noise."""

    marker_sd_mm: float = 0.5
    emg_floor_uv: float = 5.0
    emg_gain_uv: float = 400.0
    emg_gain_uv_by_muscle: dict[str, float] = field(default_factory=dict)
    emd_s: float = 0.04
    emg_band_hz: tuple[float, float] = (20.0, 450.0)


@dataclass(frozen=True)
class TrialSpec:
    """One trial to synthesise: ``kind`` "static" (markers of a held pose) or "dynamic" (forward
    simulation). Angles in radians inside (the file gives degrees)."""

    name: str
    file: str
    kind: str
    duration_s: float
    pose_rad: dict[str, float]
    locked_rad: dict[str, float]
    muscles: tuple[str, ...] | None
    baseline: dict[str, float] | float
    bursts: tuple[Burst, ...]
    window_s: tuple[float, float] | None = None  # analysis window (s) inside [0, duration_s]


@dataclass(frozen=True)
class SynthConfig:
    """Everything ``pimsk synth`` needs from a subject file."""

    path: Path
    subject: str
    mass_kg: float
    height_m: float
    builder: str
    generic_body_mass_kg: float
    lab_to_opensim: str | list[list[float]]
    seed: int
    scale_factors: dict[str, tuple[float, float, float]]
    perturbation_pct: dict[str, dict[str, float]]
    marker_rate_hz: float
    emg_rate_hz: float
    emg_channels: dict[str, str]  # C3D analog label -> muscle
    noise: NoiseSpec
    integrator_method: str
    integrator_accuracy: float
    trials: tuple[TrialSpec, ...]
    min_excitation: float = MIN_EXCITATION
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class _Reader:
    """Small typed accessors that raise ConfigError with the file and dotted field name."""

    def __init__(self, path: Path, subject: str | None = None) -> None:
        self.path = path
        self.subject = subject

    def fail(self, field_name: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, subject=self.subject, file=str(self.path), field=field_name, hint=hint)

    def mapping(self, node: Any, name: str, required: bool = True) -> dict:
        if node is None and not required:
            return {}
        if not isinstance(node, dict):
            raise self.fail(name, f"expected a mapping, got {type(node).__name__}")
        return node

    def number(self, node: dict, key: str, name: str, default: float | None = None,
               lo: float = -math.inf, hi: float = math.inf) -> float:
        if key not in node or node[key] is None:
            if default is None:
                raise self.fail(f"{name}.{key}" if name else key, "missing")
            return float(default)
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{name}.{key}" if name else key, f"expected a number, got {value!r}")
        if not lo <= float(value) <= hi:
            raise self.fail(f"{name}.{key}" if name else key, f"{value} outside [{lo}, {hi}]")
        return float(value)

    def angles(self, node: Any, name: str) -> dict[str, float]:
        node = self.mapping(node, name, required=False)
        out = {}
        for k, v in node.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.fail(f"{name}.{k}", f"expected an angle in degrees, got {v!r}")
            out[str(k)] = math.radians(float(v))
        return out


def _scale_factors(r: _Reader, node: Any) -> dict[str, tuple[float, float, float]]:
    node = r.mapping(node, "synth.scale_factors", required=False)
    out = {}
    for body, v in node.items():
        vals = [v] * 3 if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        if (not isinstance(vals, list) or len(vals) != 3
                or not all(isinstance(x, (int, float)) and 0.5 <= x <= 2.0 for x in vals)):
            raise r.fail(f"synth.scale_factors.{body}", f"expected one factor or three in [0.5, 2], got {v!r}")
        out[str(body)] = tuple(float(x) for x in vals)
    return out  # type: ignore[return-value]


def _perturbations(r: _Reader, node: Any) -> dict[str, dict[str, float]]:
    node = r.mapping(node, "synth.muscle_perturbation_pct", required=False)
    out: dict[str, dict[str, float]] = {}
    for muscle, params in node.items():
        params = r.mapping(params, f"synth.muscle_perturbation_pct.{muscle}")
        for p, pct in params.items():
            if p not in PARAMETERS:
                raise r.fail(f"synth.muscle_perturbation_pct.{muscle}.{p}", "unknown parameter",
                             hint=f"one of {', '.join(PARAMETERS)}")
            out.setdefault(str(muscle), {})[p] = r.number(params, p, f"synth.muscle_perturbation_pct.{muscle}",
                                                          lo=-90.0, hi=500.0)
    return out


def _bursts(r: _Reader, node: Any, name: str) -> tuple[Burst, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        raise r.fail(name, "expected a list of bursts")
    out = []
    for i, b in enumerate(node):
        fname = f"{name}[{i}]"
        b = r.mapping(b, fname)
        muscles = b.get("muscles")
        if not isinstance(muscles, list) or not muscles or not all(isinstance(m, str) for m in muscles):
            raise r.fail(f"{fname}.muscles", "expected a non-empty list of muscle names")
        gains = r.mapping(b.get("gains"), f"{fname}.gains", required=False)
        stop = b.get("stop_s")
        out.append(Burst(
            muscles=tuple(muscles),
            amplitude=r.number(b, "amplitude", fname, lo=0.0, hi=1.0),
            period_s=r.number(b, "period_s", fname, lo=1e-3),
            duty=r.number(b, "duty", fname, default=0.4, lo=1e-3, hi=1.0),
            start_s=r.number(b, "start_s", fname, default=0.0, lo=0.0),
            stop_s=None if stop is None else r.number(b, "stop_s", fname, lo=0.0),
            gains={str(k): r.number(gains, k, f"{fname}.gains", lo=0.0, hi=10.0) for k in gains},
        ))
    return tuple(out)


def _builder(r: _Reader, model: Any) -> str:
    from pimsk.osim.models import BUILDERS

    kind = model[len("builtin:"):] if isinstance(model, str) and model.startswith("builtin:") else None
    if kind not in BUILDERS:
        raise r.fail("model", f"{model!r} is not a code-built model",
                     hint=f"pimsk synth needs one of {', '.join('builtin:' + k for k in BUILDERS)}")
    return kind


def load_synth_config(path: str | Path) -> SynthConfig:
    """Parse a subject YAML file (validated against pimsk/schemas/subject.schema.json) and its ``synth:``
    section. Trials: the subject's ``static`` trial and its ``trials`` that ``synth.trials`` names."""
    from pimsk.config import load_subject

    path = Path(path)
    doc = load_subject(path)
    r = _Reader(path)
    subject = str(doc["id"])
    r.subject = subject
    if "synth" not in doc:
        raise r.fail("synth", "missing: this subject file has no synthetic-subject settings")
    syn = r.mapping(doc["synth"], "synth")
    builder = _builder(r, doc["model"])
    noise_node = r.mapping(syn.get("noise"), "synth.noise", required=False)
    band = noise_node.get("emg_band_hz", [20.0, 450.0])
    if not (isinstance(band, list) and len(band) == 2 and 0 < band[0] < band[1]):
        raise r.fail("synth.noise.emg_band_hz", f"expected [low, high] in Hz, got {band!r}")
    gains = r.mapping(noise_node.get("emg_gain_uv_by_muscle"), "synth.noise.emg_gain_uv_by_muscle", required=False)
    noise = NoiseSpec(
        marker_sd_mm=r.number(noise_node, "marker_sd_mm", "synth.noise", default=0.5, lo=0.0, hi=20.0),
        emg_floor_uv=r.number(noise_node, "emg_floor_uv", "synth.noise", default=5.0, lo=0.0),
        emg_gain_uv=r.number(noise_node, "emg_gain_uv", "synth.noise", default=400.0, lo=0.0),
        emg_gain_uv_by_muscle={str(k): r.number(gains, k, "synth.noise.emg_gain_uv_by_muscle", lo=0.0) for k in gains},
        emd_s=r.number(noise_node, "emd_s", "synth.noise", default=0.04, lo=0.0, hi=0.2),
        emg_band_hz=(float(band[0]), float(band[1])),
    )
    emg_rate = r.number(syn, "emg_rate_hz", "synth", default=2000.0, lo=1000.0)
    marker_rate = r.number(syn, "marker_rate_hz", "synth", default=100.0, lo=10.0, hi=1000.0)
    if abs(emg_rate / marker_rate - round(emg_rate / marker_rate)) > 1e-9:
        raise r.fail("synth.emg_rate_hz", f"{emg_rate} Hz is not a whole multiple of marker_rate_hz {marker_rate}",
                     hint="C3D stores a whole number of analog samples per marker frame")
    if noise.emg_band_hz[1] >= emg_rate / 2:
        raise r.fail("synth.noise.emg_band_hz", "upper band edge must be below half the EMG rate")
    channels = doc.get("emg", {}).get("channels", {})

    syn_trials = r.mapping(syn.get("trials"), "synth.trials")
    listed = ([("static", doc["static"])] if "static" in doc else []) + [("dynamic", t) for t in doc.get("trials", [])]
    trials = []
    for kind, t in listed:
        name = t["name"]
        if name not in syn_trials:
            continue  # a trial synth does not make
        fname = f"synth.trials.{name}"
        st = r.mapping(syn_trials[name], fname)
        muscles = st.get("muscles")
        if muscles is not None and (not isinstance(muscles, list) or not all(isinstance(m, str) for m in muscles)):
            raise r.fail(f"{fname}.muscles", "expected a list of muscle names")
        exc = r.mapping(st.get("excitation"), f"{fname}.excitation", required=(kind == "dynamic"))
        baseline = exc.get("baseline", 0.0)
        if isinstance(baseline, dict):
            baseline = {str(k): r.number(baseline, k, f"{fname}.excitation.baseline", lo=0, hi=1) for k in baseline}
        else:
            baseline = r.number(exc, "baseline", f"{fname}.excitation", default=0.0, lo=0.0, hi=1.0)
        duration = r.number(st, "duration_s", fname, lo=0.05, hi=60.0)
        window = None
        if kind == "dynamic" and t.get("time_range_s") is not None:
            t0, t1 = (float(x) for x in t["time_range_s"])
            if not 0.0 <= t0 < t1 <= duration:
                raise r.fail(f"trials.{name}.time_range_s", f"[{t0}, {t1}] is not a window inside the synthesised "
                             f"0..{duration} s (synth.trials.{name}.duration_s)")
            window = (t0, t1)
        trials.append(TrialSpec(
            name=name,
            file=str(t["file"]),
            kind=kind,
            duration_s=duration,
            pose_rad=r.angles(st.get("pose_deg"), f"{fname}.pose_deg"),
            locked_rad=r.angles(st.get("locked_coordinates_deg"), f"{fname}.locked_coordinates_deg"),
            muscles=None if muscles is None else tuple(muscles),
            baseline=baseline,
            bursts=_bursts(r, exc.get("bursts"), f"{fname}.excitation.bursts"),
            window_s=window,
        ))
    unknown = sorted(set(syn_trials) - {t["name"] for _, t in listed})
    if unknown:
        raise r.fail("synth.trials", f"settings for trials the subject does not list: {unknown}",
                     hint="add them to 'static' or 'trials' with their C3D file names")
    if not trials:
        raise r.fail("synth.trials", "names none of the subject's trials")

    seed = syn.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise r.fail("synth.seed", f"expected a non-negative integer, got {seed!r}")
    integ = r.mapping(syn.get("integrator"), "synth.integrator", required=False)
    method = str(integ.get("method", "RungeKuttaMerson"))
    return SynthConfig(
        path=path,
        subject=subject,
        mass_kg=float(doc["mass_kg"]),
        height_m=float(doc["height_m"]),
        builder=builder,
        generic_body_mass_kg=r.number(syn, "generic_body_mass_kg", "synth", default=75.0, lo=10.0, hi=300.0),
        lab_to_opensim=doc.get("lab_to_opensim", "x,z,-y"),
        seed=seed,
        scale_factors=_scale_factors(r, syn.get("scale_factors")),
        perturbation_pct=_perturbations(r, syn.get("muscle_perturbation_pct")),
        marker_rate_hz=marker_rate,
        emg_rate_hz=emg_rate,
        emg_channels={str(k): str(v) for k, v in channels.items()},
        noise=noise,
        integrator_method=method,
        integrator_accuracy=r.number(integ, "accuracy", "synth.integrator", default=1e-5, lo=1e-10, hi=1e-2),
        trials=tuple(trials),
        min_excitation=r.number(syn, "min_excitation", "synth", default=MIN_EXCITATION, lo=0.0, hi=0.5),
        raw=doc,
    )
