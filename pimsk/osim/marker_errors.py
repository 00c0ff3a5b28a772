"""Per-marker IK errors: how far each model marker is from its measured position, frame by frame.

OpenSim's IK tool only reports per-frame RMS and max over markers; this solves the same IK problem
(``InverseKinematicsSolver`` with the same marker weights, coordinate tasks, accuracy and constraint
weight) in a child process and keeps every marker's distance (m). Used after Scale's marker placement
(static trial) and after IK (dynamic trials).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pimsk.errors import OpenSimToolError
from pimsk.osim.ik_tasks import IKTasks
from pimsk.osim.runner import run_child


@dataclass
class MarkerErrors:
    """time_s: (n_frames,); errors_m: (n_frames, n_markers) distances model-to-measured marker (m)."""

    markers: list[str]
    time_s: np.ndarray
    errors_m: np.ndarray
    weights: dict[str, float]

    @property
    def rms_m(self) -> np.ndarray:
        """(n_markers,) RMS over frames."""
        return np.sqrt(np.mean(self.errors_m ** 2, axis=0))

    @property
    def max_m(self) -> np.ndarray:
        """(n_markers,) max over frames."""
        return np.max(self.errors_m, axis=0)

    @property
    def total_rms_m(self) -> float:
        """RMS over all markers and frames (the number IK logs per frame, pooled over frames)."""
        return float(np.sqrt(np.mean(self.errors_m ** 2)))

    @property
    def total_max_m(self) -> float:
        return float(np.max(self.errors_m))

    def table(self) -> str:
        """Tab-separated table: marker, weight, rms_m, max_m, t_of_max_s; worst first; TOTAL last."""
        order = np.argsort(-self.rms_m)
        rows = ["marker\tweight\trms_m\tmax_m\tt_of_max_s"]
        for i in order:
            k = int(np.argmax(self.errors_m[:, i]))
            rows.append(f"{self.markers[i]}\t{self.weights.get(self.markers[i], 1.0):g}\t{self.rms_m[i]:.5f}"
                        f"\t{self.max_m[i]:.5f}\t{self.time_s[k]:.4f}")
        rows.append(f"TOTAL\t\t{self.total_rms_m:.5f}\t{self.total_max_m:.5f}\t")
        return "\n".join(rows) + "\n"

    def write(self, tsv: str | Path, sto: str | Path) -> None:
        """The summary table (``tsv``) and the per-frame errors as an OpenSim storage (``sto``, m)."""
        Path(tsv).write_text(self.table())
        n, m = self.errors_m.shape
        head = [Path(sto).stem, "version=1", f"nRows={n}", f"nColumns={m + 1}", "inDegrees=no",
                "units=m (distance model marker to measured marker)", "endheader",
                "\t".join(["time"] + self.markers)]
        body = ["\t".join(f"{v:.8f}" for v in [t, *row]) for t, row in zip(self.time_s, self.errors_m)]
        Path(sto).write_text("\n".join(head + body) + "\n")

    def check(self, max_rms_m: float | None, max_error_m: float | None, *, what: str,
              subject: str | None = None, trial: str | None = None, file: str | Path | None = None) -> None:
        """Raise OpenSimToolError when total RMS or any marker's max error is above its threshold."""
        bad = []
        if max_rms_m is not None and self.total_rms_m > max_rms_m:
            bad.append(f"marker RMS {self.total_rms_m * 100:.2f} cm > {max_rms_m * 100:.2f} cm")
        if max_error_m is not None and self.total_max_m > max_error_m:
            worst = [f"{self.markers[i]} {self.max_m[i] * 100:.2f} cm" for i in np.argsort(-self.max_m)
                     if self.max_m[i] > max_error_m]
            bad.append(f"max marker error above {max_error_m * 100:.2f} cm: {', '.join(worst[:6])}")
        if bad:
            raise OpenSimToolError(f"{what}: {'; '.join(bad)}", subject=subject, trial=trial,
                                   file=str(file) if file else None,
                                   hint="check marker names/placement, the marker set and the scaling "
                                        "measurements; thresholds are settings")


def compute_marker_errors(
    *,
    model: str | Path,
    trc: str | Path,
    time_range: tuple[float, float],
    tasks: IKTasks,
    work_dir: str | Path,
    log_file: str | Path,
    accuracy: float = 1e-5,
    constraint_weight: float = math.inf,
    step: str = "marker-errors",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = 1800,
) -> MarkerErrors:
    """Solve IK on ``trc`` over ``time_range`` (s) with ``model`` and return every marker's errors."""
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    spec_path = work_dir / f"{step}_spec.json"
    out_path = work_dir / f"{step}_raw.json"
    if not tasks.used_markers():
        raise OpenSimToolError("no marker has a positive weight", subject=subject, trial=trial, field="ik_tasks")
    spec = {"model": str(Path(model).resolve()), "trc": str(Path(trc).resolve()),
            "time_range": [float(time_range[0]), float(time_range[1])],
            "accuracy": accuracy, "constraint_weight": None if math.isinf(constraint_weight) else constraint_weight,
            "out": str(out_path), **tasks.to_json()}
    spec_path.write_text(json.dumps(spec, indent=1))
    run_child(["marker-errors", str(spec_path)], log_file=log_file, cwd=work_dir, timeout_s=timeout_s, step=step,
              subject=subject, trial=trial, setup=spec_path)
    raw = json.loads(out_path.read_text())
    out_path.unlink()
    spec_path.unlink()
    rows = np.asarray(raw["rows"], dtype=float)
    return MarkerErrors(markers=list(raw["markers"]), time_s=rows[:, 0], errors_m=rows[:, 1:],
                        weights=tasks.used_markers())
