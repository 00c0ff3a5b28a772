"""Run the OpenSim stage on a synthetic (demo) subject through the ``pimsk`` verbs, in the workflow's layout.

``synth -> c3d -> scale -> ik -> id -> so [-> cmc]`` for one subject file, each step one call of the same
``pimsk`` verb the Snakemake rules run (``pimsk.cli.main``; every OpenSim tool runs in its own child
process). Results go to ``<results>/<subject>/...`` exactly as the workflow writes them
(``synth/``, ``scale/``, ``<trial>/<step>/``), so :func:`pimsk.validate.truth.validate_results` reads
either.

What a synthetic subject needs beyond a lab subject, and how it is given here:

- **Model mass.** The demo models hold only some segments (one leg, forearm + hand), so ScaleTool's mass
  is the truth's ``model_mass_kg`` (the generic model's mass x body mass / generic body mass), not the
  subject's body mass (``truth.json``: ``model_mass_note``).
- **Trial set-up.** ``synth.trials.<trial>.locked_coordinates_deg`` (seat, brace) and ``.muscles`` (the
  determinate pair) describe the experiment (a ``trials[]`` entry's own fields take precedence:
  :func:`pimsk.osim.trial_model.trial_setup`): IK and ID get ``--lock``, SO and CMC ``--lock`` and
  ``--keep-muscles``, exactly as the workflow's rules pass them; each verb writes the trial's model
  (``<trial>/<step>/model_trial.osim``) beside its results.
- **EMG channels.** Only channels whose muscle the trial's model keeps are in its C3D file.
- **Analysis window.** IK runs on the whole recording; ID, SO and CMC on the trial's analysis window
  (``truth.json``: ``analysis_window_s``, the subject file's ``time_range_s``, cut as a quick run cuts it), so
  the low-pass filters' and splines' end effects fall in the padding recorded around it.

Processing settings come from the subject file where the workflow reads them (``inverse_dynamics``,
``so``, ``cmc``: ``lowpass_hz`` ...; ``so``: ``method``, ``tendon``, ``activation_exponent``); the keyword
defaults below apply where it gives none.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pimsk.errors import ConfigError, OpenSimToolError, PimskError
from pimsk.osim.trial_model import format_lock, format_muscles, trial_setup
from pimsk.validate.truth import TRUTH_JSON, load_truth

STEPS = ("synth", "c3d", "scale", "ik", "id", "so", "cmc")


@dataclass
class ProcessReport:
    """What :func:`process_subject` ran: seconds per step and trial (``"<step>"`` or ``"<step>/<trial>"``)."""

    subject: str
    results_dir: Path
    wall_s: dict[str, float] = field(default_factory=dict)
    trials: list[str] = field(default_factory=list)


def _pimsk(args: Sequence[object], what: str, subject: str, trial: str | None = None) -> None:
    """Run one ``pimsk`` verb in this process (its OpenSim tool runs in a child); fail with its message."""
    import contextlib
    import io

    from pimsk.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main([str(a) for a in args])
    if rc != 0:
        text = " | ".join(ln for ln in out.getvalue().splitlines() if ln.strip())[-1500:]
        raise OpenSimToolError(f"`pimsk {what}` failed (exit {rc}): {text}", subject=subject, trial=trial)


def _section(doc: dict, name: str) -> dict:
    return dict(doc.get(name) or {})


def _lowpass(doc: dict, section: str, default: float | None) -> float | None:
    value = _section(doc, section).get("lowpass_hz", default)
    return None if value is None else float(value)


def _emg_map(doc: dict, truth_trial: dict | None) -> str:
    """``--emg-map`` for a trial: the subject's channels whose muscle the trial's C3D holds ('none' if none)."""
    channels = (doc.get("emg") or {}).get("channels") or {}
    present = set((truth_trial or {}).get("emg_channels") or {})
    pairs = [f"{label}={muscle}" for label, muscle in channels.items() if label in present]
    return ",".join(pairs) if pairs else "none"


def _model_markers(model: Path) -> list[str]:
    from pimsk.osim.model_info import read_model_info

    return list(read_model_info(model).markers)


def process_subject(
    subject_file: str | Path,
    results_root: str | Path,
    *,
    steps: Iterable[str] = ("synth", "c3d", "scale", "ik", "id", "so"),
    trials: Sequence[str] | None = None,
    seed: int | None = None,
    max_duration_s: float | None = None,
    id_lowpass_hz: float | None = 6.0,
    so_lowpass_hz: float | None = 6.0,
    cmc_lowpass_hz: float | None = 6.0,
    cmc_time_range: tuple[float, float] | None = None,
    cmc_trials: Sequence[str] | None = None,
    force_synth: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ProcessReport:
    """Make (``synth``) and process one synthetic subject under ``results_root/<subject id>/``.

    steps: any of :data:`STEPS` in that order (``synth`` is skipped when ``synth/truth/truth.json`` exists, was
    made from this very subject file (``config_sha256``), no seed/duration is asked and not ``force_synth``:
    after a change to the synth code, force it); trials: dynamic trials to process (default all the truth has);
    ``*_lowpass_hz``: used where the subject file's ``inverse_dynamics`` / ``so`` / ``cmc`` sections give no
    ``lowpass_hz`` (the ``cmc`` verb's own default is no filter, which leaves marker noise in CMC's
    accelerations); cmc_time_range (s): CMC window (default the trial's analysis window, else the whole
    trial); cmc_trials: trials CMC runs on (default ``trials``).
    """
    import time

    from pimsk.config import load_subject

    asked = set(steps)
    if asked - set(STEPS):
        raise ConfigError(f"unknown steps {sorted(asked - set(STEPS))}", field="steps", hint=", ".join(STEPS))
    steps = [s for s in STEPS if s in asked]
    doc = load_subject(subject_file)
    subject = str(doc["id"])
    if "synth" not in doc:
        raise ConfigError("not a synthetic subject (no 'synth' section)", subject=subject, file=str(subject_file),
                          field="synth")
    root = Path(results_root) / subject
    synth_dir = root / "synth"
    report = ProcessReport(subject, root)
    say = progress or (lambda _msg: None)

    def timed(key: str, fn: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        fn()
        report.wall_s[key] = time.perf_counter() - t0
        say(f"{subject}: {key} {report.wall_s[key]:.1f} s")

    truth_file = root / TRUTH_JSON
    if "synth" in steps and (force_synth or seed is not None or max_duration_s is not None
                             or not _synth_is_current(truth_file, subject_file)):
        if synth_dir.exists():
            shutil.rmtree(synth_dir)
        args = ["synth", "--config", subject_file, "--out", synth_dir]
        args += ["--seed", seed] if seed is not None else []
        args += ["--max-duration", max_duration_s] if max_duration_s is not None else []
        timed("synth", lambda: _pimsk(args, "synth", subject))
    truth = load_truth(truth_file)
    static = (doc.get("static") or {}).get("name")
    dynamic = [t["name"] for t in doc.get("trials", []) if t["name"] in truth["trials"]]
    if trials is not None:
        unknown = sorted(set(trials) - set(dynamic))
        if unknown:
            raise ConfigError(f"trials {unknown} were not synthesised", subject=subject, field="trials",
                              hint=f"available: {', '.join(dynamic)}")
        dynamic = [t for t in dynamic if t in trials]
    report.trials = dynamic
    spec_of = {t["name"]: t for t in doc.get("trials", []) + ([doc["static"]] if doc.get("static") else [])}

    def c3d_dir(trial: str) -> Path:
        return root / trial / "c3d"

    if "c3d" in steps:
        for trial in ([static] if static else []) + dynamic:
            tt = truth["trials"].get(trial)
            emg = "none" if trial == static else _emg_map(doc, tt)
            args = ["c3d", synth_dir / spec_of[trial]["file"], "--out-dir", c3d_dir(trial), "--subject", subject,
                    "--trial", trial, "--rotation", _rotation(doc), "--emg-map", emg, "--plate-feet", "auto"]
            timed(f"c3d/{trial}", lambda a=args, t=trial: _pimsk(a, "c3d", subject, t))

    scale_dir = root / "scale"
    scaled = scale_dir / "model_scaled.osim"
    labels_model = scale_dir / ("model_scaled_degroote.osim" if doc.get("muscle_model", "degroote") == "degroote"
                                else "model_scaled.osim")
    if "scale" in steps:
        if not static:
            raise ConfigError("no static trial to scale with", subject=subject, file=str(subject_file), field="static")
        generic = synth_dir / truth["generic_model"]
        sc = _section(doc, "scaling")
        if not sc.get("measurements"):
            raise ConfigError("no scaling measurements", subject=subject, file=str(subject_file),
                              field="scaling.measurements")
        markers = sc.get("marker_weights") or {m: 1.0 for m in _model_markers(generic)}
        scale_dir.mkdir(parents=True, exist_ok=True)
        settings = scale_dir / "settings.json"
        settings.write_text(json.dumps({"measurements": sc["measurements"], "markers": markers}, indent=1) + "\n")
        trc = c3d_dir(static) / "markers.trc"
        t0, t1 = _trc_time_range(trc)
        args = ["scale", "--model", generic, "--trc", trc, "--mass-kg", repr(float(truth["model_mass_kg"])),
                "--height-m", repr(float(doc["height_m"])), "--measurements", settings, "--tasks", settings,
                "--time-range", t0, t1, "--max-marker-rms-m", sc.get("max_marker_rms_m", 0.02),
                "--max-marker-error-m", sc.get("max_marker_error_m", 0.04), "--out", scale_dir,
                "--subject", subject, "--trial", static]
        if doc.get("muscle_model", "degroote") == "degroote":
            args.append("--degroote")
        timed("scale", lambda: _pimsk(args, "scale", subject, static))

    for trial in dynamic:
        folder = root / trial
        # the trial's model (pimsk.osim.trial_model): each verb writes it beside its results, as in the workflow
        setup = trial_setup(doc, trial)
        lock = ["--lock", format_lock(setup.locked_deg)] if setup.locked_deg else []
        keep = ["--keep-muscles", format_muscles(setup.muscles)] if setup.muscles is not None else []
        model, ik_model, id_model = labels_model, scaled, scaled
        coords = folder / "ik" / "coordinates.mot"
        common = ["--subject", subject, "--trial", trial]
        window = truth["trials"][trial].get("analysis_window_s")
        window_args = ["--time-range", *window] if window else []
        if "ik" in steps:
            timed(f"ik/{trial}", lambda: _pimsk(["ik", "--model", ik_model, "--trc", c3d_dir(trial) / "markers.trc",
                                                 "--out", folder / "ik", *common, *lock], "ik", subject, trial))
        if "id" in steps:
            args = ["id", "--model", id_model, "--coordinates", coords, "--out", folder / "id", *common, *lock,
                    *window_args, "--lowpass-hz", _arg_hz(_lowpass(doc, "inverse_dynamics", id_lowpass_hz))]
            timed(f"id/{trial}", lambda: _pimsk(args, "id", subject, trial))
        if "so" in steps:
            args = ["so", "--model", model, "--coordinates", coords, "--out", folder / "so", *common, *lock, *keep,
                    *window_args, "--lowpass-hz", _arg_hz(_lowpass(doc, "so", so_lowpass_hz))]
            for key in ("activation_exponent", "method", "tendon"):
                if key in _section(doc, "so"):
                    args += [f"--{key.replace('_', '-')}", _section(doc, "so")[key]]
            timed(f"so/{trial}", lambda: _pimsk(args, "so", subject, trial))
        if "cmc" in steps and (cmc_trials is None or trial in cmc_trials):
            args = ["cmc", "--model", model, "--kinematics", coords, "--out", folder / "cmc", *common, *lock, *keep,
                    "--lowpass-hz", _arg_hz(_lowpass(doc, "cmc", cmc_lowpass_hz))]
            if cmc_time_range is not None:
                args += ["--time-range", *cmc_time_range]
            else:
                args += window_args
            if "cmc_window_s" in _section(doc, "cmc"):
                args += ["--cmc-window-s", _section(doc, "cmc")["cmc_window_s"]]
            timed(f"cmc/{trial}", lambda: _pimsk(args, "cmc", subject, trial))
    return report


def _synth_is_current(truth_file: Path, subject_file: str | Path) -> bool:
    """True when ``truth_file`` exists and records the sha256 of ``subject_file`` as it is now."""
    import hashlib

    try:
        recorded = json.loads(truth_file.read_text()).get("config_sha256")
    except (OSError, ValueError):
        return False
    return recorded == hashlib.sha256(Path(subject_file).read_bytes()).hexdigest()


def _arg_hz(value: float | None) -> float:
    return -1.0 if value is None else float(value)  # the verbs read <= 0 as "no filter"


def _rotation(doc: dict) -> str:
    rot = doc.get("lab_to_opensim", "identity")
    if isinstance(rot, str):
        return rot
    raise ConfigError("a matrix lab_to_opensim is not supported here; give axes like 'x,z,-y'", subject=doc.get("id"),
                      file=doc.get("_file"), field="lab_to_opensim")


def _trc_time_range(trc: Path) -> tuple[float, float]:
    from pimsk.io.trc import read_trc

    t = read_trc(trc).time_s
    if t.size == 0:
        raise PimskError("no frames", file=str(trc))
    return float(t[0]), float(t[-1])
