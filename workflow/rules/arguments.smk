# What each step reads from a subject file, turned into explicit `pimsk <verb>` arguments (one section per step).
# Rules pass these as parameters computed from the wildcards alone: Snakemake reruns a job when one of them
# changes (it ignores parameters derived from input or output files), so an edit of the subject file reruns
# exactly the jobs it affects. Every builder is called once per subject x trial at parse time
# (check_arguments), so a bad setting stops the run at once with one line naming the file and the field.

SCALE_SETTINGS = f"{R}/{{subject}}/scale/settings.json"
IK_SETTINGS = f"{R}/{{subject}}/{{trial}}/ik/settings.json"

ID_OPTIONS = {"lowpass_hz": "--lowpass-hz"}
SO_OPTIONS = {"activation_exponent": "--activation-exponent", "lowpass_hz": "--lowpass-hz",
              "actuators": "--actuators", "use_muscle_physiology": None}
CMC_OPTIONS = {"tasks": "--tasks", "actuators": "--actuators", "no_actuators": "--no-actuators",
               "cmc_window_s": "--cmc-window-s", "lowpass_hz": "--lowpass-hz",
               "integrator_tolerance": "--integrator-tolerance", "slow_target": "--slow-target"}
IK_KEYS = ("marker_weights", "coordinate_weights", "max_marker_rms_m", "max_marker_error_m")


def _unknown_keys(subject: str, section: str, known) -> None:
    values = SUBJECTS[subject].get(section) or {}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}", subject=subject,
                          file=SUBJECTS[subject]["_file"], field=f"{section}.{unknown[0]}")


def section_args(subject: str, section: str, options: dict[str, str | None]) -> str:
    """`--opt value` for the keys of a subject-file section that are set (options with flag None are the
    caller's): True gives the bare flag, a list several paths, a string a path (relative to the subject file),
    a number its value."""
    _unknown_keys(subject, section, options)
    base = Path(SUBJECTS[subject]["_dir"])
    values = SUBJECTS[subject].get(section) or {}
    args = []
    for key, flag in options.items():
        if flag is None or key not in values:
            continue
        v = values[key]
        if isinstance(v, bool):
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


# --- synth ---------------------------------------------------------------------------------------------------

def synth_settings(subject: str) -> str:
    """The subject-file fields `pimsk synth` reads, as JSON (a change reruns it; other edits of the file do not)."""
    doc = SUBJECTS[subject]
    keys = ("id", "mass_kg", "height_m", "model", "lab_to_opensim", "synth")
    trials = ([doc["static"]] if doc.get("static") else []) + doc["trials"]
    return json_text({**{k: doc.get(k) for k in keys}, "emg_channels": (doc.get("emg") or {}).get("channels"),
                      "trials": [{"name": t["name"], "file": t["file"]} for t in trials]})


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


def scale_args(subject: str) -> str:
    """Every `pimsk scale` option that comes from the subject file."""
    doc = SUBJECTS[subject]
    sc = doc.get("scaling") or {}
    settings = scale_settings(subject)
    base = Path(doc["_dir"])
    settings_file = quoted(SCALE_SETTINGS.format(subject=subject))
    setup = quoted(resolve_path(sc["setup"], base)) if sc.get("setup") else None
    args = [f"--measurements {settings_file if 'measurements' in settings else setup}",
            f"--mass-kg {float(doc['mass_kg'])!r}", f"--height-m {float(doc['height_m'])!r}",
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
    args = [time_range_arg(subject, trial)]
    if ik_settings(subject, trial).get("markers"):
        args.append(f"--tasks {quoted(IK_SETTINGS.format(subject=subject, trial=trial))}")
    for key in ("max_marker_rms_m", "max_marker_error_m"):
        if key in ik:
            args.append(f"--{key.replace('_', '-')} {float(ik[key])!r}")
    return " ".join(a for a in args if a)


# --- id, so, cmc -----------------------------------------------------------------------------------------------

def id_args(subject: str, trial: str) -> str:
    return " ".join(filter(None, [time_range_arg(subject, trial),
                                  section_args(subject, "inverse_dynamics", ID_OPTIONS)]))


def so_args(subject: str, trial: str) -> str:
    physiology = (SUBJECTS[subject].get("so") or {}).get("use_muscle_physiology", True)
    return " ".join(filter(None, [time_range_arg(subject, trial), "" if physiology else "--no-muscle-physiology",
                                  section_args(subject, "so", SO_OPTIONS)]))


def cmc_args(subject: str, trial: str) -> str:
    return " ".join(filter(None, [time_range_arg(subject, trial), section_args(subject, "cmc", CMC_OPTIONS)]))


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
        for trial in dynamic_trials(subject):
            ik_settings(subject, trial), ik_args(subject, trial)
            id_args(subject, trial), so_args(subject, trial), cmc_args(subject, trial)


try:
    check_arguments()
except PimskError as exc:
    _fail(exc)
