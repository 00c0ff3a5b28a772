# What each step reads from a subject file, turned into explicit `pimsk <verb>` arguments (one section per step).
# Rules pass these as parameters computed from the wildcards alone: Snakemake reruns a job when one of them
# changes (it ignores parameters derived from input or output files), so an edit of the subject file reruns
# exactly the jobs it affects. Every builder is called once per subject x trial at parse time
# (check_arguments), so a bad setting stops the run at once with one line naming the file and the field.
#
# Time: a trial's time_range_s is the analysis window of ID, SO and CMC. IK runs on the same window, or with
# ik.whole_trial: true (the default for a synthetic subject, whose recordings have rest recorded around every
# window for this) on the whole recording: the low-pass filters and splines of ID/SO/CMC then see recorded data
# around the window instead of reflected padding. (A lab trial's edges often hold unreliable frames, the subject
# entering or leaving the capture volume: there the choice is the lab's, per subject.) A trial's
# model set-up (locked coordinates, a muscle subset: pimsk.osim.trial_model.trial_setup) reaches IK and ID as
# --lock and SO and CMC as --lock + --keep-muscles; each verb writes the trial's model beside its results.

from pimsk.osim.trial_model import format_lock, format_muscles, trial_setup

SCALE_SETTINGS = f"{R}/{{subject}}/scale/settings.json"
IK_SETTINGS = f"{R}/{{subject}}/{{trial}}/ik/settings.json"

ID_OPTIONS = {"lowpass_hz": "--lowpass-hz"}
SO_OPTIONS = {"activation_exponent": "--activation-exponent", "lowpass_hz": "--lowpass-hz",
              "actuators": "--actuators", "use_muscle_physiology": None, "method": "--method",
              "tendon": "--tendon"}
# settings whose value is a word, not a path: the words `pimsk so` accepts
WORD_OPTIONS = {("so", "method"): ("opensim", "passive"), ("so", "tendon"): ("rigid", "equilibrium")}
CMC_OPTIONS = {"tasks": "--tasks", "actuators": "--actuators", "no_actuators": "--no-actuators",
               "cmc_window_s": "--cmc-window-s", "lowpass_hz": "--lowpass-hz",
               "integrator_tolerance": "--integrator-tolerance", "slow_target": "--slow-target"}
IK_KEYS = ("marker_weights", "coordinate_weights", "max_marker_rms_m", "max_marker_error_m", "whole_trial")


def _unknown_keys(subject: str, section: str, known) -> None:
    values = SUBJECTS[subject].get(section) or {}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}", subject=subject,
                          file=SUBJECTS[subject]["_file"], field=f"{section}.{unknown[0]}")


def section_args(subject: str, section: str, options: dict[str, str | None]) -> str:
    """`--opt value` for the keys of a subject-file section that are set (options with flag None are the
    caller's): a word setting (WORD_OPTIONS) its word, True the bare flag, a list several paths, a string a
    path (relative to the subject file), a number its value."""
    _unknown_keys(subject, section, options)
    base = Path(SUBJECTS[subject]["_dir"])
    values = SUBJECTS[subject].get(section) or {}
    args = []
    for key, flag in options.items():
        if flag is None or key not in values:
            continue
        v = values[key]
        if (section, key) in WORD_OPTIONS:
            if v not in WORD_OPTIONS[section, key]:
                raise ConfigError(f"{v!r} is not one of {', '.join(WORD_OPTIONS[section, key])}", subject=subject,
                                  file=SUBJECTS[subject]["_file"], field=f"{section}.{key}")
            args.append(f"{flag} {quoted(v)}")
        elif isinstance(v, bool):
            args.append(flag if v else "")
        elif isinstance(v, list):
            args.append(f"{flag} " + " ".join(quoted(resolve_path(str(x), base)) for x in v))
        elif isinstance(v, str):
            args.append(f"{flag} {quoted(resolve_path(v, base))}")
        else:
            args.append(f"{flag} {float(v)!r}")
    return " ".join(a for a in args if a)


def time_range_arg(subject: str, trial: str) -> str:
    """`--time-range T0 T1` from the trial's time_range_s, or '' (the whole trial)."""
    tr = trial_spec(subject, trial).get("time_range_s")
    return f"--time-range {float(tr[0])!r} {float(tr[1])!r}" if tr else ""


def analysis_window_arg(subject: str, trial: str) -> str:
    """`--time-range T0 T1` of a dynamic trial's analysis window (ID, SO, CMC), or '' (the whole trial).

    The window is time_range_s; for a synthetic subject in a quick run (config synth_max_duration_s) it is cut
    as `pimsk synth --max-duration` cuts it (the start kept, the end at most max_duration_s later: the truth's
    analysis_window_s), and tests/workflow checks that the two agree."""
    tr = trial_spec(subject, trial).get("time_range_s")
    if not tr:
        return ""
    t0, t1 = float(tr[0]), float(tr[1])
    if is_synth(subject) and config["synth_max_duration_s"] is not None:
        t1 = min(t1, t0 + float(config["synth_max_duration_s"]))
    return f"--time-range {t0!r} {t1!r}"


def trial_model_args(subject: str, trial: str, muscles: bool) -> str:
    """`--lock COORD=DEG,...` (and with ``muscles`` `--keep-muscles A,B`) of the trial's model set-up, or ''."""
    setup = trial_setup(SUBJECTS[subject], trial)
    args = [f"--lock {quoted(format_lock(setup.locked_deg))}" if setup.locked_deg else ""]
    if muscles and setup.muscles is not None:
        args.append(f"--keep-muscles {quoted(format_muscles(setup.muscles))}")
    return " ".join(a for a in args if a)


# --- synth ---------------------------------------------------------------------------------------------------

def synth_settings(subject: str) -> str:
    """The subject-file fields `pimsk synth` reads, as JSON (a change reruns it; other edits of the file do not)."""
    doc = SUBJECTS[subject]
    keys = ("id", "mass_kg", "height_m", "model", "lab_to_opensim", "synth")
    trials = ([doc["static"]] if doc.get("static") else []) + doc["trials"]
    return json_text({**{k: doc.get(k) for k in keys}, "emg_channels": (doc.get("emg") or {}).get("channels"),
                      "trials": [{"name": t["name"], "file": t["file"], "time_range_s": t.get("time_range_s")}
                                 for t in trials]})


def synth_options() -> str:
    """--seed / --max-duration from the workflow config (quick runs)."""
    opts = []
    if config["synth_seed"] is not None:
        opts.append(f"--seed {int(config['synth_seed'])}")
    if config["synth_max_duration_s"] is not None:
        opts.append(f"--max-duration {float(config['synth_max_duration_s'])!r}")
    return " ".join(opts)


# --- c3d -------------------------------------------------------------------------------------------------------

def c3d_args(subject: str, trial: str) -> str:
    """Rotation, EMG map (none on the static trial), plate -> foot, marker renames and drops of one trial."""
    spec = trial_spec(subject, trial)
    channels = (SUBJECTS[subject].get("emg") or {}).get("channels")
    kept = ((SUBJECTS[subject].get("synth") or {}).get("trials", {}).get(trial) or {}).get("muscles")
    if channels and kept:  # a synthetic trial whose model keeps only these muscles records only their EMG
        channels = {label: m for label, m in channels.items() if m in kept}
    emg_map = "none" if trial == static_trial(subject) else (kv_arg(channels) if channels else "auto")
    plates = spec.get("plates", "auto")
    args = [f"--rotation {quoted(rotation_arg(subject))}", f"--emg-map {quoted(emg_map)}",
            f"--plate-feet {quoted(plates if plates == 'auto' else kv_arg(plates))}"]
    if spec.get("rename_markers"):
        args.append(f"--rename-markers {quoted(kv_arg(spec['rename_markers']))}")
    if spec.get("drop_markers"):
        args.append(f"--drop-markers {quoted(','.join(spec['drop_markers']))}")
    return " ".join(args)


# --- scale -----------------------------------------------------------------------------------------------------

def scale_settings(subject: str) -> dict:
    """settings.json of scaling: measurements, marker weights (dropped static markers 0), coordinate weights."""
    doc = SUBJECTS[subject]
    sc = doc.get("scaling") or {}
    dropped = set((doc.get("static") or {}).get("drop_markers") or [])
    settings: dict = {}
    if sc.get("measurements"):
        settings["measurements"] = sc["measurements"]
    elif not sc.get("setup"):
        raise ConfigError("no scaling measurements (give scaling.measurements or scaling.setup)", subject=subject,
                          file=doc["_file"], field="scaling.measurements")
    if sc.get("marker_weights"):
        settings["markers"] = {m: (0.0 if m in dropped else float(w)) for m, w in sc["marker_weights"].items()}
    if sc.get("coordinate_weights"):
        if not sc.get("marker_weights"):
            raise ConfigError("coordinate weights need marker weights too", subject=subject, file=doc["_file"],
                              field="scaling.coordinate_weights")
        settings["coordinates"] = {c: float(w) for c, w in sc["coordinate_weights"].items()}
    return settings


def generic_body_mass_arg(subject: str) -> str:
    """`--generic-body-mass-kg M` for a model of some segments only (scaling.generic_body_mass_kg, else a
    synthetic subject's synth.generic_body_mass_kg: the body its code-built model's segments stand for), or ''.
    ScaleTool's mass is then the generic model's mass x mass_kg / M, not the whole body's mass."""
    doc = SUBJECTS[subject]
    mass = (doc.get("scaling") or {}).get("generic_body_mass_kg")
    if mass is None and is_synth(subject):
        mass = doc["synth"].get("generic_body_mass_kg")
        if mass is not None and (isinstance(mass, bool) or not isinstance(mass, (int, float)) or mass <= 0):
            raise ConfigError("expected a body mass > 0 (kg)", subject=subject, file=doc["_file"],
                              field="synth.generic_body_mass_kg")
    return f"--generic-body-mass-kg {float(mass)!r}" if mass is not None else ""


def scale_args(subject: str) -> str:
    """Every `pimsk scale` option that comes from the subject file."""
    doc = SUBJECTS[subject]
    sc = doc.get("scaling") or {}
    settings = scale_settings(subject)
    base = Path(doc["_dir"])
    settings_file = quoted(SCALE_SETTINGS.format(subject=subject))
    setup = quoted(resolve_path(sc["setup"], base)) if sc.get("setup") else None
    args = [f"--measurements {settings_file if 'measurements' in settings else setup}",
            f"--mass-kg {float(doc['mass_kg'])!r}", generic_body_mass_arg(subject),
            f"--height-m {float(doc['height_m'])!r}",
            f"--max-marker-rms-m {float(sc.get('max_marker_rms_m', 0.02))!r}",
            f"--max-marker-error-m {float(sc.get('max_marker_error_m', 0.04))!r}"]
    if "markers" in settings:
        args.append(f"--tasks {settings_file}")
    elif setup:
        args.append(f"--tasks {setup}")
    if doc.get("marker_set"):
        ms = doc["marker_set"]
        args.append(f"--marker-set {quoted(ms if ms.startswith('builtin:') else resolve_path(ms, base))}")
    if doc.get("muscle_model", "degroote") == "degroote":
        args.append("--degroote")
    if static_trial(subject):
        args.append(time_range_arg(subject, static_trial(subject)))
    return " ".join(a for a in args if a)


# --- ik --------------------------------------------------------------------------------------------------------

def ik_settings(subject: str, trial: str) -> dict:
    """settings.json of one trial's IK: marker weights (ik.marker_weights, else scaling.marker_weights; markers the
    trial drops get 0) and ik.coordinate_weights. Empty: every model marker with weight 1."""
    doc = SUBJECTS[subject]
    _unknown_keys(subject, "ik", IK_KEYS)
    ik = doc.get("ik") or {}
    weights = ik.get("marker_weights") or (doc.get("scaling") or {}).get("marker_weights") or {}
    dropped = set(trial_spec(subject, trial).get("drop_markers") or [])
    settings: dict = {}
    if weights:
        settings["markers"] = {m: (0.0 if m in dropped else float(w)) for m, w in weights.items()}
    if ik.get("coordinate_weights"):
        if not weights:
            raise ConfigError("coordinate weights need marker weights too (scaling.marker_weights or "
                              "ik.marker_weights)", subject=subject, file=doc["_file"], field="ik.coordinate_weights")
        settings["coordinates"] = {c: float(w) for c, w in ik["coordinate_weights"].items()}
    return settings


def ik_args(subject: str, trial: str) -> str:
    ik = SUBJECTS[subject].get("ik") or {}
    whole = ik.get("whole_trial", is_synth(subject))  # see the top of this file
    if not isinstance(whole, bool):
        raise ConfigError(f"expected true or false, got {whole!r}", subject=subject, file=SUBJECTS[subject]["_file"],
                          field="ik.whole_trial")
    args = ["" if whole else analysis_window_arg(subject, trial), trial_model_args(subject, trial, muscles=False)]
    if ik_settings(subject, trial).get("markers"):
        args.append(f"--tasks {quoted(IK_SETTINGS.format(subject=subject, trial=trial))}")
    for key in ("max_marker_rms_m", "max_marker_error_m"):
        if key in ik:
            args.append(f"--{key.replace('_', '-')} {float(ik[key])!r}")
    return " ".join(a for a in args if a)


# --- id, so, cmc -----------------------------------------------------------------------------------------------

def id_args(subject: str, trial: str) -> str:
    return " ".join(filter(None, [analysis_window_arg(subject, trial), trial_model_args(subject, trial, False),
                                  section_args(subject, "inverse_dynamics", ID_OPTIONS)]))


def so_args(subject: str, trial: str) -> str:
    physiology = (SUBJECTS[subject].get("so") or {}).get("use_muscle_physiology", True)
    return " ".join(filter(None, [analysis_window_arg(subject, trial), trial_model_args(subject, trial, True),
                                  "" if physiology else "--no-muscle-physiology",
                                  section_args(subject, "so", SO_OPTIONS)]))


def cmc_args(subject: str, trial: str) -> str:
    return " ".join(filter(None, [analysis_window_arg(subject, trial), trial_model_args(subject, trial, True),
                                  section_args(subject, "cmc", CMC_OPTIONS)]))


def labels_model(subject: str) -> str:
    """The model SO and CMC use: model_scaled_degroote.osim (the scale job writes it beside model_scaled.osim)
    when the subject's muscle_model is degroote (the default), else model_scaled.osim."""
    name = "model_scaled_degroote.osim" if SUBJECTS[subject].get("muscle_model", "degroote") == "degroote" \
        else "model_scaled.osim"
    return quoted(f"{R}/{subject}/scale/{name}")


def external_loads_arg(wildcards) -> str:
    """Shell fragment passing --external-loads only where rule c3d found force plates (it then writes
    external_loads.xml beside markers.trc; which trials have plates is known only once the C3D is read)."""
    path = quoted(f"{R}/{wildcards.subject}/{wildcards.trial}/c3d/external_loads.xml")
    return f"$(test -f {path} && echo --external-loads {path})"


def check_arguments() -> None:
    """Build every argument of every job of the config's steps now, so a bad setting fails at parse time."""
    for subject in SUBJECTS:
        if is_synth(subject):
            synth_settings(subject)
        for trial in all_trials(subject):
            c3d_args(subject, trial)
        if "scale" in config["steps"] or any(s in config["steps"] for s in ("ik", "id", "so", "cmc")):
            scale_settings(subject), scale_args(subject)
        if static_trial(subject):
            trial_setup(SUBJECTS[subject], static_trial(subject))  # refuses a set-up on the static trial
        for trial in dynamic_trials(subject):
            ik_settings(subject, trial), ik_args(subject, trial)
            id_args(subject, trial), so_args(subject, trial), cmc_args(subject, trial)


try:
    check_arguments()
except PimskError as exc:
    _fail(exc)
