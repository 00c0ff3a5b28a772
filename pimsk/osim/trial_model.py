"""A trial's own model: the scaled model with some coordinates locked (a seat, a brace) and a muscle subset.

An experiment can hold joints still (a seated knee task: hip at 60 deg flexion, ankle braced at 0 deg) or drive
only some muscles (the demo's determinate pair). Every step of such a trial must then use a model that knows it:
IK must not fit the held joints to marker noise, ID/SO/CMC must solve only for the free coordinates, and SO/CMC
must share the moments among the muscles that act. This module is the one place that

- reads a trial's set-up from a subject file (:func:`trial_setup`): the trial's own ``locked_coordinates_deg``
  and ``muscles`` (``trials[]`` of the subject file; any subject), else, for a synthetic subject, those of
  ``synth.trials.<trial>`` (the experiment ``pimsk synth`` simulated is the one to process);
- turns it into the ``--lock`` / ``--keep-muscles`` text of the OpenSim verbs and back
  (:func:`format_lock`, :func:`parse_lock`, :func:`format_muscles`, :func:`parse_muscles`);
- writes the model (:func:`write_trial_model`): OpenSim's ``Coordinate.set_default_value`` + ``locked``,
  muscles removed from the ForceSet (other forces kept).

The verbs ``pimsk ik|id|so|cmc`` take ``--lock COORD=VALUE,...`` (deg; m for a translation) and
``--keep-muscles NAME,...`` and write ``<out>/model_trial.osim`` beside their results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pimsk.errors import ConfigError

TRIAL_MODEL = "model_trial.osim"


@dataclass(frozen=True)
class TrialSetup:
    """locked_deg: coordinate -> value (deg; m for a translational coordinate); muscles: the muscles the trial's
    model keeps (None: all). ``source``: the subject-file field they came from (for error messages)."""

    locked_deg: dict[str, float]
    muscles: tuple[str, ...] | None
    source: str = ""

    @property
    def empty(self) -> bool:
        return not self.locked_deg and self.muscles is None


def trial_setup(doc: Mapping, trial: str) -> TrialSetup:
    """The set-up of ``trial`` in a (validated) subject file ``doc``.

    Each of ``locked_coordinates_deg`` and ``muscles`` is taken from the trial's entry in ``trials`` when it
    is given there, else from ``synth.trials.<trial>`` (synthetic subjects), else nothing is locked / every
    muscle is kept. The static trial is never given one (scaling uses the generic pose); a static entry
    that names one raises ConfigError.
    """
    static = doc.get("static") or {}
    if static.get("name") == trial:
        for key in ("locked_coordinates_deg", "muscles"):
            if key in static:
                raise ConfigError("the static (scaling) trial takes no trial model set-up", file=doc.get("_file"),
                                  subject=doc.get("id"), field=f"static.{key}",
                                  hint="scaling uses the generic model as it is; remove the field")
        return TrialSetup({}, None)
    entry = next((t for t in doc.get("trials") or [] if t.get("name") == trial), None)
    if entry is None:
        raise ConfigError(f"no trial {trial!r}", file=doc.get("_file"), subject=doc.get("id"), field="trials")
    index = (doc.get("trials") or []).index(entry)
    synth = doc.get("synth") if isinstance(doc.get("synth"), Mapping) else {}
    synth_spec = ((synth.get("trials") or {}).get(trial) or {}) if synth else {}
    sources = []

    def pick(key: str):
        if key in entry:
            sources.append(f"trials.{index}.{key}")
            return entry[key]
        if key in synth_spec:
            sources.append(f"synth.trials.{trial}.{key}")
            return synth_spec[key]
        return None

    locked_raw = pick("locked_coordinates_deg") or {}
    muscles_raw = pick("muscles")
    field = " + ".join(sources)
    if not isinstance(locked_raw, Mapping):
        raise ConfigError("expected a mapping coordinate -> value (deg)", file=doc.get("_file"),
                          subject=doc.get("id"), trial=trial, field=field)
    try:
        locked = {str(k): float(v) for k, v in locked_raw.items()}
    except (TypeError, ValueError):
        raise ConfigError("locked coordinate values must be numbers (deg; m for a translation)",
                          file=doc.get("_file"), subject=doc.get("id"), trial=trial, field=field) from None
    muscles = None
    if muscles_raw is not None:
        if not isinstance(muscles_raw, Sequence) or isinstance(muscles_raw, str) or not muscles_raw:
            raise ConfigError("expected a non-empty list of muscle names", file=doc.get("_file"),
                              subject=doc.get("id"), trial=trial, field=field)
        muscles = tuple(str(m) for m in muscles_raw)
    return TrialSetup(locked, muscles, field)


# --------------------------------------------------------------------------------------------------
# command-line text

def format_lock(locked_deg: Mapping[str, float]) -> str:
    """{'hip_flexion_r': 60.0} -> 'hip_flexion_r=60.0' (the ``--lock`` text; '' when empty)."""
    return ",".join(f"{k}={float(v)!r}" for k, v in locked_deg.items())


def parse_lock(text: str | None, field: str = "--lock") -> dict[str, float]:
    """'COORD=VALUE,...' -> {coord: value}; ConfigError naming ``field`` for a malformed item."""
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"expected COORDINATE=VALUE (deg; m for a translation), got {item.strip()!r}",
                              field=field) from None
    return out


def format_muscles(muscles: Sequence[str] | None) -> str:
    """('a', 'b') -> 'a,b' (the ``--keep-muscles`` text; '' for None)."""
    return ",".join(muscles) if muscles else ""


def parse_muscles(text: str | None) -> tuple[str, ...] | None:
    """'a,b' -> ('a', 'b'); None or '' -> None (keep every muscle)."""
    names = tuple(m.strip() for m in (text or "").split(",") if m.strip())
    return names or None


# --------------------------------------------------------------------------------------------------
# the model

def write_trial_model(model: str | Path, out_path: str | Path, *, locked_deg: Mapping[str, float],
                      muscles: Sequence[str] | None, subject: str | None = None, trial: str | None = None,
                      lock_field: str = "--lock", muscles_field: str = "--keep-muscles") -> Path:
    """Write ``model`` with the ``locked_deg`` coordinates locked at those values (deg; m for a translational
    coordinate) and only ``muscles`` kept (None: all; every other force is kept) to ``out_path``.

    Raises ConfigError naming the model file and ``lock_field`` / ``muscles_field`` for an unknown
    coordinate or muscle.
    """
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    try:
        m = osim.Model(str(model))
    except RuntimeError as exc:
        raise ConfigError(f"OpenSim cannot load the model: {str(exc).splitlines()[0]}", file=str(model),
                          subject=subject, trial=trial) from None
    names = [m.getMuscles().get(i).getName() for i in range(m.getMuscles().getSize())]
    if muscles is not None:
        unknown = sorted(set(muscles) - set(names))
        if unknown:
            raise ConfigError(f"muscles {unknown} are not in the model", subject=subject, trial=trial,
                              file=str(model), field=muscles_field, hint=f"muscles: {', '.join(names)}")
        forces = m.updForceSet()
        for name in names:
            if name not in muscles:
                forces.remove(forces.getIndex(name))
    coords = m.updCoordinateSet()
    for name, value in locked_deg.items():
        if not coords.contains(name):
            known = [coords.get(i).getName() for i in range(coords.getSize())]
            raise ConfigError(f"coordinate {name!r} is not in the model", subject=subject, trial=trial,
                              file=str(model), field=lock_field, hint=f"coordinates: {', '.join(known)}")
        c = coords.get(name)
        translational = c.getMotionType() == osim.Coordinate.Translational
        c.setDefaultValue(float(value) if translational else math.radians(float(value)))
        c.setDefaultLocked(True)
    if trial:
        m.setName(f"{m.getName()}_{trial}")
    m.finalizeConnections()
    m.initSystem()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    m.printToXML(str(out_path))
    return out_path
