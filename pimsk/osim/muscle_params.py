"""Read DeGrooteFregly2016 muscle parameters from a (scaled) OpenSim model into :class:`MuscleParameters`.

Muscles of other types are first replaced by ``DeGrooteFregly2016Muscle``: Millard2012 and Thelen2003 by
OpenSim's own ``DeGrooteFregly2016Muscle.replaceMuscles`` (which maps their time constants, damping and curve
strains); other types (e.g. the wrist model's ``Schutte1993Muscle_Deprecated``) from the base ``Muscle``
properties only (max isometric force, optimal fiber length, tendon slack length, pennation, max contraction
velocity, tendon compliance / activation flags, controls bounds, path), the rest at DeGroote defaults, which
is what OpenSim's documentation promises for ``allowUnsupportedMuscles`` (4.6 silently skips them instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pimsk.core.muscle_parameters import BOOL_FIELDS, FLOAT_FIELDS, MuscleParameters
from pimsk.errors import FileFormatError, PimskError
from pimsk.osim.logging import quiet_opensim

__all__ = [
    "replace_with_degroote",
    "load_degroote_model",
    "keep_only_muscles",
    "read_muscle_parameters",
]

DEGROOTE = "DeGrooteFregly2016Muscle"
# Muscle types whose specific properties OpenSim's replaceMuscles maps.
MAPPED = ("Millard2012EquilibriumMuscle", "Thelen2003Muscle")


def _osim():
    import opensim as osim

    quiet_opensim()
    return osim


def _muscle_list(model) -> list:
    muscles = model.getMuscles()
    return [muscles.get(i) for i in range(muscles.getSize())]


def _copy_base_muscle(osim, old) -> Any:
    """A DeGrooteFregly2016Muscle carrying the base Muscle properties of ``old`` (other fields default)."""
    new = osim.DeGrooteFregly2016Muscle()
    new.setName(old.getName())
    new.set_appliesForce(old.get_appliesForce())
    new.setMinControl(old.getMinControl())
    new.setMaxControl(old.getMaxControl())
    new.setMaxIsometricForce(old.getMaxIsometricForce())
    new.setOptimalFiberLength(old.getOptimalFiberLength())
    new.setTendonSlackLength(old.getTendonSlackLength())
    new.setPennationAngleAtOptimalFiberLength(old.getPennationAngleAtOptimalFiberLength())
    new.setMaxContractionVelocity(old.getMaxContractionVelocity())
    new.set_ignore_tendon_compliance(old.get_ignore_tendon_compliance())
    new.set_ignore_activation_dynamics(old.get_ignore_activation_dynamics())
    new.set_path(old.get_path())
    return new


def replace_with_degroote(model, allow_unsupported: bool = True) -> list[str]:
    """Replace every muscle of ``model`` (an opensim.Model, edited in place) by a DeGrooteFregly2016Muscle.

    Returns the names of the muscles replaced. With ``allow_unsupported`` False, a muscle type that OpenSim
    cannot map (not Millard2012/Thelen2003) raises a PimskError naming it.
    """
    osim = _osim()
    before = [m.getName() for m in _muscle_list(model) if m.getConcreteClassName() != DEGROOTE]
    if not before:
        return []
    unsupported = [m for m in _muscle_list(model) if m.getConcreteClassName() not in (DEGROOTE, *MAPPED)]
    if unsupported and not allow_unsupported:
        kinds = sorted({m.getConcreteClassName() for m in unsupported})
        raise PimskError(
            f"muscles of type {', '.join(kinds)} cannot be mapped to DeGrooteFregly2016Muscle",
            field=unsupported[0].getName(),
            hint="pass allow_unsupported=True to copy their base Muscle properties only",
        )
    osim.DeGrooteFregly2016Muscle.replaceMuscles(model, True)
    leftovers = [m for m in _muscle_list(model) if m.getConcreteClassName() != DEGROOTE]
    if leftovers:
        force_set = model.updForceSet()
        for old in leftovers:
            new = _copy_base_muscle(osim, old)
            old.setName(old.getName() + "_delete")
            model.addForce(new)
        for old in leftovers:
            index = force_set.getIndex(old.getName())
            if index < 0 or not force_set.remove(index):
                raise PimskError(f"could not remove muscle {old.getName()!r} after replacing it")
        model.finalizeFromProperties()
        model.finalizeConnections()
    return before


def load_degroote_model(osim_path: str | Path, muscles: Sequence[str] | None = None):
    """Load an .osim, replace its muscles by DeGrooteFregly2016Muscle and, if ``muscles`` is given, drop all
    other muscles (a lighter model for sampling). Returns an opensim.Model (initSystem not called)."""
    osim = _osim()
    path = Path(osim_path)
    if not path.is_file():
        raise FileFormatError("model file not found", file=path)
    try:
        model = osim.Model(str(path))
    except Exception as exc:  # OpenSim raises RuntimeError with a C++ message
        raise FileFormatError(f"OpenSim cannot read the model: {str(exc).splitlines()[0]}", file=path) from exc
    try:
        replace_with_degroote(model)
    except PimskError as exc:
        raise exc.located(file=path)
    if muscles is not None:
        keep_only_muscles(model, muscles, source=path)
    return model


def keep_only_muscles(model, muscles: Sequence[str], source: str | Path | None = None) -> None:
    """Remove every muscle not named in ``muscles`` from ``model`` (in place); other forces stay."""
    osim = _osim()
    wanted = set(muscles)
    present = {m.getName() for m in _muscle_list(model)}
    missing = [name for name in muscles if name not in present]
    if missing:
        raise FileFormatError(
            f"muscle(s) {', '.join(missing)} not in the model",
            file=source,
            field="ForceSet",
            hint=f"available muscles: {', '.join(sorted(present))}",
        )
    force_set = model.updForceSet()
    i = 0
    while i < force_set.getSize():
        force = force_set.get(i)
        if osim.Muscle.safeDownCast(force) is not None and force.getName() not in wanted:
            force_set.remove(i)
        else:
            i += 1
    model.finalizeFromProperties()
    model.finalizeConnections()


def read_muscle_parameters(
    osim_path_or_model,
    muscles: Sequence[str] | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> MuscleParameters:
    """Every DeGrooteFregly2016 parameter of the named muscles (default: all, in model order).

    ``osim_path_or_model``: path to an .osim, or an opensim.Model (not modified: a copy is converted when
    its muscles are not DeGrooteFregly2016Muscle already). Raises FileFormatError naming the file and the
    muscle when a name is missing.
    """
    osim = _osim()
    if isinstance(osim_path_or_model, (str, Path)):
        source: str | Path | None = Path(osim_path_or_model)
        model = load_degroote_model(source)
    else:
        source = osim_path_or_model.getDocumentFileName() or osim_path_or_model.getName()
        model = osim_path_or_model
        if any(m.getConcreteClassName() != DEGROOTE for m in _muscle_list(model)):
            model = osim.Model(model)
            model.finalizeFromProperties()
            replace_with_degroote(model)
    all_muscles = _muscle_list(model)
    by_name = {m.getName(): m for m in all_muscles}
    names = [m.getName() for m in all_muscles] if muscles is None else list(muscles)
    missing = [name for name in names if name not in by_name]
    if missing:
        raise FileFormatError(
            f"muscle(s) {', '.join(missing)} not in the model",
            file=source,
            field="ForceSet",
            hint=f"available muscles: {', '.join(sorted(by_name))}",
        )
    values: dict[str, list] = {name: [] for name in (*FLOAT_FIELDS, *BOOL_FIELDS)}
    for name in names:
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(by_name[name])
        for field, prop in {**FLOAT_FIELDS, **BOOL_FIELDS}.items():
            values[field].append(getattr(muscle, f"get_{prop}")())
    return MuscleParameters.from_values(names, dtype=dtype, device=device, **values)
