# What the learning stage reads from a subject file's learning section and the config's learning section, turned
# into explicit `pimsk` arguments and settings files (the dataset spec, one run config per training run). Rules
# pass them as parameters computed from the wildcards alone, so an edit reruns exactly the jobs it affects; every
# builder runs at parse time (check_learning) and a bad setting stops the run with one line naming file and field.
#
# Runs of one subject (wildcard run): the methods of config learning.methods (picnn, cnn, elm, mlelm, svr: the
# method comparison), <method>_frac<F> (training-set size: the first fraction F of every training trial) and
# <method>_blocks<N> (network depth: N convolutional blocks). Studies (wildcard study) group runs for
# `pimsk evaluate`: methods, training_size (the main run is fraction 1), network_depth (the main run has
# network.n_blocks).

import math
import re

LEARN = f"{R}/learn/{{subject}}"
STUDIES = ("methods", "training_size", "network_depth")
RUN_PATTERN = re.compile(r"^(?P<method>[a-z]+)(?:_frac(?P<fraction>[0-9.]+)|_blocks(?P<blocks>[0-9]+))?$")


def learning_subjects() -> list[str]:
    """Subjects of the config with a learning section, when the config's steps include learn."""
    if "learn" not in config["steps"]:
        return []
    return [s for s in SUBJECTS if SUBJECTS[s].get("learning") is not None]


def _lconf() -> dict:
    if config.get("learning") is None:
        raise ConfigError("step learn needs the learning section of the workflow config", file=_config_where(),
                          field="learning", hint="see config/config.yaml")
    return config["learning"]


def _learning(subject: str) -> dict:
    return SUBJECTS[subject]["learning"]


def _lfail(subject: str, message: str, field: str, hint: str | None = None):
    raise ConfigError(message, subject=subject, file=subject_file(subject), field=f"learning.{field}", hint=hint)


def learn_trials(subject: str) -> list[str]:
    """Dynamic trials the subject learns from (learning.trials, default every dynamic trial)."""
    trials = _learning(subject).get("trials") or dynamic_trials(subject)
    unknown = [t for t in trials if t not in dynamic_trials(subject)]
    if unknown:
        _lfail(subject, f"{unknown[0]!r} is not a dynamic trial", "trials", f"trials: {dynamic_trials(subject)}")
    return list(trials)


def learn_coordinates(subject: str) -> list[str]:
    return list(_learning(subject).get("coordinates") or [])


def learn_muscles(subject: str) -> list[str]:
    """Force outputs: learning.muscles, else the muscles of emg.channels."""
    muscles = _learning(subject).get("muscles") or list(((SUBJECTS[subject].get("emg") or {}).get("channels")
                                                        or {}).values())
    if not muscles and not learn_coordinates(subject):
        _lfail(subject, "no outputs: give learning.coordinates and/or learning.muscles", "muscles")
    return list(dict.fromkeys(muscles))


def learn_outputs(subject: str) -> list[str]:
    return learn_coordinates(subject) + learn_muscles(subject)


def labels_source(subject: str) -> str:
    """Where the force labels come from: the subject file's top-level labels (so or cmc)."""
    return SUBJECTS[subject].get("labels", "so")


def labels_forces(subject: str, trial: str) -> str:
    step = rules.so if labels_source(subject) == "so" else rules.cmc
    return expand(step.output.forces, subject=subject, trial=trial)[0]


# --- emg -------------------------------------------------------------------------------------------------------

def emg_args(subject: str) -> str:
    """Filter settings (emg.band_hz, lowpass_hz, delay_s) and the MVC trial's raw EMG (emg.mvc_trial)."""
    emg = SUBJECTS[subject].get("emg") or {}
    args = []
    if emg.get("band_hz"):
        args.append(f"--band-hz {float(emg['band_hz'][0])!r} {float(emg['band_hz'][1])!r}")
    if emg.get("lowpass_hz") is not None:
        args.append(f"--lowpass-hz {float(emg['lowpass_hz'])!r}")
    if emg.get("delay_s") is not None:
        args.append(f"--delay-s {float(emg['delay_s'])!r}")
    if emg.get("mvc_trial"):
        if emg["mvc_trial"] not in all_trials(subject):
            raise ConfigError(f"mvc_trial {emg['mvc_trial']!r} is not a trial of the subject", subject=subject,
                              file=subject_file(subject), field="emg.mvc_trial")
        args.append(f"--mvc {quoted(emg_raw(subject, emg['mvc_trial']))}")
    return " ".join(args)


def emg_raw(subject: str, trial: str) -> str:
    """emg_raw.sto that rule c3d writes beside conversion.json where a trial has EMG."""
    return f"{R}/{subject}/{trial}/c3d/emg_raw.sto"


def mvc_inputs(subject: str) -> list[str]:
    mvc = (SUBJECTS[subject].get("emg") or {}).get("mvc_trial")
    return [expand(rules.c3d.output.report, subject=subject, trial=mvc)[0]] if mvc else []


# --- geometry --------------------------------------------------------------------------------------------------

def geometry_args(subject: str) -> str:
    """`pimsk geometry` options: the output muscles, the coordinates that vary, ranges (deg), poses, seed."""
    geo = _learning(subject).get("geometry") or {}
    coords = geo.get("coordinates") or learn_coordinates(subject)
    if not coords:
        _lfail(subject, "no coordinates for the path surrogate", "geometry.coordinates")
    args = [f"--muscles {' '.join(quoted(m) for m in learn_muscles(subject))}",
            f"--coordinates {' '.join(quoted(c) for c in coords)}",
            f"--n-samples {int(geo.get('n_samples', 1500))}", f"--seed {int(geo.get('seed', 0))}",
            "--moment-arms difference"]
    for name, (lo, hi) in (geo.get("ranges_deg") or {}).items():
        if not hi > lo:
            _lfail(subject, f"range of {name}: {hi} must exceed {lo}", f"geometry.ranges_deg.{name}")
        args.append(f"--range {quoted(f'{name}={float(lo)!r}:{float(hi)!r}')}")
    for name, n in (geo.get("split") or {}).items():
        args.append(f"--split {quoted(f'{name}={int(n)}')}")
    return " ".join(args)


# --- dataset ---------------------------------------------------------------------------------------------------

def _physics_section(subject: str) -> dict:
    return dict(_learning(subject).get("physics") or {})


def moment_columns(subject: str) -> dict[str, str]:
    """coordinate -> ID column of its net moment, when the physics takes the moment from inverse dynamics."""
    physics = _physics_section(subject)
    if physics.get("moment_source", "dynamics") != "target":
        return {}
    given = physics.get("moment_columns")
    return dict(given) if given else {c: f"{c}_moment" for c in learn_coordinates(subject)}


def label_coordinates(subject: str) -> list[str]:
    return list(_physics_section(subject).get("label_coordinates") or [])


def dataset_spec(subject: str) -> dict:
    """The `pimsk dataset` spec: envelopes + IK coordinates + labels (+ ID moments) of every learning trial,
    paths relative to Snakemake's working directory; each trial cut to its analysis window."""
    doc = _learning(subject)
    samples = dict(doc["samples"])
    if samples["kind"] == "window" and "length" not in samples:
        _lfail(subject, "window samples need a length (frames)", "samples.length")
    if samples["kind"] == "cycle":
        samples.setdefault("n_frames", 100)
        if samples.get("strikes", "grf") == "grf" and not samples.get("grf_column"):
            _lfail(subject, "cycles from the GRF need samples.grf_column", "samples.grf_column")
    targets = {}
    coords = list(dict.fromkeys(learn_coordinates(subject) + label_coordinates(subject)))
    if coords:
        targets["coordinates"] = coords
    if learn_muscles(subject):
        targets["forces"] = learn_muscles(subject)
    moments = list(moment_columns(subject).values())
    if moments:
        targets["moments"] = moments
    spec = {"targets": targets, "samples": samples, "trials": []}
    if doc.get("emg_channels"):
        spec["emg_columns"] = list(doc["emg_channels"])
    attributes = doc.get("attributes") or {}
    for trial in learn_trials(subject):
        entry = {"name": trial, "emg": f"{R}/learn/{subject}/emg/envelopes/{trial}_envelopes.sto",
                 "forces": labels_forces(subject, trial)}
        if coords:
            entry["coordinates"] = expand(rules.ik.output.coordinates, subject=subject, trial=trial)[0]
        if moments:
            entry["moments"] = expand(rules.id.output.moments, subject=subject, trial=trial)[0]
        if samples["kind"] == "cycle":
            if samples.get("strikes", "grf") == "grf":
                entry["grf"] = f"{R}/{subject}/{trial}/c3d/grf.mot"
            else:
                entry["events"] = expand(rules.c3d.output.events, subject=subject, trial=trial)[0]
        window = analysis_window_arg(subject, trial).split()
        if window:
            entry["time_range_s"] = [float(window[1]), float(window[2])]
        if trial in attributes:
            entry["attributes"] = dict(attributes[trial])
        spec["trials"].append(entry)
    return spec


def dataset_inputs(wildcards) -> dict[str, list[str]]:
    """Every file the dataset spec names (by the rules that make them)."""
    s = wildcards.subject
    trials = learn_trials(s)
    out = {"labels": [labels_forces(s, t) for t in trials], "c3d": expand(rules.c3d.output.events, subject=s,
                                                                        trial=trials)}
    if learn_coordinates(s) or label_coordinates(s):
        out["coordinates"] = expand(rules.ik.output.coordinates, subject=s, trial=trials)
    if moment_columns(s):
        out["moments"] = expand(rules.id.output.moments, subject=s, trial=trials)
    return out


# --- train -----------------------------------------------------------------------------------------------------

def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in (extra or {}).items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_run(run: str) -> tuple[str, float | None, int | None]:
    """run id -> (method, training fraction or None, n_blocks or None)."""
    m = RUN_PATTERN.match(run)
    if not m:
        raise ConfigError(f"run {run!r} is not <method>, <method>_frac<F> or <method>_blocks<N>", field="run")
    return (m["method"], float(m["fraction"]) if m["fraction"] else None,
            int(m["blocks"]) if m["blocks"] else None)


def physics_config(subject: str) -> dict:
    """The run config's physics: the subject's section with degrees turned into radians and the label
    coordinates as a mapping; the surrogate and the model files are passed on the command line."""
    physics = _physics_section(subject)
    fixed = physics.pop("fixed_coordinates_deg", None) or {}
    out = {"force_scale": "labels", "clamp_to_surrogate_range": True, **physics}
    if fixed:
        out["fixed_coordinates_rad"] = {c: math.radians(float(v)) for c, v in fixed.items()}
    if label_coordinates(subject):
        out["label_coordinates"] = {c: c for c in label_coordinates(subject)}
    if moment_columns(subject):
        out["moment_columns"] = moment_columns(subject)
    return out


def run_config(subject: str, run: str) -> dict:
    """The run config of one training run (pimsk.learn.train): the config's sizes, the method's own settings,
    the subject's outputs, protocol and physics; depth runs override network.n_blocks."""
    lc = _lconf()
    method, _, blocks = parse_run(run)
    if method not in lc["methods"]:
        raise ConfigError(f"run {run}: method {method} is not in learning.methods", file=_config_where(),
                          field="learning.methods")
    doc = _learning(subject)
    cfg = {"method": method, "seeds": list(lc["seeds"]), "outputs": learn_outputs(subject),
           "protocol": dict(doc["protocol"])}
    if method in ("picnn", "cnn"):
        cfg["network"] = dict(lc["network"])
        cfg["training"] = {**lc["training"], **(doc.get("training") or {})}
        cfg["physics"] = physics_config(subject)
    cfg = _deep_merge(cfg, lc["methods"][method])
    if blocks is not None:
        cfg["network"] = {**cfg.get("network", {}), "n_blocks": blocks}
    return cfg


def study_runs(study: str) -> list[tuple[str, str]]:
    """(run id, name in the study's tables) of a study; the main runs stand for fraction 1 and the configured
    network.n_blocks."""
    lc = _lconf()
    if study == "methods":
        return [(m, m) for m in lc["methods"]]
    if study == "training_size":
        sizes = lc["training_size"]
        return [(f"{m}_frac{f:g}" if f < 1 else m, f"{m}@{f:g}") for m in sizes["methods"]
                for f in sorted(set(sizes["fractions"]) | {1.0})]
    if study == "network_depth":
        depth, main = lc["network_depth"], int(lc["network"].get("n_blocks", 4))
        return [(f"{m}_blocks{n}" if n != main else m, f"{m}@{n}") for m in depth["methods"]
                for n in sorted(set(depth["n_blocks"]) | {main})]
    raise ConfigError(f"unknown study {study!r}", field="study")


def all_runs() -> list[str]:
    return list(dict.fromkeys(run for study in STUDIES for run, _ in study_runs(study)))


def chain_arg(subject: str) -> str:
    """`--chain MODEL` (the labels model, with physics.chain_root_body) where the moment comes from the torch open
    chain (moment_source: dynamics), else ''."""
    if _physics_section(subject).get("moment_source", "dynamics") != "dynamics":
        return ""
    if not _physics_section(subject).get("chain_root_body"):
        _lfail(subject, "moment_source dynamics needs the chain's root body", "physics.chain_root_body",
               "e.g. forearm_r (and chain_coordinates)")
    return f"--chain \"$(realpath {labels_model(subject)})\""


def train_args(subject: str, run: str) -> str:
    """`--train-fraction F` of a training-size run, else ''."""
    _, fraction, _ = parse_run(run)
    return f"--train-fraction {fraction!r}" if fraction is not None else ""


def check_learning() -> None:
    """Build every learning argument now (and validate each run config with pimsk's own checks)."""
    subjects = learning_subjects()
    if not subjects:
        return
    from pimsk.learn.train import resolve_config

    lc = _lconf()
    for study in ("training_size", "network_depth"):
        unknown = [m for m in lc[study]["methods"] if m not in lc["methods"]]
        if unknown:
            raise ConfigError(f"{unknown[0]} is not in learning.methods", file=_config_where(),
                              field=f"learning.{study}.methods")
    for subject in subjects:
        learn_trials(subject), emg_args(subject), geometry_args(subject), dataset_spec(subject), chain_arg(subject)
        for run in all_runs():
            try:
                resolve_config(run_config(subject, run))
            except ConfigError as exc:
                raise ConfigError(f"run config of run {run}: {exc.message}", subject=subject,
                                  file=f"{subject_file(subject)} (learning) + {_config_where()} (learning)",
                                  field=exc.field, hint=exc.hint) from None


try:
    check_learning()
except PimskError as exc:
    _fail(exc)
