"""Compare a processed synthetic subject with its known truth: scaling, IK, ID, SO and CMC errors.

Results are read in the workflow's layout (``results/<subject>/...``)::

    synth/truth/truth.json              pimsk synth (truth files beside it; see pimsk.synth.generate)
    scale/scale_set.xml                 pimsk scale
    <trial>/ik/coordinates.mot          pimsk ik (deg)
    <trial>/id/moments.sto              pimsk id (N m)
    <trial>/so/*_StaticOptimization_force.sto, <trial>/cmc/*_Actuation_force.sto   (N)

Metrics (limits from issue [F3], "done when"):

- scale factor, per body: max over the axes of ``|s_est / s_true - 1|`` (%); limit 2 %.
- coordinate, per free coordinate: RMSE (deg); limit 1 deg.
- net joint moment, per free coordinate: RMSE (N m) as % of the truth's range; limit 2 %. The truth net
  moment is the truth's ``moments.sto`` (sum over muscles of moment arm x tendon force): muscles are the
  only forces on the free coordinates of the demo models and no external load acts, so it equals the
  inverse-dynamics generalized force of the true motion (tests/integration/test_demo_truth.py checks this
  with OpenSim's InverseDynamicsSolver on the true states).
- muscle force, per muscle and method (SO, CMC): RMSE (N) of the tendon force as % of the truth's peak
  (also given as % of its range); limit 10 % for a *determinate* trial (at most two muscles, one
  agonist-antagonist pair, per free coordinate), none for a *redundant* one: there the gap is measured
  and reported, not asserted.

Errors are taken over each trial's analysis window (``truth.json``: ``analysis_window_s``, the subject file's
``time_range_s``), which leaves out the rest recorded before and after the motion: the low-pass filter
(reflection padding + IIR) and spline differentiation that ID, SO and CMC apply to the coordinates distort
accelerations near the ends of a record, and the padding is there for them. A trial without a window is
compared over the whole overlap of estimate and truth. Every row also gives the error over the whole overlap
(``error_whole``; IK runs on the whole recording, so its rows include the padding), so nothing is hidden.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from pimsk.errors import ConfigError, FileFormatError
from pimsk.io.containers import Table

#: limits of issue [F3]
SCALE_LIMIT_PCT = 2.0
COORDINATE_LIMIT_DEG = 1.0
MOMENT_LIMIT_PCT_RANGE = 2.0
FORCE_LIMIT_PCT_PEAK = 10.0

TRUTH_JSON = Path("synth") / "truth" / "truth.json"
SCALE_SET = Path("scale") / "scale_set.xml"
FORCE_FILES = {"so": "so/*_StaticOptimization_force.sto", "cmc": "cmc/*_Actuation_force.sto"}


@dataclass
class Row:
    """One compared quantity.

    quantity: "scale_factor" | "coordinate" | "net_moment" | "muscle_force"; step: the pimsk step whose
    result is compared (scale, ik, id, so, cmc); item: body, coordinate or muscle; config: "determinate"
    or "redundant" for a dynamic trial; error: the number checked against ``limit`` (in ``error_unit``),
    over the window ``t0_s``..``t1_s``; error_whole: the same over the whole overlap of estimate and truth;
    rmse: absolute RMSE (``rmse_unit``); truth_norm: the truth's range (moments) or peak (forces);
    pct_range: force RMSE as % of the truth's range; passed: None where no limit applies.
    """

    subject: str
    trial: str
    step: str
    quantity: str
    item: str
    config: str
    error: float
    error_unit: str
    limit: float | None
    passed: bool | None
    error_whole: float | None = None
    rmse: float | None = None
    rmse_unit: str = ""
    truth_norm: float | None = None
    pct_range: float | None = None
    t0_s: float | None = None
    t1_s: float | None = None
    n_frames: int | None = None


@dataclass
class Validation:
    """All rows of one subject plus the result files that were looked for and not found."""

    subject: str
    rows: list[Row]
    missing: list[str]

    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.passed is False]


# --------------------------------------------------------------------------------------------------
# reading

def load_truth(path: str | Path) -> dict:
    """truth.json of ``pimsk synth`` with ``_dir`` (its synth output folder) added."""
    path = Path(path)
    try:
        truth = json.loads(path.read_text())
    except OSError as exc:
        raise FileFormatError(f"cannot read the truth file: {exc.strerror}", file=str(path),
                              hint="run `pimsk synth` (or the workflow's synth rule) first") from None
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"not JSON: {exc}", file=str(path)) from None
    for key in ("subject", "scale_factors", "trials"):
        if key not in truth:
            raise FileFormatError(f"no '{key}' entry: not a pimsk synth truth file", file=str(path), field=key)
    truth["_dir"] = str(path.parent.parent)  # truth.json lives in <synth out>/truth/
    return truth


def _read(path: Path) -> Table:
    import warnings

    from pimsk.io.storage import read_storage

    with warnings.catch_warnings():  # repeated CMC times are handled here (see _unique_times)
        warnings.filterwarnings("ignore", message=".*time is not strictly increasing.*")
        return read_storage(path)


def read_scale_set(path: str | Path) -> dict[str, tuple[float, float, float]]:
    """Per-body (sx, sy, sz) of a ScaleSet file (``scale_set.xml`` of the ScaleTool)."""
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise FileFormatError(f"cannot read the scale set: {exc}", file=str(path)) from None
    out = {}
    for s in root.iter("Scale"):
        seg = (s.findtext("segment") or "").strip()
        vals = (s.findtext("scales") or "").split()
        if seg and len(vals) == 3:
            out[seg] = tuple(float(v) for v in vals)
    if not out:
        raise FileFormatError("no <Scale> entries", file=str(path), field="ScaleSet")
    return out  # type: ignore[return-value]


def trial_config(trial_truth: dict) -> str:
    """``"determinate"`` when the trial's model has at most one agonist-antagonist pair per free coordinate
    (<= 2 muscles per free coordinate), else ``"redundant"``."""
    n_free = max(1, len(trial_truth.get("free_coordinates") or []))
    return "determinate" if len(trial_truth.get("muscles") or []) <= 2 * n_free else "redundant"


# --------------------------------------------------------------------------------------------------
# comparisons (pure numpy)

def _degrees(table: Table, label: str) -> np.ndarray:
    values = table.column(label)
    translational = label.endswith(("_tx", "_ty", "_tz"))
    return values if (table.in_degrees or translational) else np.degrees(values)


def _on_truth_times(t_truth: np.ndarray, t_est: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of truth samples inside the estimate's span, estimate interpolated there)."""
    inside = (t_truth >= t_est[0] - 1e-9) & (t_truth <= t_est[-1] + 1e-9)
    return inside, np.interp(t_truth[inside], t_est, est)


def _unique_times(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, strictly increasing times (CMC repeats a time where it restarts a window: the last row wins)."""
    order = np.argsort(t, kind="stable")
    t, values = t[order], values[order]
    keep = np.append(np.diff(t) > 0, True)
    return t[keep], values[keep]


def _window(t: np.ndarray, window_s: Sequence[float] | None) -> np.ndarray:
    if window_s is None:
        return np.ones_like(t, dtype=bool)
    return (t >= float(window_s[0]) - 1e-9) & (t <= float(window_s[1]) + 1e-9)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Root mean square of ``a - b`` (NaN for empty input)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(np.sqrt(np.mean(d ** 2))) if d.size else math.nan


@dataclass
class SeriesError:
    """Errors of one estimated series against the truth, over the window and over the whole overlap."""

    rmse: float
    rmse_whole: float
    truth_peak: float
    truth_range: float
    t0_s: float
    t1_s: float
    n_frames: int


def series_error(t_truth: np.ndarray, truth: np.ndarray, t_est: np.ndarray, est: np.ndarray,
                 window_s: Sequence[float] | None = None) -> SeriesError:
    """Compare ``est`` (its own times) with ``truth`` on the truth's samples: the analysis window is the
    overlap of the two inside ``window_s`` (t0, t1 in s; None: the whole overlap)."""
    t_est, est = _unique_times(np.asarray(t_est, dtype=float), np.asarray(est, dtype=float))
    inside, est_i = _on_truth_times(t_truth, t_est, est)
    if inside.sum() < 2:
        raise FileFormatError("the estimate does not overlap the truth in time")
    t, y = t_truth[inside], truth[inside]
    w = _window(t_truth, window_s)[inside]
    if w.sum() < 2:
        raise FileFormatError(f"the estimate has fewer than two samples inside the analysis window {window_s}")
    return SeriesError(rmse=rmse(est_i[w], y[w]), rmse_whole=rmse(est_i, y), truth_peak=float(np.max(np.abs(y[w]))),
                       truth_range=float(np.ptp(y[w])), t0_s=float(t[w][0]), t1_s=float(t[w][-1]),
                       n_frames=int(w.sum()))


def _pct(value: float, norm: float) -> float:
    return 100.0 * value / norm if norm > 0 else math.inf


# --------------------------------------------------------------------------------------------------
# per step

def scale_rows(truth: dict, scale_set: str | Path, subject: str) -> list[Row]:
    """Scale factor error per body the truth scales."""
    est = read_scale_set(scale_set)
    rows = []
    for body, s_true in truth["scale_factors"].items():
        if body not in est:
            raise FileFormatError(f"no scale factors for body {body!r}", file=str(scale_set), field=body)
        err = max(abs(e / t - 1.0) for e, t in zip(est[body], s_true)) * 100.0
        rows.append(Row(subject, "static", "scale", "scale_factor", body, "-", err, "%", SCALE_LIMIT_PCT,
                        err < SCALE_LIMIT_PCT, rmse=float(np.mean(est[body])), rmse_unit="factor",
                        truth_norm=float(np.mean(s_true))))
    return rows


def coordinate_rows(subject: str, trial: str, config: str, truth_q: Table, ik_q: Table, free: Sequence[str],
                    window_s: Sequence[float] | None = None) -> list[Row]:
    rows = []
    for c in free:
        e = series_error(truth_q.time_s, _degrees(truth_q, c), ik_q.time_s, _degrees(ik_q, c), window_s)
        rows.append(Row(subject, trial, "ik", "coordinate", c, config, e.rmse, "deg", COORDINATE_LIMIT_DEG,
                        e.rmse < COORDINATE_LIMIT_DEG, error_whole=e.rmse_whole, rmse=e.rmse, rmse_unit="deg",
                        t0_s=e.t0_s, t1_s=e.t1_s, n_frames=e.n_frames))
    return rows


def moment_rows(subject: str, trial: str, config: str, truth_m: Table, id_m: Table, free: Sequence[str],
                window_s: Sequence[float] | None = None) -> list[Row]:
    rows = []
    for c in free:
        label = f"{c}_moment"
        e = series_error(truth_m.time_s, truth_m.column(label), id_m.time_s, id_m.column(label), window_s)
        pct = _pct(e.rmse, e.truth_range)
        rows.append(Row(subject, trial, "id", "net_moment", c, config, pct, "% of range", MOMENT_LIMIT_PCT_RANGE,
                        pct < MOMENT_LIMIT_PCT_RANGE, error_whole=_pct(e.rmse_whole, e.truth_range), rmse=e.rmse,
                        rmse_unit="N m", truth_norm=e.truth_range, t0_s=e.t0_s, t1_s=e.t1_s, n_frames=e.n_frames))
    return rows


def force_rows(subject: str, trial: str, config: str, step: str, truth_f: Table, est_f: Table,
               muscles: Sequence[str], window_s: Sequence[float] | None = None) -> list[Row]:
    """Tendon force errors of one method (``step`` so or cmc); limit only for a determinate trial."""
    limit = FORCE_LIMIT_PCT_PEAK if config == "determinate" else None
    rows = []
    for m in muscles:
        if m not in est_f.labels:
            raise FileFormatError(f"no column for muscle {m!r}", file=est_f.name, field=m)
        e = series_error(truth_f.time_s, truth_f.column(m), est_f.time_s, est_f.column(m), window_s)
        pct = _pct(e.rmse, e.truth_peak)
        rows.append(Row(subject, trial, step, "muscle_force", m, config, pct, "% of peak", limit,
                        None if limit is None else pct < limit, error_whole=_pct(e.rmse_whole, e.truth_peak),
                        rmse=e.rmse, rmse_unit="N", truth_norm=e.truth_peak, pct_range=_pct(e.rmse, e.truth_range),
                        t0_s=e.t0_s, t1_s=e.t1_s, n_frames=e.n_frames))
    return rows


# --------------------------------------------------------------------------------------------------
# a whole subject

def _one(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern))
    return found[0] if found else None


def validate_results(results_dir: str | Path, truth_json: str | Path | None = None, *,
                     trials: Iterable[str] | None = None,
                     steps: Iterable[str] = ("scale", "ik", "id", "so", "cmc")) -> Validation:
    """Compare every result found under ``results_dir`` (one subject) with the truth.

    truth_json: default ``results_dir/synth/truth/truth.json``; trials: default every dynamic trial of the
    truth; steps: which results to compare. Errors over each trial's ``analysis_window_s`` (module doc).
    Result files that are absent are listed in ``missing``.
    """
    results = Path(results_dir)
    truth = load_truth(truth_json or results / TRUTH_JSON)
    synth = Path(truth["_dir"])
    subject = str(truth["subject"])
    steps = set(steps)
    unknown = steps - {"scale", "ik", "id", "so", "cmc"}
    if unknown:
        raise ConfigError(f"unknown steps {sorted(unknown)}", field="steps", hint="scale, ik, id, so, cmc")
    rows: list[Row] = []
    missing: list[str] = []
    if "scale" in steps:
        path = results / SCALE_SET
        if path.is_file():
            rows += scale_rows(truth, path, subject)
        else:
            missing.append(str(path))
    dynamic = [t for t, spec in truth["trials"].items() if spec.get("kind") == "dynamic"]
    if trials is not None:
        wanted = list(trials)
        unknown = sorted(set(wanted) - set(dynamic))
        if unknown:
            raise ConfigError(f"no dynamic trials {unknown} in the truth", subject=subject, field="trials",
                              hint=f"trials: {', '.join(dynamic)}")
        dynamic = wanted  # in the order asked for
    for trial in dynamic:
        spec = truth["trials"][trial]
        config = trial_config(spec)
        free = list(spec["free_coordinates"])
        window = spec.get("analysis_window_s")
        folder = results / trial
        files = {k: synth / v for k, v in spec["files"].items()}
        if "ik" in steps:
            path = folder / "ik" / "coordinates.mot"
            if path.is_file():
                rows += coordinate_rows(subject, trial, config, _read(files["coordinates"]), _read(path), free,
                                        window)
            else:
                missing.append(str(path))
        if "id" in steps:
            path = folder / "id" / "moments.sto"
            if path.is_file():
                rows += moment_rows(subject, trial, config, _read(files["moments"]), _read(path), free, window)
            else:
                missing.append(str(path))
        for step in ("so", "cmc"):
            if step not in steps:
                continue
            path = _one(folder, FORCE_FILES[step])
            if path is None:
                missing.append(str(folder / FORCE_FILES[step]))
                continue
            est = _read(path)
            est.name = str(path)
            rows += force_rows(subject, trial, config, step, _read(files["forces"]), est, spec["muscles"], window)
    return Validation(subject, rows, missing)


def subject_trial_order(subject_file: str | Path, truth: dict) -> list[str]:
    """The subject file's dynamic trials that the truth holds, in the subject file's order."""
    from pimsk.config import load_subject

    doc = load_subject(subject_file)
    if str(doc["id"]) != str(truth["subject"]):
        raise ConfigError(f"the truth is of subject {truth['subject']!r}, the subject file of {doc['id']!r}",
                          file=str(subject_file), field="id")
    return [t["name"] for t in doc.get("trials", []) if truth["trials"].get(t["name"], {}).get("kind") == "dynamic"]


# --------------------------------------------------------------------------------------------------
# output

CSV_FIELDS = [f.name for f in fields(Row)]


def write_csv(rows: Sequence[Row], path: str | Path) -> Path:
    """All rows as CSV (one line per compared quantity; floats with 6 significant digits)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v))
                        for k, v in asdict(r).items()})
    return path


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def format_rows(rows: Sequence[Row], markdown: bool = False) -> str:
    """One line per row: subject, trial, step, item, config, error (window and whole trial), limit, verdict."""
    head = ["subject", "trial", "step", "item", "config", "error", "whole trial", "unit", "RMSE", "limit", "ok"]
    lines = []
    for r in rows:
        ok = "-" if r.passed is None else ("yes" if r.passed else "NO")
        rm = "-" if r.rmse is None else f"{r.rmse:.3g} {r.rmse_unit}"
        lines.append([r.subject, r.trial, r.step, r.item, r.config, _fmt(r.error), _fmt(r.error_whole), r.error_unit,
                      rm, _fmt(r.limit, 0) if r.limit is not None else "-", ok])
    return _table(head, lines, markdown)


def _table(head: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)] if lines else [len(h) for h in head]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*ln) for ln in lines])


def summary_rows(rows: Sequence[Row]) -> list[dict]:
    """Per subject x trial: scale (max %), coordinates (max deg), moments (max % of range), SO and CMC force
    errors (mean and max % of peak over the muscles), and whether every limited row passed."""
    out: list[dict] = []
    keys: list[tuple[str, str]] = []
    for r in rows:
        if (r.subject, r.trial) not in keys:
            keys.append((r.subject, r.trial))
    for subject, trial in keys:
        sel = [r for r in rows if r.subject == subject and r.trial == trial]
        entry: dict = {"subject": subject, "trial": trial,
                       "config": next((r.config for r in sel if r.config != "-"), "-"),
                       "muscles": len({r.item for r in sel if r.quantity == "muscle_force"})}
        for key, step in (("scale_max_pct", "scale"), ("coordinate_max_deg", "ik"), ("moment_max_pct_range", "id")):
            vals = [r.error for r in sel if r.step == step]
            entry[key] = max(vals) if vals else None
        whole = [r.error_whole for r in sel if r.step == "id" and r.error_whole is not None]
        entry["moment_whole_trial_max_pct_range"] = max(whole) if whole else None
        for step in ("so", "cmc"):
            vals = [r.error for r in sel if r.step == step]
            entry[f"{step}_force_mean_pct_peak"] = float(np.mean(vals)) if vals else None
            entry[f"{step}_force_max_pct_peak"] = max(vals) if vals else None
        limited = [r for r in sel if r.passed is not None]
        entry["limits_met"] = all(r.passed for r in limited) if limited else None
        out.append(entry)
    return out


def format_summary(rows: Sequence[Row], markdown: bool = False) -> str:
    """The validation table of the README: one line per subject x trial (see :func:`summary_rows`)."""
    head = ["subject", "trial", "config", "scale err % (max)", "coord RMSE deg (max)",
            "moment RMSE % range (max)", "SO force RMSE % peak (mean / max)", "CMC force RMSE % peak (mean / max)",
            "limits met"]
    lines = []
    for e in summary_rows(rows):
        cfg = f"{e['config']}, {e['muscles']} muscles" if e["muscles"] else e["config"]
        pair = {s: ("-" if e[f"{s}_force_mean_pct_peak"] is None else
                    f"{e[f'{s}_force_mean_pct_peak']:.1f} / {e[f'{s}_force_max_pct_peak']:.1f}") for s in ("so", "cmc")}
        met = "-" if e["limits_met"] is None else ("yes" if e["limits_met"] else "no")
        lines.append([e["subject"], e["trial"], cfg, _fmt(e["scale_max_pct"]), _fmt(e["coordinate_max_deg"]),
                      _fmt(e["moment_max_pct_range"]), pair["so"], pair["cmc"], met])
    return _table(head, lines, markdown)
