"""C3D -> OpenSim inputs: markers ``.trc``, ``grf.mot`` + ``external_loads.xml``, ``emg_raw.sto``, ``events.json``.

What is written (SI, OpenSim axes; ``p_osim = R @ p_lab`` with R from :mod:`pimsk.core.axes`):

* ``markers.trc``: marker trajectories in metres at the point rate; unlabelled markers (``*12``) dropped,
  optional keep-list and renaming; interior gaps of at most ``max_gap_frames`` frames filled by cubic spline
  (:mod:`pimsk.core.gapfill`), longer gaps left NaN and reported. Missing required markers raise one
  :class:`~pimsk.errors.C3DError` naming them, the file, subject and trial.
* ``grf.mot``: one ground reaction wrench per foot, columns ``ground_force_{r,l}_v{x,y,z}`` (N),
  ``ground_force_{r,l}_p{x,y,z}`` (COP, m) and ``ground_torque_{r,l}_{x,y,z}`` (free moment at the COP, N·m,
  along the vertical), as in the opensim-models Rajagopal ``grf_walk.mot``; at the analog rate (default) or
  the point rate. Outside the stance segments assigned to a foot its force, COP and torque are 0.
* ``external_loads.xml``: ExternalLoads with one ExternalForce per foot (applied to ``calcn_r``/``calcn_l``,
  force and point expressed in ground) reading ``grf.mot``.
* ``emg_raw.sto``: the chosen analog channels, named by muscle, at the analog rate, in the file's analog units.
* ``events.json``: the C3D's EVENT entries (label, context, side, time).
* ``conversion.json``: what was done (rotation, plate signs, plate -> foot segments, gaps, warnings).

Times are C3D capture times: ``t = (first_frame - 1 + i) / point_rate`` for markers and
``t0 + j / analog_rate`` for analog samples, so they share their origin with EVENT:TIMES.

Force-plate convention, learnt from OpenSim's own conversion of opensim-core's walking2/walking5.c3d (the
``std_walking*_grfs.sto`` / ``std_cop_walking*_grfs.sto`` files that testC3DFileAdapter.cpp compares
``C3DFileAdapter`` with, SqrtEps tolerance): OpenSim (through ezc3d) expresses each plate's channels in the LAB
frame with the plate-to-lab rotation from CORNERS, without changing their sign, at the analog rate, in the file's
units (N, mm, N·mm), times from 0. With ``ForceLocation::OriginOfForcePlate`` the point is the mean of the corners
(the surface centre) and the moment is taken about it, an ORIGIN with z > 0 (old AMTI sign) meaning the transducer
lies |z| below the surface; with ``CenterOfPressure`` the point is the COP on the surface and the moment is the
free moment (x, y exactly 0, z the free moment along the plate normal); no threshold is applied (a COP is computed
from noise where the plate is unloaded). :mod:`pimsk.core.forceplate` reproduces both to round-off (see
tests/integration/test_c3d_convert.py). On top of it this module
(a) converts to SI and OpenSim axes;
(b) makes each plate's force the reaction on the subject: a plate whose largest stance force points into the plate
    stores the action and is negated (the opensim-core, MOtoNMS UNIPD and UWA plates already store the reaction);
(c) with ``force_threshold_n`` > 0, counts a plate as loaded only where its vertical reaction pushes up by more
    than the threshold for at least ``min_stance_s``, and gives the foot no load (force, COP, torque 0) elsewhere;
    ``force_threshold_n`` = 0 disables this and reproduces OpenSim's numbers at every sample.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pimsk.convert.feet import (SIDES, OsimPlate, Segment, assign_segments, foot_marker_names, foot_wrenches,
                                stance_segments)
from pimsk.core.axes import apply_rotation, rotation_from_spec
from pimsk.core.forceplate import N_CHANNELS, PLATE_TYPES, PlateWrench, plate_wrench, reaction_sign
from pimsk.core.gapfill import Gap, fill_gaps, find_gaps
from pimsk.errors import C3DError, ConfigError
from pimsk.io.c3d_data import C3DData
from pimsk.io.containers import Markers, Table
from pimsk.io.grf_columns import grf_labels

log = logging.getLogger(__name__)

GRF_FILE = "grf.mot"
TRC_FILE = "markers.trc"
LOADS_FILE = "external_loads.xml"
EMG_FILE = "emg_raw.sto"
EVENTS_FILE = "events.json"
REPORT_FILE = "conversion.json"

_UNLABELLED = re.compile(r"^\*\d+$")
_LENGTH_M = {"m": 1.0, "mm": 1e-3, "cm": 1e-2, "in": 0.0254}
_MOMENT_NM = {"nm": 1.0, "nmm": 1e-3, "ncm": 1e-2, "knm": 1e3}


@dataclass
class C3DConvertOptions:
    """How to convert one trial.

    rotation: lab -> OpenSim (preset, axis spec "x,z,-y" or 3x3 matrix);
    keep_markers: names (after renaming) to keep, in that order, None = all labelled;
    rename_markers: old -> new; drop_markers: names (after renaming) not to write;
    required_markers: names that must be present with data;
    plate_feet: "auto" or {plate number (1-based): "r" | "l" | "none"};
    foot_markers: per-side marker names used by "auto" (default: found by name);
    max_foot_distance_m: farthest a COP may be from the chosen foot;
    min_stance_s: loaded runs shorter than this (s) are noise, not a contact;
    emg_map: analog label (or 1-based channel number) -> muscle name; None = every channel not used by a plate,
    named by its label; {} = no EMG;
    grf_rate: "analog" or "point"; max_gap_frames: longest marker gap filled (frames);
    force_threshold_n: vertical force (N) at or below which a plate is unloaded (0: no threshold, as OpenSim);
    plate_force_sign: "auto" (make it the reaction on the subject), "as_stored" or "flip";
    foot_bodies: side -> body the ExternalForce is applied to.
    """

    rotation: str | Sequence[Sequence[float]] = "identity"
    keep_markers: list[str] | None = None
    rename_markers: dict[str, str] = field(default_factory=dict)
    drop_markers: list[str] = field(default_factory=list)
    required_markers: list[str] = field(default_factory=list)
    plate_feet: str | dict[int, str] = "auto"
    foot_markers: dict[str, list[str]] | None = None
    max_foot_distance_m: float = 0.3
    min_stance_s: float = 0.05
    emg_map: dict[str, str] | None = None
    grf_rate: str = "analog"
    max_gap_frames: int = 10
    force_threshold_n: float = 20.0
    plate_force_sign: str = "auto"
    foot_bodies: dict[str, str] = field(default_factory=lambda: {"r": "calcn_r", "l": "calcn_l"})
    subject: str | None = None
    trial: str | None = None


@dataclass
class C3DConversion:
    """In-memory result of a conversion (SI, OpenSim axes unless said).

    markers: gap-filled, metres; grf: per-foot table or None (no plates); emg: table or None; events: dicts;
    plates_lab: each plate's wrench in the LAB frame as the channels say (no sign change, threshold applied);
    plate_signs: factor making each plate the reaction; segments: stance segments with their foot; gaps: every
    marker gap; rotation: (3, 3) lab -> OpenSim; warnings: what was noticed; files: written paths by kind.
    """

    source: Path
    markers: Markers
    grf: Table | None
    emg: Table | None
    events: list[dict]
    plates_lab: list[PlateWrench]
    plate_signs: list[float]
    segments: list[Segment]
    gaps: list[Gap]
    rotation: np.ndarray
    analog_time_s: np.ndarray
    first_frame: int = 1
    warnings: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


class _Context:
    """Subject/trial/file of the conversion, for errors and warnings."""

    def __init__(self, data: C3DData, options: C3DConvertOptions) -> None:
        self.where = {"subject": options.subject, "trial": options.trial, "file": str(data.path)}
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s: %s", self.where["file"], message)

    def error(self, message: str, field: str | None = None, hint: str | None = None) -> C3DError:  # noqa: A002
        return C3DError(message, field=field, hint=hint, **self.where)


# ------------------------------------------------------------------------------------------------ markers
def _unit_key(unit: str) -> str:
    return re.sub(r"[\s.*·_-]", "", unit or "").lower()


def length_scale_m(unit: str) -> float | None:
    """Metres per unit for 'mm', 'cm', 'm', 'in' (None if unknown)."""
    return _LENGTH_M.get(_unit_key(unit))


def select_markers(data: C3DData, options: C3DConvertOptions, ctx: _Context) -> tuple[list[int], list[str]]:
    """Column indices and output names of the markers to write; raises C3DError for missing required ones."""
    labels = list(data.markers.labels)
    cols = [i for i, name in enumerate(labels) if not _UNLABELLED.match(name.strip())]
    dropped = len(labels) - len(cols)
    if dropped:
        log.info("dropping %d unlabelled markers", dropped)
    names = [options.rename_markers.get(labels[i], labels[i]) for i in cols]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"marker names not unique after renaming: {', '.join(dup)}", field="rename_markers",
                          **ctx.where)
    if options.drop_markers:
        drop = set(options.drop_markers)
        kept = [(c, n) for c, n in zip(cols, names) if n not in drop]
        cols, names = [c for c, _ in kept], [n for _, n in kept]
    if options.keep_markers is not None:
        by_name = dict(zip(names, cols))
        absent = [n for n in options.keep_markers if n not in by_name and n not in options.required_markers]
        if absent:
            ctx.warn(f"markers to keep not in the file: {', '.join(absent)}")
        keep = [n for n in options.keep_markers if n in by_name]
        cols, names = [by_name[n] for n in keep], keep
    xyz = data.markers.xyz
    missing = [n for n in options.required_markers if n not in names]
    empty = [n for n in options.required_markers
             if n in names and not np.isfinite(xyz[:, cols[names.index(n)], :]).all(axis=1).any()]
    if missing or empty:
        parts = []
        if missing:
            parts.append(f"required marker{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in the file")
        if empty:
            parts.append(f"required marker{'s' if len(empty) > 1 else ''} {', '.join(empty)} never visible")
        raise ctx.error("; ".join(parts), field="markers:" + ",".join(missing + empty),
                        hint="relabel the trial in the capture software or map a name with --rename-markers OLD=NEW")
    return cols, names


def convert_markers(data: C3DData, options: C3DConvertOptions, rot: np.ndarray,
                    ctx: _Context) -> tuple[Markers, list[Gap]]:
    """Selected markers in metres, OpenSim axes, short gaps filled."""
    cols, names = select_markers(data, options, ctx)
    scale = length_scale_m(data.markers.units)
    if scale is None:
        raise ctx.error(f"unknown point unit {data.markers.units!r}", field="POINT:UNITS",
                        hint="expected mm, cm or m")
    xyz = apply_rotation(rot, data.markers.xyz[:, cols, :] * scale)
    time_s = np.asarray(data.markers.time_s, dtype=float)
    filled, gaps = fill_gaps(xyz, time_s, names, options.max_gap_frames)
    n_filled = sum(g.filled for g in gaps)
    if n_filled:
        log.info("filled %d marker gaps of at most %d frames", n_filled, options.max_gap_frames)
    left: dict[str, int] = {}
    for g in gaps:
        if not g.filled:
            left[g.marker] = left.get(g.marker, 0) + g.n_frames
            log.debug("marker %s missing %.3f-%.3f s (%d frames, %s), left NaN", g.marker, g.start_s, g.end_s,
                      g.n_frames, g.kind)
    if left:
        listed = ", ".join(f"{m} ({k} frames)" for m, k in list(left.items())[:8]) + (" ..." if len(left) > 8 else "")
        ctx.warn(f"{len(left)} markers have gaps longer than {options.max_gap_frames} frames or at the trial's ends, "
                 f"left NaN (see {REPORT_FILE}): {listed}")
    meta = {"source": str(data.path)}
    return Markers(time_s, filled, names, data.markers.rate_hz, "m", meta), gaps


# ----------------------------------------------------------------------------------------------- plates
def _plate_channel_scale(plate_type: int, units: list[str], point_scale_m: float) -> np.ndarray:
    """Per-channel factor to SI: forces N; lengths and moments from ANALOG:UNITS when recognisable, else in
    POINT units (N·POINT units for moments), the convention of the C3D User Guide."""
    moment_default = point_scale_m
    if plate_type == 3:
        return np.ones(8)
    if plate_type == 4:  # analog units describe the raw signals; calibrated output is N and N·POINT units
        return np.array([1.0, 1.0, 1.0, moment_default, moment_default, moment_default])
    scale = np.ones(6)
    kinds = ["f", "f", "f", "l", "l", "m"] if plate_type == 1 else ["f", "f", "f", "m", "m", "m"]
    for i, kind in enumerate(kinds):
        key = _unit_key(units[i]) if i < len(units) else ""
        if kind == "f":
            scale[i] = 1e3 if key == "kn" else 1.0
        elif kind == "l":
            scale[i] = _LENGTH_M.get(key, point_scale_m)
        else:
            scale[i] = _MOMENT_NM.get(key, moment_default)
    return scale


def plate_wrenches(data: C3DData, threshold_n: float, ctx: _Context) -> list[PlateWrench]:
    """Each plate's wrench in the lab frame, SI (see :mod:`pimsk.core.forceplate`)."""
    point_scale = length_scale_m(data.markers.units)
    if point_scale is None:
        raise ctx.error(f"unknown point unit {data.markers.units!r}", field="POINT:UNITS")
    out = []
    for k, plate in enumerate(data.plates, start=1):
        if plate.plate_type not in PLATE_TYPES:
            raise ctx.error(f"force plate {k} has TYPE {plate.plate_type}; types 1-4 are supported",
                            field="FORCE_PLATFORM:TYPE")
        n_ch = N_CHANNELS[plate.plate_type]
        chans = list(plate.channels)[:n_ch]
        if len(chans) < n_ch:
            raise ctx.error(f"force plate {k} (type {plate.plate_type}) has {len(chans)} channels, needs {n_ch}",
                            field="FORCE_PLATFORM:CHANNEL")
        corners = np.asarray(plate.corners_lab, dtype=float)
        if not np.all(np.isfinite(corners)):
            raise ctx.error(f"force plate {k} has no CORNERS", field="FORCE_PLATFORM:CORNERS")
        if plate.plate_type == 4 and plate.cal_matrix is None:
            raise ctx.error(f"force plate {k} is type 4 but CAL_MATRIX is missing", field="FORCE_PLATFORM:CAL_MATRIX")
        scale = _plate_channel_scale(plate.plate_type, [data.analog_units[c] for c in chans], point_scale)
        try:
            w = plate_wrench(plate.plate_type, data.analog[:, chans], corners * point_scale,
                             np.asarray(plate.origin, dtype=float) * point_scale, cal_matrix=plate.cal_matrix,
                             channel_scale=scale, threshold_n=threshold_n)
        except ValueError as exc:
            raise ctx.error(f"force plate {k}: {exc}", field="FORCE_PLATFORM") from None
        out.append(w)
    return out


def _stance_mask(loaded: np.ndarray, min_samples: float) -> np.ndarray:
    """Samples inside loaded runs of at least ``min_samples`` samples."""
    mask = np.zeros(loaded.shape[0], dtype=bool)
    for start, end in find_gaps(loaded):
        if end - start + 1 >= min_samples:
            mask[start:end + 1] = True
    return mask


def _plate_signs(wrenches: list[PlateWrench], mode: str, threshold_n: float, min_samples: float,
                 ctx: _Context) -> list[float]:
    """Factor making each plate's force the reaction on the subject, judged on its stance samples."""
    if mode == "as_stored":
        return [1.0] * len(wrenches)
    if mode == "flip":
        return [-1.0] * len(wrenches)
    if mode != "auto":
        raise ConfigError(f"plate_force_sign {mode!r} is not auto, as_stored or flip", field="plate_force_sign",
                          **ctx.where)
    signs = []
    for k, w in enumerate(wrenches, start=1):
        s = reaction_sign(w, threshold_n, _stance_mask(w.loaded, min_samples))
        if s < 0:
            ctx.warn(f"force plate {k} stores the force on the plate; negated to the reaction on the subject")
        signs.append(s)
    return signs


def _osim_plates(wrenches: list[PlateWrench], signs: list[float], rot: np.ndarray, threshold_n: float,
                 ctx: _Context) -> dict[int, OsimPlate]:
    """Plates in OpenSim axes as reactions on the subject; loaded = vertical reaction above the threshold
    (threshold 0: every sample with a non-zero normal force, of either sign, as OpenSim's C3DFileAdapter)."""
    plates = {}
    for k, (w, s) in enumerate(zip(wrenches, signs), start=1):
        normal = rot @ w.normal
        if abs(normal[1]) < 0.9:
            ctx.warn(f"force plate {k} is not horizontal in OpenSim axes (normal {np.round(normal, 3).tolist()}): "
                     "check the lab -> OpenSim rotation")
        loaded = w.loaded.copy()
        if threshold_n > 0:  # a foot cannot pull: the reaction must point out of the plate
            loaded &= (w.force_n @ w.normal) * s < 0
        plates[k] = OsimPlate(k, apply_rotation(rot, w.force_n * s), apply_rotation(rot, w.cop_m),
                              apply_rotation(rot, w.free_moment_vec_nm * s), loaded, normal)
    return plates


def _assign(plates: dict[int, OsimPlate], analog_time: np.ndarray, rate_hz: float, markers: Markers,
            options: C3DConvertOptions, ctx: _Context) -> list[Segment]:
    """Stance segments (runs of at least ``min_stance_s``) with their foot."""
    segments = []
    for seg in (seg for p in plates.values() for seg in stance_segments(p, analog_time)):
        if seg.end - seg.start + 1 >= options.min_stance_s * rate_hz:
            segments.append(seg)
    if isinstance(options.plate_feet, str):
        if options.plate_feet != "auto":
            raise ConfigError(f"plate_feet {options.plate_feet!r}: give 'auto' or plate=side pairs",
                              field="plate_feet", **ctx.where)
        feet = options.foot_markers or foot_marker_names(markers.labels)
        if segments and not any(feet.get(s) for s in SIDES):
            raise ctx.error("cannot assign force plates to feet: no heel/toe markers found",
                            field="plate_feet",
                            hint="give the assignment, e.g. --plate-feet 1=r,2=l, or --foot-markers")
        log.info("foot markers: right %s, left %s", feet.get("r", []), feet.get("l", []))
        assign_segments(segments, plates, analog_time, markers.time_s, markers.xyz, markers.labels, feet,
                        options.max_foot_distance_m)
    else:
        table = {int(k): str(v).lower() for k, v in options.plate_feet.items()}
        unknown = [k for k in table if k not in plates]
        if unknown:
            raise ctx.error(f"plate_feet names plate(s) {unknown} but the file has {len(plates)}",
                            field="plate_feet")
        bad = {k: v for k, v in table.items() if v not in ("r", "l", "none")}
        if bad:
            raise ConfigError(f"plate_feet sides must be r, l or none, got {bad}", field="plate_feet", **ctx.where)
        for seg in segments:
            side = table.get(seg.plate, "none")
            seg.side, seg.how = (None if side == "none" else side), ("given" if side != "none" else "plate_feet: none")
    orphans: dict[int, list[Segment]] = {}
    for seg in segments:
        if seg.side is None:
            orphans.setdefault(seg.plate, []).append(seg)
        else:
            log.info("plate %d, %.3f-%.3f s -> %s (%s)", seg.plate, seg.start_s, seg.end_s, seg.side, seg.how)
    for plate, segs in orphans.items():
        first = segs[0]
        more = f" and {len(segs) - 1} more loaded spans" if len(segs) > 1 else ""
        ctx.warn(f"force plate {plate} loaded {first.start_s:.3f}-{first.end_s:.3f} s{more} but assigned to no foot "
                 f"({first.how or 'not in plate_feet'}; see {REPORT_FILE})")
    return segments


def _resample(table_time: np.ndarray, data: np.ndarray, new_time: np.ndarray) -> np.ndarray:
    return np.column_stack([np.interp(new_time, table_time, data[:, k]) for k in range(data.shape[1])])


# ---------------------------------------------------------------------------------------------------- EMG
def _emg(data: C3DData, options: C3DConvertOptions, analog_time: np.ndarray, ctx: _Context) -> Table | None:
    labels = list(data.analog_labels)
    plate_channels = {c for p in data.plates for c in p.channels}
    if options.emg_map is None:
        chosen = [(i, labels[i]) for i in range(len(labels)) if i not in plate_channels]
    else:
        lookup = {lab.strip().lower(): i for i, lab in enumerate(labels)}
        chosen = []
        for key, muscle in options.emg_map.items():
            key_s = str(key).strip()
            if key_s in labels:
                idx = labels.index(key_s)
            elif key_s.lower() in lookup:
                idx = lookup[key_s.lower()]
            elif key_s.isdigit() and 1 <= int(key_s) <= len(labels):
                idx = int(key_s) - 1
            else:
                raise ctx.error(f"EMG channel {key_s!r} not among the analog channels ({', '.join(labels)})",
                                field="ANALOG:LABELS", hint="use an analog label or a 1-based channel number")
            chosen.append((idx, str(muscle).strip()))
    if not chosen:
        log.info("no EMG channels")
        return None
    names = [re.sub(r"[\s,]+", "_", m.strip()) for _, m in chosen]  # STO column labels: no blanks or commas
    renamed = [f"{m!r} -> {n}" for (_, m), n in zip(chosen, names) if m != n]
    if renamed and options.emg_map:
        log.info("EMG column names without blanks: %s", ", ".join(renamed))
    if len(set(names)) != len(names) or not all(names):
        raise ConfigError(f"EMG muscle names must be unique and non-empty: {names}", field="emg_map", **ctx.where)
    cols = [i for i, _ in chosen]
    units = sorted({data.analog_units[i] for i in cols if data.analog_units[i]})
    log.info("EMG: %d channels at %g Hz", len(cols), data.analog_rate_hz)
    return Table(analog_time, data.analog[:, cols], names, name="emg_raw",
                 meta={"DataRate": f"{data.analog_rate_hz:.10g}", "units": ",".join(units) or "unknown",
                       "channels": ",".join(labels[i] for i in cols)})


def _events(data: C3DData, markers: Markers) -> list[dict]:
    out = []
    for e in data.events:
        context = (e.context or "").strip()
        side = "r" if context.lower().startswith("r") else "l" if context.lower().startswith("l") else None
        frame = None
        if markers.n_frames:
            i = int(np.argmin(np.abs(markers.time_s - e.time_s)))
            if abs(markers.time_s[i] - e.time_s) <= 1.0 / markers.rate_hz:
                frame = i
        out.append({"label": e.label, "context": context, "side": side, "time_s": float(e.time_s), "frame": frame})
    return out


# ---------------------------------------------------------------------------------------------- top level
def convert_c3d_data(data: C3DData, options: C3DConvertOptions | None = None) -> C3DConversion:
    """Convert what :func:`pimsk.io.c3d_read.read_c3d` returned (nothing is written)."""
    options = options or C3DConvertOptions()
    ctx = _Context(data, options)
    for w in data.warnings:
        ctx.warn(f"reader: {w}")
    try:
        rot = rotation_from_spec(options.rotation)
    except ValueError as exc:
        raise ConfigError(str(exc), field="rotation", **ctx.where) from None
    if options.grf_rate not in ("analog", "point"):
        raise ConfigError(f"grf_rate {options.grf_rate!r} is not 'analog' or 'point'", field="grf_rate", **ctx.where)
    if options.max_gap_frames < 0 or options.force_threshold_n < 0:
        raise ConfigError("max_gap_frames and force_threshold_n must be >= 0", field="options", **ctx.where)

    markers, gaps = convert_markers(data, options, rot, ctx)
    n_analog = data.analog.shape[0]
    t0 = float(data.markers.time_s[0]) if data.markers.n_frames else (data.first_frame - 1) / max(data.point_rate_hz, 1)
    analog_time = t0 + np.arange(n_analog) / data.analog_rate_hz if data.analog_rate_hz > 0 else np.zeros(n_analog)

    wrenches: list[PlateWrench] = []
    signs: list[float] = []
    segments: list[Segment] = []
    grf = None
    if data.plates and n_analog:
        wrenches = plate_wrenches(data, options.force_threshold_n, ctx)
        signs = _plate_signs(wrenches, options.plate_force_sign, options.force_threshold_n,
                             options.min_stance_s * data.analog_rate_hz, ctx)
        plates = _osim_plates(wrenches, signs, rot, options.force_threshold_n, ctx)
        segments = _assign(plates, analog_time, data.analog_rate_hz, markers, options, ctx)
        feet = foot_wrenches(plates, segments, n_analog)
        values = np.hstack([feet[s] for s in SIDES])
        labels = grf_labels("r") + grf_labels("l")
        time = analog_time
        rate = data.analog_rate_hz
        if options.grf_rate == "point":
            values, time, rate = _resample(analog_time, values, markers.time_s), markers.time_s, data.point_rate_hz
        grf = Table(time, values, labels, name="grf", meta={"DataRate": f"{rate:.10g}", "source": str(data.path)})
    else:
        ctx.warn("no force plates: no grf.mot / external_loads.xml")
    emg = _emg(data, options, analog_time, ctx)
    return C3DConversion(Path(data.path), markers, grf, emg, _events(data, markers), wrenches, signs, segments,
                         gaps, rot, analog_time, data.first_frame, ctx.warnings)


def write_conversion(conv: C3DConversion, out_dir: str | Path,
                     options: C3DConvertOptions | None = None) -> dict[str, Path]:
    """Write the files of a conversion into ``out_dir`` (created); returns their paths by kind."""
    from pimsk.io.external_loads import ExternalForceSpec, write_external_loads
    from pimsk.io.storage import write_storage
    from pimsk.io.trc import write_trc

    options = options or C3DConvertOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["markers"] = write_trc(out / TRC_FILE, conv.markers, first_frame=conv.first_frame)
    if conv.grf is not None:
        files["grf"] = write_storage(out / GRF_FILE, conv.grf, extra_header={"DataRate": conv.grf.meta["DataRate"]})
        loads = [ExternalForceSpec.for_side(s, options.foot_bodies[s]) for s in SIDES]
        files["external_loads"] = write_external_loads(out / LOADS_FILE, GRF_FILE, loads, name="external_loads")
    if conv.emg is not None:
        files["emg"] = write_storage(out / EMG_FILE, conv.emg, extra_header={"DataRate": conv.emg.meta["DataRate"]})
    files["events"] = out / EVENTS_FILE
    files["events"].write_text(json.dumps({"source": str(conv.source), "subject": options.subject,
                                           "trial": options.trial, "events": conv.events}, indent=1))
    files["report"] = out / REPORT_FILE
    report = {
        "source": str(conv.source), "subject": options.subject, "trial": options.trial,
        "rotation_lab_to_opensim": conv.rotation.tolist(),
        "plate_signs": conv.plate_signs,
        "segments": [asdict(s) for s in conv.segments],
        "unfilled_gaps": [asdict(g) for g in conv.gaps if not g.filled],
        "filled_gaps": sum(g.filled for g in conv.gaps),
        "warnings": conv.warnings,
        "files": {k: p.name for k, p in files.items()},
    }
    files["report"].write_text(json.dumps(report, indent=1))
    conv.files = files
    return files


def convert_c3d(path: str | Path, out_dir: str | Path, options: C3DConvertOptions | None = None, *,
                timeout_s: float = 60.0) -> C3DConversion:
    """Read ``path`` (isolated reader), convert and write into ``out_dir``."""
    from pimsk.io.c3d_read import read_c3d

    options = options or C3DConvertOptions()
    log.info("reading %s", path)
    data = read_c3d(path, subject=options.subject, trial=options.trial, timeout_s=timeout_s)
    conv = convert_c3d_data(data, options)
    write_conversion(conv, out_dir, options)
    log.info("wrote %s", ", ".join(str(p) for p in conv.files.values()))
    return conv
