"""Scale a model by known per-body factors with OpenSim's own scaling (``Model.scale``).

``Model.scale`` scales body geometry, joint frames, path points, wrap objects and markers, then
rescales each muscle's optimal fibre length and tendon slack length by the change of its path length
in the default pose (``Muscle::postScale``), exactly as the ScaleTool's ModelScaler does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _factors(value: float | Sequence[float], body: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        f = (float(value),) * 3
    else:
        f = tuple(float(v) for v in value)
    if len(f) != 3 or any(not (0.2 < v < 5.0) for v in f):
        raise ValueError(f"scale factors for {body!r} must be one number or three, each in (0.2, 5): {value!r}")
    return f  # type: ignore[return-value]


def scale_factor_table(model, scale: Mapping[str, object]) -> dict[str, tuple[float, float, float]]:
    """Per-body (sx, sy, sz) for every body of ``model`` (1.0 where ``scale`` names none)."""
    bodies = model.getBodySet()
    names = [bodies.get(i).getName() for i in range(bodies.getSize())]
    unknown = sorted(set(k for k in scale if k != "model_mass_kg") - set(names))
    if unknown:
        raise ValueError(f"scale names unknown bodies {unknown}; bodies: {', '.join(names)}")
    return {n: _factors(scale[n], n) if n in scale else (1.0, 1.0, 1.0) for n in names}  # type: ignore[arg-type]


def scale_model(model, scale: Mapping[str, object], *, preserve_mass_distribution: bool = True):
    """Scale ``model`` in place by ``{body: s | (sx, sy, sz), "model_mass_kg": total}`` and return it.

    Bodies not named keep factor 1. With ``model_mass_kg`` the model's total mass is set (for a partial
    model such as one leg: the mass of the segments it has, not the body mass) and, when
    ``preserve_mass_distribution``, every segment keeps its mass fraction (ScaleTool's behaviour).
    """
    import opensim as osim

    table = scale_factor_table(model, scale)
    scale_set = osim.ScaleSet()
    for body, f in table.items():
        s = osim.Scale()
        s.setSegmentName(body)
        s.setScaleFactors(osim.Vec3(*f))
        s.setApply(True)
        scale_set.cloneAndAppend(s)
    state = model.initSystem()
    mass = float(scale["model_mass_kg"]) if "model_mass_kg" in scale else -1.0
    ok = model.scale(state, scale_set, preserve_mass_distribution, mass)
    if not ok:
        raise RuntimeError("opensim Model.scale failed")
    model.finalizeConnections()
    model.initSystem()
    return model
