"""Scale a generic model to a subject: measurement-based scaling, marker placement, error table.

OpenSim's ScaleTool: each measurement's scale factor is the mean ratio of measured to model distances
of its marker pairs over ``time_range`` (s) of the static trial; manual scale factors (per body, x y z)
are applied after the measurements (``scaling_order``); masses are scaled to ``mass_kg`` keeping the
generic distribution. Marker placement then solves IK on the static pose (averaged over
``placement_time_range``) and moves the model markers onto the measured ones.

Afterwards the placed model's marker errors on the static trial (``error_time_range``) are computed
marker by marker (:mod:`pimsk.osim.marker_errors`) and written as ``marker_errors.tsv``; the step fails
when the total RMS or any marker's max error exceeds the thresholds (m). With
``replace_muscles_degroote`` the placed model's muscles become ``DeGrooteFregly2016Muscle``.

Outputs in ``out_dir``: ``model_scaled_only.osim``, ``scale_set.xml``, ``model_scaled.osim`` (placed),
``static_pose.mot``, ``marker_errors.tsv``/``.sto``, optionally ``model_scaled_degroote.osim``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pimsk.errors import ConfigError
from pimsk.osim import setup_xml as sx
from pimsk.osim import degroote as _degroote
from pimsk.osim.ik_tasks import IKTasks, ik_task_set_element
from pimsk.osim.marker_errors import MarkerErrors, compute_marker_errors
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, run_setup

SCALED_ONLY = "model_scaled_only.osim"
SCALED = "model_scaled.osim"
SCALE_SET = "scale_set.xml"
STATIC_POSE = "static_pose.mot"
DEGROOTE = "model_scaled_degroote.osim"


@dataclass
class Measurement:
    """One scale factor: mean distance ratio of ``marker_pairs``, applied to ``bodies`` (body -> axes,
    e.g. ``"X Y Z"``)."""

    name: str
    marker_pairs: list[tuple[str, str]]
    bodies: dict[str, str]
    apply: bool = True


@dataclass
class ScaleResult:
    """Outputs of :func:`run_scale`. ``model`` is the final model (placed, DeGroote if asked)."""

    run: ToolRun
    model: Path
    model_scaled_only: Path
    scale_set: Path
    static_pose: Path
    marker_errors: MarkerErrors
    marker_table: Path
    extra: dict[str, Path] = field(default_factory=dict)


def read_measurements(setup: str | Path) -> list[Measurement]:
    """The MeasurementSet of a Scale setup (to reuse a published setup's measurements)."""
    tree = sx.parse(setup)
    out = []
    for m in tree.getroot().iter("Measurement"):
        pairs = [tuple(p.text.split()) for p in m.iter("markers") if p.text and len(p.text.split()) == 2]
        bodies = {b.get("name", "").strip(): " ".join((b.findtext("axes") or "X Y Z").split())
                  for b in m.iter("BodyScale")}
        out.append(Measurement(name=m.get("name", ""), marker_pairs=[(a, b) for a, b in pairs], bodies=bodies,
                               apply=(m.findtext("apply") or "true").strip().lower() != "false"))
    return out


def read_manual_scales(setup: str | Path) -> dict[str, tuple[float, float, float]]:
    """The ScaleSet (manual scale factors) of a Scale setup: body -> (sx, sy, sz)."""
    tree = sx.parse(setup)
    out = {}
    for s in tree.getroot().iter("Scale"):
        if (s.findtext("apply") or "true").strip().lower() == "false":
            continue
        seg = (s.findtext("segment") or "").strip()
        vals = tuple(float(v) for v in (s.findtext("scales") or "").split())
        if seg and len(vals) == 3:
            out[seg] = vals  # type: ignore[assignment]
    return out


def load_measurements(path: str | Path) -> list[Measurement]:
    """Measurements from a Scale setup XML, or JSON/YAML ``{"measurements": [{name, marker_pairs,
    bodies}]}`` (or a bare list)."""
    import yaml

    path = Path(path)
    if path.suffix.lower() == ".xml":
        return read_measurements(path)
    try:
        data = yaml.safe_load(path.read_text())
        items = data["measurements"] if isinstance(data, dict) else data
        return [Measurement(name=str(m["name"]), marker_pairs=[(str(a), str(b)) for a, b in m["marker_pairs"]],
                            bodies={str(k): str(v) for k, v in m["bodies"].items()}, apply=bool(m.get("apply", True)))
                for m in items]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad measurements: {exc!r}", file=str(path), field="measurements") from None


def load_manual_scales(path: str | Path) -> dict[str, tuple[float, float, float]]:
    """Manual scale factors from a Scale setup XML (ScaleSet) or JSON/YAML ``{body: [sx, sy, sz]}``."""
    import yaml

    path = Path(path)
    if path.suffix.lower() == ".xml":
        return read_manual_scales(path)
    try:
        data = yaml.safe_load(path.read_text())
        data = data.get("manual_scales", data)
        return {str(k): tuple(float(x) for x in v) for k, v in data.items()}  # type: ignore[misc]
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad manual scales: {exc!r}", file=str(path), field="manual_scales") from None


def build_scale_setup(
    *,
    generic_model: str | Path,
    static_trc: str | Path,
    out_dir: str | Path,
    mass_kg: float,
    measurements: Sequence[Measurement],
    tasks: IKTasks,
    time_range: tuple[float, float],
    placement_time_range: tuple[float, float] | None = None,
    manual_scales: Mapping[str, Sequence[float]] | None = None,
    marker_set_file: str | Path | None = None,
    height_m: float | None = None,
    preserve_mass_distribution: bool = True,
    max_marker_movement_m: float | None = None,
    coordinate_file: str | Path | None = None,
    name: str = "scale",
    step: str = "scale",
) -> Path:
    """Write ``out_dir/setup_<step>.xml`` for OpenSim's ScaleTool; return its path."""
    if mass_kg is None or not mass_kg > 0:
        raise ConfigError(f"mass must be > 0 kg, got {mass_kg}", field="mass_kg")
    if not measurements and not manual_scales:
        raise ConfigError("no measurements and no manual scale factors: nothing to scale", field="measurements")
    out_dir = Path(out_dir).resolve()
    tree, tool = sx.document("ScaleTool", name)
    sx.sub(tool, "mass", float(mass_kg))
    sx.sub(tool, "height", float(height_m * 1000.0) if height_m else -1.0)  # mm, informative only
    sx.sub(tool, "age", -1.0)
    sx.sub(tool, "notes", "written by pimsk")
    gmm = sx.sub(tool, "GenericModelMaker")
    sx.sub(gmm, "model_file", Path(generic_model))
    sx.sub(gmm, "marker_set_file", Path(marker_set_file) if marker_set_file else "Unassigned")
    ms = sx.sub(tool, "ModelScaler")
    sx.sub(ms, "apply", True)
    order = (["measurements"] if measurements else []) + (["manualScale"] if manual_scales else [])
    sx.sub(ms, "scaling_order", order)
    mset = sx.sub(ms, "MeasurementSet")
    objs = sx.sub(mset, "objects")
    for m in measurements:
        me = sx.sub(objs, "Measurement", name=m.name)
        sx.sub(me, "apply", bool(m.apply))
        mps = sx.sub(me, "MarkerPairSet")
        mpo = sx.sub(mps, "objects")
        for a, b in m.marker_pairs:
            sx.sub(sx.sub(mpo, "MarkerPair"), "markers", [a, b])
        sx.sub(mps, "groups")
        bss = sx.sub(me, "BodyScaleSet")
        bso = sx.sub(bss, "objects")
        for body, axes in m.bodies.items():
            sx.sub(sx.sub(bso, "BodyScale", name=body), "axes", axes)
        sx.sub(bss, "groups")
    sx.sub(mset, "groups")
    sset = sx.sub(ms, "ScaleSet")
    sobj = sx.sub(sset, "objects")
    for body, factors in (manual_scales or {}).items():
        s = sx.sub(sobj, "Scale")
        sx.sub(s, "scales", [float(f) for f in factors])
        sx.sub(s, "segment", body)
        sx.sub(s, "apply", True)
    sx.sub(sset, "groups")
    sx.sub(ms, "marker_file", Path(static_trc))
    sx.sub(ms, "time_range", list(time_range))
    sx.sub(ms, "preserve_mass_distribution", bool(preserve_mass_distribution))
    sx.sub(ms, "output_model_file", SCALED_ONLY)
    sx.sub(ms, "output_scale_file", SCALE_SET)
    mp = sx.sub(tool, "MarkerPlacer")
    sx.sub(mp, "apply", True)
    mp.append(ik_task_set_element(tasks))
    sx.sub(mp, "marker_file", Path(static_trc))
    sx.sub(mp, "coordinate_file", Path(coordinate_file) if coordinate_file else "")
    sx.sub(mp, "time_range", list(placement_time_range or time_range))
    sx.sub(mp, "output_motion_file", STATIC_POSE)
    sx.sub(mp, "output_model_file", SCALED)
    sx.sub(mp, "output_marker_file", "Unassigned")
    sx.sub(mp, "max_marker_movement", float(max_marker_movement_m) if max_marker_movement_m else -1.0)
    return sx.write(tree, out_dir / f"setup_{step}.xml")


def run_scale(
    *,
    generic_model: str | Path,
    static_trc: str | Path,
    out_dir: str | Path,
    mass_kg: float,
    measurements: Sequence[Measurement],
    tasks: IKTasks,
    time_range: tuple[float, float],
    placement_time_range: tuple[float, float] | None = None,
    error_time_range: tuple[float, float] | None = None,
    manual_scales: Mapping[str, Sequence[float]] | None = None,
    marker_set_file: str | Path | None = None,
    height_m: float | None = None,
    preserve_mass_distribution: bool = True,
    max_marker_movement_m: float | None = None,
    max_marker_rms_m: float | None = 0.02,
    max_marker_error_m: float | None = 0.04,
    replace_muscles_degroote: bool = False,
    accuracy: float = 1e-5,
    log_file: str | Path | None = None,
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> ScaleResult:
    """Scale, place markers, tabulate marker errors on the static trial; return a :class:`ScaleResult`.

    ``error_time_range`` (s): frames of the static trial for the error table (default ``time_range``).
    Thresholds (m): ``max_marker_rms_m`` on the RMS over markers and frames, ``max_marker_error_m`` on
    any marker's largest error; None disables a check. The table is written before the check fails.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file).resolve() if log_file else out_dir / "scale.log"
    setup = build_scale_setup(
        generic_model=generic_model, static_trc=static_trc, out_dir=out_dir, mass_kg=mass_kg,
        measurements=measurements, tasks=tasks, time_range=time_range, placement_time_range=placement_time_range,
        manual_scales=manual_scales, marker_set_file=marker_set_file, height_m=height_m,
        preserve_mass_distribution=preserve_mass_distribution, max_marker_movement_m=max_marker_movement_m,
        name=subject or "scale")
    run = run_setup(setup, step="scale", out_dir=out_dir, log_file=log_file,
                    expected=[SCALED_ONLY, SCALE_SET, SCALED, STATIC_POSE], subject=subject, trial=trial,
                    timeout_s=timeout_s)
    errs = compute_marker_errors(model=out_dir / SCALED, trc=static_trc, time_range=error_time_range or time_range,
                                 tasks=tasks, work_dir=out_dir, log_file=log_file, accuracy=accuracy,
                                 constraint_weight=math.inf, step="scale-marker-errors", subject=subject,
                                 trial=trial)
    table = out_dir / "marker_errors.tsv"
    errs.write(table, out_dir / "marker_errors.sto")
    final = out_dir / SCALED
    extra: dict[str, Path] = {}
    if replace_muscles_degroote:
        final = _degroote.replace_muscles_degroote(out_dir / SCALED, out_dir / DEGROOTE, log_file=log_file,
                                                   subject=subject)
        extra["model_degroote"] = final
    result = ScaleResult(run=run, model=final, model_scaled_only=out_dir / SCALED_ONLY, scale_set=out_dir / SCALE_SET,
                         static_pose=out_dir / STATIC_POSE, marker_errors=errs, marker_table=table, extra=extra)
    errs.check(max_marker_rms_m, max_marker_error_m, what="marker errors after scaling and placement",
               subject=subject, trial=trial, file=static_trc)
    return result
