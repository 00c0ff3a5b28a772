# Step beyond ([F6]: beyond one subject): what the config's `beyond` section names, turned into subjects, explicit
# `pimsk` arguments and settings files (checked at parse time; a bad setting stops the run with one line).
#
#   identify    parameter identification on a synthetic subject with perturbed muscles: `pimsk identify`
#               (label-free, parameters identified) vs `pimsk identify --no-identify` (the generic scaled model's
#               parameters), forces scored against the synthetic truth
#   label_free  label-free PI-CNN (`pimsk identify`: data loss on the angles only) vs supervised PI-CNN
#               (`pimsk identify --supervised`: the force outputs get a data loss on the true forces too)
#   transfer    `pimsk transfer` sources -> unseen target with a fraction of its data: generic / scratch / transfer
#
# The subjects these studies name but the config's `subjects` list does not (helper subjects) are loaded and
# validated here, then go through the workflow's own rules (synth, c3d, scale, ik) as far as the studies need:
# `rule all` asks the OpenSim and learning steps of `steps` only of the config's subjects (common.smk).
# Results under <results_dir>/beyond/, figures under <results_dir>/figures/beyond/.

BEYOND = f"{R}/beyond"


def beyond_on() -> bool:
    return "beyond" in config["steps"]


def _bconf() -> dict:
    if config.get("beyond") is None:
        raise ConfigError("step beyond needs the beyond section of the workflow config", file=_config_where(),
                          field="beyond", hint="see config/config.yaml")
    return config["beyond"]


def _bfail(message: str, field: str, hint: str | None = None):
    raise ConfigError(message, file=_config_where(), field=f"beyond.{field}", hint=hint)


def identify_subject() -> str:
    return _bconf()["identify"]["subject"]


def label_free_subject() -> str:
    return _bconf()["label_free"].get("subject") or identify_subject()


def transfer_subjects() -> list[str]:
    t = _bconf()["transfer"]
    return list(t["sources"]) + [t["target"]]


def beyond_subjects() -> list[str]:
    """Every subject a study of step beyond names (identify, label-free, transfer sources and target)."""
    return list(dict.fromkeys([identify_subject(), label_free_subject(), *transfer_subjects()]))


if beyond_on():
    try:
        _extra = [s for s in beyond_subjects() if s not in SUBJECTS]
        SUBJECTS.update(_load_subjects(_extra))
    except PimskError as exc:
        _fail(exc)


# --- what each use of a subject reads ------------------------------------------------------------------------
# use "identify": the identification and label-free studies (trials, MVC trial, windows of the identify section);
# use "transfer": the transfer study (trials and windows of the transfer section).

USES = ("identify", "transfer")


def use_section(use: str) -> dict:
    return _bconf()["identify" if use == "identify" else "transfer"]


def use_trials(use: str) -> list[str]:
    return list(use_section(use)["trials"])


def mvc_trial(use: str) -> str | None:
    return use_section(use).get("mvc_trial") if use == "identify" else None


def emg_trials(use: str) -> list[str]:
    """Trials whose EMG is enveloped: the study's trials and (identify) the MVC trial, whose envelopes give the
    excitation gain of `pimsk identify` (mvc.envelopes)."""
    mvc = mvc_trial(use)
    return use_trials(use) + ([mvc] if mvc else [])


def beyond_emg_args(use: str) -> str:
    emg = use_section(use).get("emg") or {}
    args = []
    if emg.get("delay_s") is not None:
        args.append(f"--delay-s {float(emg['delay_s'])!r}")
    if emg.get("lowpass_hz") is not None:
        args.append(f"--lowpass-hz {float(emg['lowpass_hz'])!r}")
    return " ".join(args)


def angles_file(subject: str, use: str, trial: str) -> str:
    """The angle the networks learn and the physics differentiates: the workflow's IK (``angles: ik``, the
    default) or the synthetic TRUE kinematics (``angles: truth``: IK without its noise; `pimsk identify` takes the
    measured angle's second derivative unfiltered, and 0.1 deg of IK noise roughly doubles it on the demo wrist)."""
    if use_section(use).get("angles", "ik") == "truth":
        return f"{synth_dir(subject)}/truth/{trial}/coordinates.mot"
    return expand(rules.ik.output.coordinates, subject=subject, trial=trial)[0]


def beyond_dataset_spec(subject: str, use: str) -> dict:
    """`pimsk dataset` spec: envelopes + angle (:func:`angles_file`) + the synthetic TRUE forces (the supervised
    arm's labels and the scores' reference) of the use's trials, each cut to its analysis window."""
    sec = use_section(use)
    spec = {"targets": {"coordinates": [sec["coordinate"]], "forces": list(sec["muscles"])},
            "samples": dict(sec["samples"]), "trials": []}
    if sec.get("angles_lowpass_hz") is not None:
        spec["lowpass_hz"] = {"coordinates": float(sec["angles_lowpass_hz"])}
    for trial in use_trials(use):
        entry = {"name": trial, "emg": f"{BEYOND}/{subject}/{use}/emg/{trial}_envelopes.sto",
                 "coordinates": angles_file(subject, use, trial),
                 "forces": f"{synth_dir(subject)}/truth/{trial}/forces.sto"}
        window = analysis_window_arg(subject, trial).split()
        if window:
            entry["time_range_s"] = [float(window[1]), float(window[2])]
        spec["trials"].append(entry)
    return spec


def _rel(path: str, config_file: str) -> str:
    """``path`` (relative to Snakemake's working directory) as seen from ``config_file``'s folder, where `pimsk
    identify` and `pimsk transfer` resolve relative paths."""
    return os.path.relpath(path, os.path.dirname(config_file))


def so_model_path(subject: str) -> str:
    """The scaled model SO uses (arguments.smk labels_model), unquoted: the identified and transferred physics'
    muscles, chain and path geometry."""
    return shlex.split(labels_model(subject))[0]


def chain_physics(use: str) -> dict:
    c = use_section(use)["chain"]
    return {"chain_root_body": c["root_body"], "chain_coordinates": list(c["coordinates"])}


def identify_config(subject: str, config_file: str) -> dict:
    """The `pimsk identify` config: the subject's scaled (generic-parameter) model as physics, its MVC envelopes,
    leave-one-trial-out with the test trial of the identify section."""
    sec = _bconf()["identify"]
    model = so_model_path(subject)
    cfg = {"coordinates": [sec["coordinate"]], "muscles": list(sec["muscles"]),
           "physics": {"surrogate": _rel(f"{BEYOND}/{subject}/geometry/scaled.json", config_file),
                       "muscle_parameters": _rel(model, config_file), "chain": _rel(model, config_file),
                       **chain_physics("identify")},
           "network": dict(sec["network"]), "identify": dict(sec.get("settings") or {}),
           "protocol": {"name": "leave_one_trial_out", "n_val_trials": 0}}
    if sec.get("angles_lowpass_hz") is not None:
        # the IK angles' low-pass on the muscle moment too: the same filter on both sides of the moment balance
        cfg["identify"].setdefault("moment_lowpass_hz", float(sec["angles_lowpass_hz"]))
    mvc = mvc_trial("identify")
    if mvc:
        window = analysis_window_arg(subject, mvc).split()
        cfg["mvc"] = {"envelopes": _rel(f"{BEYOND}/{subject}/identify/emg/{mvc}_envelopes.sto", config_file)}
        if window:
            cfg["mvc"]["window_s"] = [float(window[1]), float(window[2])]
    return cfg


#: `pimsk identify` runs: arm -> its flags (identified: the label-free default)
IDENTIFY_ARMS = {"identified": "", "generic": "--no-identify", "supervised": "--supervised"}


def transfer_config(config_file: str) -> dict:
    """The `pimsk transfer` config: the sources' datasets, the generic PI-CNN on the GENERIC (unscaled) model of
    the first source, the target's dataset with its own scaled model; no search (fixed layers and L2-SP)."""
    sec = _bconf()["transfer"]
    first = sec["sources"][0]
    target = sec["target"]
    chain = chain_physics("transfer")
    generic_model = f"{synth_dir(first)}/model_generic.osim"
    target_model = so_model_path(target)
    settings = dict(sec.get("settings") or {})
    return {
        "sources": [{"name": s, "dataset": _rel(f"{BEYOND}/{s}/transfer/dataset/samples.npz", config_file)}
                    for s in sec["sources"]],
        "generic": {"method": "picnn", "network": dict(sec["network"]), "training": dict(sec["training"]),
                    "loss": {"lambda": float(sec.get("lambda", 1.0))},
                    "physics": {"surrogate": _rel(f"{BEYOND}/{first}/geometry/generic.json", config_file),
                                "muscle_parameters": _rel(generic_model, config_file),
                                "chain": _rel(generic_model, config_file), **chain, "force_scale": "labels"}},
        "target": {"name": target, "dataset": _rel(f"{BEYOND}/{target}/transfer/dataset/samples.npz", config_file),
                   "physics": {"surrogate": _rel(f"{BEYOND}/{target}/geometry/scaled.json", config_file),
                               "muscle_parameters": _rel(target_model, config_file),
                               "chain": _rel(target_model, config_file), **chain, "force_scale": "labels",
                               "trainable_gain": True}},
        "transfer": {"fraction": float(sec["fraction"]), "val_share": 0.25, "loss": {"lambda": float(sec.get("lambda", 1.0))},
                     "restandardise": False, "layers": "affine", "l2sp": 0.01, "search": {},
                     "training": dict(sec.get("finetune") or sec["training"]), **settings},
        "seeds": list(sec.get("seeds") or [0]),
    }


def geometry_model(subject: str, which: str) -> str:
    """The model a path surrogate is fitted to: ``scaled`` (the SO model of the scaled subject) or ``generic``
    (the generic model `pimsk synth` wrote)."""
    return so_model_path(subject) if which == "scaled" else f"{synth_dir(subject)}/model_generic.osim"


def beyond_geometry_args(subject: str) -> str:
    uses = [u for u in USES if subject in _use_subjects(u)]
    sec = use_section(uses[0])
    geo = _bconf().get("geometry") or {}
    return (f"--muscles {' '.join(quoted(m) for m in sec['muscles'])} "
            f"--coordinates {' '.join(quoted(c) for c in sec['chain']['coordinates'])} "
            f"--n-samples {int(geo.get('n_samples', 200))} --seed {int(geo.get('seed', 0))}")


def _use_subjects(use: str) -> list[str]:
    return list(dict.fromkeys([identify_subject(), label_free_subject()])) if use == "identify" \
        else transfer_subjects()


def beyond_targets() -> list[str]:
    """Every figure and table of step beyond (beyond.smk), or [] when the step is off."""
    if not beyond_on():
        return []
    return [*rules.beyond_identification_figures.output, *rules.beyond_label_free_figures.output,
            *rules.beyond_transfer_figures.output]


def check_beyond() -> None:
    """Every subject synthetic (the scores need the truth), every trial known, every setting built now."""
    if not beyond_on():
        return
    from pimsk.learn.transfer import TransferSettings

    for use in USES:
        for subject in _use_subjects(use):
            field = "identify.subject" if use == "identify" else "transfer.sources"
            if not is_synth(subject):
                _bfail(f"{subject} is not a synthetic subject: the studies score against the synthetic truth", field)
            for trial in emg_trials(use):
                if trial not in dynamic_trials(subject):
                    _bfail(f"{trial!r} is not a dynamic trial of {subject}", f"{use}.trials",
                           f"trials: {dynamic_trials(subject)}")
            beyond_dataset_spec(subject, use), beyond_geometry_args(subject)
    test = _bconf()["identify"]["test_trial"]
    if test not in use_trials("identify"):
        _bfail(f"test_trial {test!r} is not one of the identify trials", "identify.test_trial")
    identify_config(identify_subject(), f"{BEYOND}/x.json")
    try:
        TransferSettings.from_dict(transfer_config(f"{BEYOND}/x.json")["transfer"], where="beyond.transfer")
    except ConfigError as exc:
        raise ConfigError(exc.message, file=_config_where(), field=exc.field, hint=exc.hint) from None
    if set(_bconf()["transfer"]["sources"]) & {_bconf()["transfer"]["target"]}:
        _bfail("the target is one of the sources", "transfer.target")
