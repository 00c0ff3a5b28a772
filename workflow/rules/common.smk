# Shared by every rule file: load and validate the config and every subject file at parse time (one line
# naming the file and the field on error, no traceback), and the helpers that map subject x trial to files.
#
# Paths: subject folders are relative to the repository root (the Snakefile's folder) unless absolute;
# results_dir is relative to Snakemake's working directory (--directory), so a test or a cluster run can send
# results anywhere without copying the workflow.

import json
import os
import shlex
import sys
from pathlib import Path

from pimsk.config import load_subject, resolve_path
from pimsk.errors import ConfigError, PimskError

REPO = Path(workflow.basedir)

# The rules call the `pimsk` console script; put the interpreter's bin folder (the venv that runs Snakemake) first
# on PATH so `make demo` works without activating the venv, locally and on cluster nodes alike.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

RESERVED_TRIAL_NAMES = {"scale", "synth", "logs", "benchmarks"}


def _fail(exc: Exception) -> None:
    """Stop parsing with one line (Snakemake prints a SystemExit message without a traceback)."""
    raise SystemExit(f"pimsk workflow: error: {exc}")


def _validate_config(cfg: dict, schema_file: Path, where: str) -> dict:
    """Validate the merged config (config file + --config) against the workflow schema; fill defaults."""
    import jsonschema

    schema = json.loads(schema_file.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg),
                    key=lambda e: (len(list(e.absolute_path)), e.message))
    if errors:
        err = errors[0]
        field = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(err.message, file=where, field=field, hint=f"see {schema_file.relative_to(REPO)}")
    for key, spec in schema["properties"].items():
        if "default" in spec and key not in cfg:
            cfg[key] = spec["default"]
    return cfg


def _config_where() -> str:
    files = [str(f) for f in workflow.configfiles] or ["(no config file)"]
    return " + ".join(files) + " (+ --config)"


try:
    _validate_config(config, REPO / "workflow" / "schemas" / "config.schema.json", _config_where())
except PimskError as exc:
    _fail(exc)

R = os.path.normpath(config["results_dir"])  # results root, relative to the working directory
SUBJECTS_DIR = Path(config["subjects_dir"])
if not SUBJECTS_DIR.is_absolute():
    SUBJECTS_DIR = REPO / SUBJECTS_DIR


def _load_subjects(ids: list[str]) -> dict[str, dict]:
    """Every subject file of the config, validated against pimsk/schemas/subject.schema.json."""
    out: dict[str, dict] = {}
    for sid in ids:
        path = SUBJECTS_DIR / sid / "subject.yaml"
        if not path.is_file():
            raise ConfigError(f"subject {sid!r} has no subject file", file=str(path), field="subjects",
                              hint=f"create it or remove {sid} from the config's subjects")
        doc = load_subject(path)
        if doc["id"] != sid:
            raise ConfigError(f"id {doc['id']!r} differs from the folder name {sid!r}", file=str(path), field="id")
        names = [t["name"] for t in doc.get("trials", [])]
        if doc.get("static"):
            if doc["static"]["name"] in names:
                raise ConfigError(f"the static trial's name {doc['static']['name']!r} is also a dynamic trial's",
                                  file=str(path), field="static.name")
            names.append(doc["static"]["name"])
        for i, name in enumerate(names):
            if name in RESERVED_TRIAL_NAMES:
                raise ConfigError(f"trial name {name!r} is reserved for a results folder", file=str(path),
                                  field=f"trials.{i}.name" if i < len(doc.get("trials", [])) else "static.name",
                                  hint=f"reserved: {', '.join(sorted(RESERVED_TRIAL_NAMES))}")
        if not doc.get("trials"):
            raise ConfigError("no dynamic trials", file=str(path), field="trials")
        if set(config["steps"]) - {"c3d"} and not doc.get("static"):
            raise ConfigError("no static trial to scale the model with", file=str(path), field="static",
                              hint="add a static trial, or run steps=[c3d] only")
        if "synth" in doc:  # a synthetic subject: `pimsk synth` must make every trial
            made = set((doc["synth"].get("trials") or {}) if isinstance(doc["synth"], dict) else {})
            missing = [n for n in names if n not in made]
            if missing:
                raise ConfigError(f"no synth settings for trial(s) {missing}: pimsk synth would not make them",
                                  file=str(path), field="synth.trials")
        else:  # a lab subject: its files must exist now, not after an hour of processing
            if doc["model"].startswith("builtin:"):
                raise ConfigError(f"{doc['model']} is written by pimsk synth: this subject has no synth section",
                                  file=str(path), field="model", hint="give a generic .osim model file")
            if not resolve_path(doc["model"], path.parent).is_file():
                raise ConfigError(f"model file not found: {resolve_path(doc['model'], path.parent)}",
                                  file=str(path), field="model")
            ms = doc.get("marker_set")
            if ms and not ms.startswith("builtin:") and not resolve_path(ms, path.parent).is_file():
                raise ConfigError(f"marker set file not found: {resolve_path(ms, path.parent)}", file=str(path),
                                  field="marker_set")
            for i, trial in enumerate(doc.get("trials", [])):
                _c3d_exists(doc, trial, f"trials.{i}.file")
            if doc.get("static"):
                _c3d_exists(doc, doc["static"], "static.file")
        out[sid] = doc
    return out


def _c3d_exists(doc: dict, trial: dict, field: str) -> None:
    path = resolve_path(trial["file"], Path(doc["_dir"]))
    if not path.is_file():
        raise ConfigError(f"C3D file not found: {path}", subject=doc["id"], trial=trial["name"], file=doc["_file"],
                          field=field, hint="check the path (${PIMSK_DATA} is the shared data folder)")


try:
    SUBJECTS = _load_subjects(list(config["subjects"]))
except PimskError as exc:
    _fail(exc)


# ---------------------------------------------------------------------------------------------------------
# subject x trial helpers (pure functions of the validated subject files)

def is_synth(subject: str) -> bool:
    """A synthetic subject: `pimsk synth` makes its C3D files and model under results/<subject>/synth/."""
    return "synth" in SUBJECTS[subject]


def static_trial(subject: str) -> str | None:
    """Name of the subject's static (scaling) trial, or None."""
    st = SUBJECTS[subject].get("static")
    return st["name"] if st else None


def dynamic_trials(subject: str) -> list[str]:
    """Names of the subject's dynamic trials, in file order."""
    return [t["name"] for t in SUBJECTS[subject].get("trials", [])]


def all_trials(subject: str) -> list[str]:
    """Static trial (if any) then the dynamic trials."""
    st = static_trial(subject)
    return ([st] if st else []) + dynamic_trials(subject)


def trial_spec(subject: str, trial: str) -> dict:
    """The subject file's entry of one trial (static or dynamic)."""
    doc = SUBJECTS[subject]
    for t in list(doc.get("trials", [])) + ([doc["static"]] if doc.get("static") else []):
        if t["name"] == trial:
            return t
    raise ConfigError(f"no trial {trial!r}", subject=subject, file=doc["_file"], field="trials")


def subject_file(subject: str) -> str:
    return SUBJECTS[subject]["_file"]


def synth_dir(subject: str) -> str:
    return f"{R}/{subject}/synth"


def synth_c3d_files(subject: str) -> list[str]:
    """The C3D files `pimsk synth` writes for a synthetic subject (one per trial, named by the trial's file)."""
    return [f"{synth_dir(subject)}/{trial_spec(subject, t)['file']}" for t in all_trials(subject)]


def c3d_path(subject: str, trial: str) -> str:
    """The C3D file of a trial: made by rule synth_<subject> for a synthetic subject, else the lab's file."""
    spec = trial_spec(subject, trial)
    if is_synth(subject):
        return f"{synth_dir(subject)}/{spec['file']}"
    return str(resolve_path(spec["file"], Path(SUBJECTS[subject]["_dir"])))


def generic_model(subject: str) -> str:
    """The generic model to scale: a lab model path, or the one `pimsk synth` writes for a code-built model."""
    model = SUBJECTS[subject]["model"]
    if is_synth(subject) and model.startswith("builtin:"):
        return f"{synth_dir(subject)}/model_generic.osim"
    return str(resolve_path(model, Path(SUBJECTS[subject]["_dir"])))


def quoted(value) -> str:
    """One shell word."""
    return shlex.quote(str(value))


def kv_arg(mapping: dict | None) -> str:
    """{'A': 'x', 'B': 'y'} -> 'A=x,B=y' (the KEY=VALUE,... form of pimsk options); '' when empty."""
    return ",".join(f"{k}={v}" for k, v in (mapping or {}).items())


def json_text(obj) -> str:
    """Compact, key-sorted JSON: a settings file's text passed as a rule parameter (a change reruns the rule)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def static_trc(wildcards) -> str:
    """markers.trc of the subject's static trial (rule c3d)."""
    return expand(rules.c3d.output.trc, subject=wildcards.subject, trial=static_trial(wildcards.subject))[0]


def rotation_arg(subject: str) -> str:
    """lab_to_opensim as `--rotation` text: an axis spec 'x,z,-y' (a 3x3 signed permutation is turned into one)."""
    doc = SUBJECTS[subject]
    rot = doc.get("lab_to_opensim", "identity")
    if isinstance(rot, str):
        return rot
    axes = []
    for row in rot:
        nz = [(j, v) for j, v in enumerate(row) if abs(v) > 1e-9]
        if len(nz) != 1 or abs(abs(nz[0][1]) - 1.0) > 1e-9:
            raise ConfigError("a rotation matrix must be a signed permutation here; give 'x,z,-y'-style axes",
                              subject=subject, file=doc["_file"], field="lab_to_opensim")
        axes.append(("-" if nz[0][1] < 0 else "") + "xyz"[nz[0][0]])
    return ",".join(axes)


def step_wildcards(step: str) -> list[dict]:
    """(subject, trial) pairs that a step runs for: c3d on every trial, scale once per subject, the rest on
    the dynamic trials."""
    pairs = []
    for s in config["subjects"]:  # not the helper subjects of step beyond (beyond_arguments.smk)
        if step == "scale":
            pairs.append({"subject": s})
        elif step == "c3d":
            pairs += [{"subject": s, "trial": t} for t in all_trials(s)]
        else:
            pairs += [{"subject": s, "trial": t} for t in dynamic_trials(s)]
    return pairs


def log_path(step: str, per_trial: bool = True) -> str:
    return f"{R}/logs/{{subject}}/{{trial}}/{step}.log" if per_trial else f"{R}/logs/{{subject}}/{step}.log"


def bench_path(step: str, per_trial: bool = True) -> str:
    return (f"{R}/benchmarks/{{subject}}/{{trial}}/{step}.tsv" if per_trial
            else f"{R}/benchmarks/{{subject}}/{step}.tsv")


wildcard_constraints:
    subject=r"[A-Za-z0-9_.-]+",
    trial=r"[A-Za-z0-9_.-]+",


def all_targets(wildcards=None) -> list[str]:
    """The main output (the first) of every step in config `steps`, for every subject x trial it runs on; for
    step learn every figure of every subject with a learning section (learn.smk), for step beyond its figures and
    tables (beyond.smk)."""
    targets: list[str] = []
    for step in config["steps"]:
        if step == "learn":
            targets += learning_targets()
            continue
        if step == "beyond":
            targets += beyond_targets()
            continue
        main_output = getattr(rules, step).output[0]
        targets += [expand(main_output, **wcs)[0] for wcs in step_wildcards(step)]
    return targets


def scaled_model(wildcards) -> str:
    """model_scaled.osim of the subject (markers placed, the model's own muscles): what IK and ID use."""
    return expand(rules.scale.output.model, subject=wildcards.subject)[0]


def write_report() -> str | None:
    """Make <results_dir>/report.html (Snakemake's report: jobs, timings, the rules' code) for the run that just
    succeeded, with this run's config; return its absolute path, or None (the run's results stand either way)."""
    import subprocess

    import yaml

    report_html = Path(R) / "report.html"
    run_config = Path(R) / "logs" / "workflow_config.yaml"  # the validated config of this run, kept for the record
    run_config.parent.mkdir(parents=True, exist_ok=True)
    run_config.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", workflow.main_snakefile, "-d", os.getcwd(),
           "--configfile", str(run_config.resolve()), "--report", str(report_html.resolve())]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return str(report_html.resolve()) if done.returncode == 0 and report_html.is_file() else None
