"""The Snakemake workflow (Snakefile + workflow/rules) run as a user runs it: `snakemake` in a subprocess.

Every run uses the repository's Snakefile with Snakemake's working directory (--directory) in a tmp folder, so
results, logs and .snakemake/ metadata land there and the repository's results/ is untouched. Expected job
lists are derived from the subject files themselves (read here with plain YAML), not from the workflow code.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pimsk.paths import PROJECT_ROOT

SNAKEFILE = PROJECT_ROOT / "Snakefile"
CONFIG = PROJECT_ROOT / "config" / "config.yaml"
SUBJECTS = PROJECT_ROOT / "subjects"


def snakemake(workdir: Path, *args: str, timeout_s: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m snakemake -s <repo Snakefile> -d <workdir> ARGS`; return the completed process."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run: rule -> number of jobs."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Job stats"))
    for ln in lines[start + 3:]:
        parts = ln.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def planned_jobs(text: str) -> set[tuple[str, str | None]]:
    """(rule, trial) of every job a (dry) run lists; trial None for jobs without a trial wildcard."""
    jobs: set[tuple[str, str | None]] = set()
    rule = None
    for ln in text.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", ln.strip())
        if m:
            if rule:
                jobs.add((rule, None))
            rule = m.group(1)
            continue
        m = re.search(r"wildcards: .*?trial=([\w.-]+)", ln)
        if rule and m:
            jobs.add((rule, m.group(1)))
            rule = None
        elif rule and (ln.startswith("[") or not ln.strip()):
            jobs.add((rule, None))
            rule = None
    if rule:
        jobs.add((rule, None))
    return jobs


def subject_doc(subject: str, root: Path = SUBJECTS) -> dict:
    return yaml.safe_load((root / subject / "subject.yaml").read_text())


def trial_names(doc: dict) -> tuple[str | None, list[str]]:
    """(static trial name, dynamic trial names) as the subject file lists them."""
    static = (doc.get("static") or {}).get("name")
    return static, [t["name"] for t in doc.get("trials", [])]


# ---------------------------------------------------------------------------------------------------------
# (b) a bad subject file or config stops the run at parse time, naming the file and the field


def _bad_subject_dir(tmp_path: Path, edit) -> Path:
    """A subjects folder holding a copy of motonms_unipd's subject file changed by ``edit(doc)``."""
    doc = subject_doc("motonms_unipd")
    edit(doc)
    folder = tmp_path / "subjects" / "motonms_unipd"
    folder.mkdir(parents=True)
    (folder / "subject.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path / "subjects"


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "pimsk workflow: error:" in ln]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(height_m=1730), "height_m"),                       # height in mm, not m
    (lambda d: d["trials"][1]["plates"].update({"1": "right"}), "trials.1.plates"),
    (lambda d: d["static"].update(file="${PIMSK_DATA}/no/such/Static1.c3d"), "static.file"),
    (lambda d: d.update(so={"activation_exponnent": 3}), "so.activation_exponnent"),  # a step setting misspelt
    (lambda d: d.update(so={"method": "fast"}), "so.method"),                 # not a method `pimsk so` has
    (lambda d: d["static"].update(muscles=["soleus_r"]), "static.muscles"),   # scaling takes no trial set-up
    (lambda d: d["ik"].update(whole_trial="yes"), "ik.whole_trial"),
], ids=["height_in_mm", "plate_side", "missing_c3d", "unknown_so_setting", "so_method", "static_setup",
        "ik_whole_trial"])
def test_invalid_subject_file_fails_at_parse_time(tmp_path: Path, data_dir: Path, edit, field: str) -> None:
    subjects = _bad_subject_dir(tmp_path, edit)
    proc = snakemake(tmp_path, "-n", "--config", f"subjects_dir={subjects}", "subjects=[motonms_unipd]",
                     "steps=[c3d,scale,ik,id,so]", timeout_s=60)  # step beyond would name subjects absent here
    line = _one_line_error(proc)
    assert str(subjects / "motonms_unipd" / "subject.yaml") in line
    assert f"field {field}:" in line
    assert not (tmp_path / "results").exists()  # nothing ran


def test_invalid_config_fails_at_parse_time(tmp_path: Path) -> None:
    line = _one_line_error(snakemake(tmp_path, "-n", "--config", "steps=[c3d,fly]", timeout_s=60))
    assert "config.yaml" in line and "field steps.1:" in line and "'fly' is not one of" in line
    line = _one_line_error(snakemake(tmp_path, "-n", "--config", "subjects=[nobody]", timeout_s=60))
    assert "nobody" in line and "field subjects:" in line and "subject.yaml" in line


# ---------------------------------------------------------------------------------------------------------
# (a) the dry run of the default config lists every job of every subject x trial


def test_dry_run_default_config_lists_every_subject_and_trial(tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    steps = config.get("steps", ["c3d", "scale", "ik", "id", "so"])
    proc = snakemake(tmp_path, "-n", "--printshellcmds", check=True, timeout_s=120)
    counts = job_counts(proc.stdout)
    expected: dict[str, int] = {}
    paths: list[str] = []
    for sid in config["subjects"]:
        doc = subject_doc(sid)
        static, dynamic = trial_names(doc)
        every = ([static] if static else []) + dynamic
        if "synth" in doc:
            expected[f"synth_{sid}"] = 1
            paths += [f"results/{sid}/synth/{t['file']}" for t in [doc["static"], *doc["trials"]]]
        for step in [s for s in steps if s not in ("learn", "beyond")]:
            trials = every if step == "c3d" else [] if step == "scale" else dynamic
            expected[step] = expected.get(step, 0) + (1 if step == "scale" else len(trials))
            paths += [f"results/{sid}/scale/" if step == "scale" else f"results/{sid}/{t}/{step}/" for t in trials]
            if step == "scale":
                paths.append(f"results/{sid}/scale/model_scaled.osim")
        learning = doc.get("learning")
        if "learn" in steps and learning is not None:  # the learning stage: one job per step, one per run
            lc = config["learning"]
            main_blocks = lc["network"].get("n_blocks", 4)
            n_runs = (len(lc["methods"])
                      + len(lc["training_size"]["methods"]) * len([f for f in lc["training_size"]["fractions"]
                                                                   if f < 1])
                      + len(lc["network_depth"]["methods"]) * len([n for n in lc["network_depth"]["n_blocks"]
                                                                   if n != main_blocks]))
            for rule, n in (("emg", 1), ("geometry", 1), ("dataset", 1), ("train", n_runs), ("evaluate", 3),
                            ("figures", 1), ("figures_truth", 1 if "synth" in doc else 0)):
                expected[rule] = expected.get(rule, 0) + n
            paths += [f"results/figures/{sid}/{name}.png" for name in ("predictions", "methods", "training_curves",
                                                                      "training_size", "network_depth")]
            paths += [f"results/learn/{sid}/runs/{m}" for m in lc["methods"]]
    if "beyond" in steps:  # step beyond: its helper subjects' synth, c3d, scale, ik jobs and its own jobs
        for rule, n in beyond_jobs(config).items():
            expected[rule] = expected.get(rule, 0) + n
        paths += [f"results/figures/beyond/{name}.png" for name in ("identification_parameters",
                                                                   "identification_forces", "label_free", "transfer")]
    expected = {k: n for k, n in expected.items() if n}
    expected["all"] = 1
    expected["total"] = sum(expected.values())
    assert counts == expected
    for p in paths:
        assert p in proc.stdout, f"{p} not in the dry run"
    # each job's command is one `pimsk` verb with its log under results/logs/
    shell_lines = [ln for ln in proc.stdout.splitlines()
                   if ln.startswith("Shell command:") and ln != "Shell command: None"]
    assert len(shell_lines) == expected["total"] - 1
    verbs = [re.findall(r"(?:^|&& )pimsk (\w+)", ln[len("Shell command:"):].strip()) for ln in shell_lines]
    assert all(len(v) == 1 for v in verbs), shell_lines
    assert sorted(v[0] for v in verbs) == sorted(
        _verb(k) for k, n in expected.items()
        if k not in ("all", "total") for _ in range(n))
    assert all("results/logs/" in ln for ln in shell_lines)
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def _verb(rule: str) -> str:
    """The `pimsk` verb of a rule: synth_<subject> -> synth, figures_truth -> figures, beyond_<verb> -> verb,
    beyond_<study>_figures -> figures."""
    if rule.startswith("beyond_"):
        return "figures" if rule.endswith("_figures") else rule[len("beyond_"):]
    return rule.split("_")[0] if rule.startswith(("synth_", "figures_")) else rule


def beyond_jobs(config: dict) -> dict[str, int]:
    """Jobs step beyond adds to a run of ``config`` whose steps cover c3d, scale and ik of the config's subjects
    (derived from the config's beyond section and the subject files, read as plain YAML)."""
    b = config["beyond"]
    ident, free = b["identify"]["subject"], b["label_free"].get("subject") or b["identify"]["subject"]
    tr = b["transfer"]
    uses = {"identify": [*dict.fromkeys([ident, free])], "transfer": [*tr["sources"], tr["target"]]}
    trials = {"identify": b["identify"]["trials"] + ([b["identify"]["mvc_trial"]] if b["identify"].get("mvc_trial")
                                                     else []), "transfer": tr["trials"]}
    helpers = [s for s in dict.fromkeys(uses["identify"] + uses["transfer"]) if s not in config["subjects"]]
    jobs: dict[str, int] = {f"synth_{s}": 1 for s in helpers}
    jobs["scale"] = len(helpers)
    for step in ("c3d", "ik"):
        pairs = {(s, t) for use, subjects in uses.items() for s in subjects if s in helpers for t in trials[use]}
        if step == "c3d":
            pairs |= {(s, subject_doc(s)["static"]["name"]) for s in helpers}
        jobs[step] = len(pairs)
    jobs["beyond_emg"] = jobs["beyond_dataset"] = sum(len(v) for v in uses.values())
    jobs["beyond_geometry"] = len({ident, free, tr["target"]}) + 1  # scaled models + the first source's generic
    jobs["beyond_identify"] = len({(ident, "identified"), (ident, "generic"), (free, "identified"),
                                   (free, "supervised")})
    jobs.update(beyond_transfer=1, beyond_identification_figures=1, beyond_label_free_figures=1,
                beyond_transfer_figures=1)
    return jobs


# ---------------------------------------------------------------------------------------------------------
# (c) a real short run: synth -> c3d -> scale -> ik -> id -> so on the demo wrist, one trial broken


def _demo_wrist_copy(tmp_path: Path, edit=None) -> Path:
    """A subjects folder holding demo_wrist's subject file (changed by ``edit(doc)``)."""
    doc = subject_doc("demo_wrist")
    if edit:
        edit(doc)
    folder = tmp_path / "subjects" / "demo_wrist"
    folder.mkdir(parents=True)
    (folder / "subject.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path / "subjects"


def _break_trial(doc: dict, name: str) -> None:
    """Rename one marker onto another in one trial: its conversion fails (two markers with one name)."""
    trial = next(t for t in doc["trials"] if t["name"] == name)
    markers = doc["scaling"]["measurements"][0]["marker_pairs"][0]
    trial["rename_markers"] = {markers[0]: markers[1]}


QUICK = ("synth_max_duration_s=1.0",)  # every synthetic trial cut to 1 s: a short run


def test_keep_going_a_failing_trial_keeps_the_others(tmp_path: Path) -> None:
    from pimsk.osim.storage import read_storage

    subjects = _demo_wrist_copy(tmp_path, lambda d: _break_trial(d, "flex_fast"))
    t0 = time.perf_counter()
    proc = snakemake(tmp_path, "--cores", "2", "--keep-going", "--config", f"subjects_dir={subjects}",
                     "subjects=[demo_wrist]", "steps=[c3d,scale,ik,id,so]", *QUICK, timeout_s=400)
    wall_s = time.perf_counter() - t0
    assert proc.returncode != 0, "the broken trial must fail the run"
    text = proc.stdout + proc.stderr
    assert "Error in rule c3d" in text and "results/logs/demo_wrist/flex_fast/c3d.log" in text
    log = (tmp_path / "results/logs/demo_wrist/flex_fast/c3d.log").read_text()
    assert "trial flex_fast" in log and "not unique after renaming" in log
    r = tmp_path / "results" / "demo_wrist"
    assert not (r / "flex_fast" / "c3d" / "markers.trc").exists()  # a failed job leaves no outputs
    assert not (r / "flex_fast" / "ik").exists()
    scale_total = [ln for ln in (r / "scale" / "marker_errors.tsv").read_text().splitlines() if ln.startswith("TOTAL")]
    assert scale_total and float(scale_total[0].split()[1]) < 0.02  # RMS (m) after placement
    truth = json.loads((r / "synth" / "truth" / "truth.json").read_text())["trials"]
    for trial in ("flex_slow", "flex_medium"):
        # IK covers the whole recording (the truth's coordinates), ID and SO the truth's analysis window: the
        # subject file's time_range_s cut to synth_max_duration_s as pimsk synth cut it
        q_true = read_storage(r / "synth" / truth[trial]["files"]["coordinates"])
        t0_s, t1_s = truth[trial]["analysis_window_s"]
        assert t1_s - t0_s == pytest.approx(1.0) and q_true.time_s[-1] > t1_s + 0.4  # shortened, padding kept
        q = read_storage(r / trial / "ik" / "coordinates.mot")
        assert q.time_s[0] == pytest.approx(q_true.time_s[0]) and q.time_s[-1] == pytest.approx(q_true.time_s[-1])
        assert "wrist_flexion_r" in q.labels
        moments = read_storage(r / trial / "id" / "moments.sto")
        assert moments.time_s[0] == pytest.approx(t0_s) and moments.time_s[-1] == pytest.approx(t1_s)
        assert "wrist_flexion_r_moment" in moments.labels
        forces = read_storage(r / trial / "so" / "so_StaticOptimization_force.sto")
        assert forces.time_s[0] == pytest.approx(t0_s) and forces.time_s[-1] == pytest.approx(t1_s)
        assert {"FCR", "FCU", "ECRL", "ECRB", "ECU"} <= set(forces.labels)
        assert (r / trial / "so" / "setup_so.xml").is_file()  # the resolved setup beside the result
        for step in ("c3d", "ik", "id", "so"):
            assert (tmp_path / "results" / "logs" / "demo_wrist" / trial / f"{step}.log").is_file()
            assert (tmp_path / "results" / "benchmarks" / "demo_wrist" / trial / f"{step}.tsv").is_file()
    assert not list(tmp_path.rglob("opensim.log"))
    print(f"keep-going run: {wall_s:.1f} s")

    # an edit of one trial's setting reruns that trial's affected jobs only (parameters, not file dates): the
    # muscles its model keeps concern SO (and CMC), not IK or ID
    original = (subjects / "demo_wrist" / "subject.yaml").read_text()
    doc = yaml.safe_load(original)
    next(t for t in doc["trials"] if t["name"] == "flex_slow")["muscles"] = ["FCR", "FCU", "ECRL", "ECRB"]
    (subjects / "demo_wrist" / "subject.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    dry = ("-n", "--config", f"subjects_dir={subjects}", "subjects=[demo_wrist]", "steps=[c3d,scale,ik,id,so]", *QUICK)
    proc = snakemake(tmp_path, *dry, timeout_s=60)
    assert proc.returncode == 0
    broken = {(step, "flex_fast") for step in ("c3d", "ik", "id", "so")}  # still to make
    assert planned_jobs(proc.stdout) == {("so", "flex_slow"), ("all", None)} | broken
    # a trial's analysis window is part of what pimsk synth records (the truth's window): the subject is remade
    doc = yaml.safe_load(original)
    next(t for t in doc["trials"] if t["name"] == "flex_slow")["time_range_s"] = [0.4, 4.5]
    (subjects / "demo_wrist" / "subject.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = snakemake(tmp_path, *dry, timeout_s=60)
    assert proc.returncode == 0 and ("synth_demo_wrist", None) in planned_jobs(proc.stdout)


# ---------------------------------------------------------------------------------------------------------
# (d) a run killed midway resumes without corrupt outputs


def _wait_for(predicate, proc: subprocess.Popen, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before the moment to kill it")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the moment to kill the run")


def _processes_in(folder: Path) -> list[str]:
    """Command lines of the processes whose working directory is inside ``folder`` (Linux /proc)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "cwd").startswith(str(folder)):
                    found.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux /proc to look for surviving processes")
def test_killed_run_resumes_without_corrupt_outputs(tmp_path: Path) -> None:
    from pimsk.io.trc import read_trc
    from pimsk.osim.storage import read_storage

    subjects = _demo_wrist_copy(tmp_path)
    args = ["--config", f"subjects_dir={subjects}", "subjects=[demo_wrist]", "steps=[c3d,scale,ik]", *QUICK]
    scale_dir = tmp_path / "results" / "demo_wrist" / "scale"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path), "--cores", "2", *args]
    with open(tmp_path / "first_run.log", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # kill the whole run (SIGKILL: no clean-up) once scaling has written its model and started its
            # marker-error pass (an OpenSim child process): the job is half done
            scale_log = tmp_path / "results" / "logs" / "demo_wrist" / "scale.log"
            _wait_for(lambda: scale_log.exists() and "=== pimsk scale-marker-errors" in scale_log.read_text()
                      and (scale_dir / "model_scaled.osim").exists(), proc, timeout_s=120)
            time.sleep(0.05)  # the marker-error child is starting (importing opensim takes longer than this)
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = time.time()
        finally:
            proc.wait(timeout=30)
    assert not (scale_dir / "marker_errors.tsv").exists(), "killed too late: the job had finished"
    time.sleep(0.05)
    assert _processes_in(tmp_path) == [], "a process of the killed run lives on (an orphaned OpenSim child)"
    assert (scale_dir / "model_scaled.osim").exists()  # a half-finished job's output is on disk ...
    proc = snakemake(tmp_path, "-n", *args, timeout_s=60)
    assert proc.returncode != 0 and "incomplete" in (proc.stdout + proc.stderr).lower()  # ... and not trusted

    # a hard kill leaves Snakemake's lock behind: unlock (as its message says), then rerun with the local
    # profile (rerun-incomplete, keep-going)
    assert snakemake(tmp_path, "--unlock", *args, timeout_s=60).returncode == 0
    profile = PROJECT_ROOT / "workflow" / "profiles" / "local"
    proc = snakemake(tmp_path, "--profile", str(profile), *args, timeout_s=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (scale_dir / "model_scaled.osim").stat().st_mtime > killed_at  # redone, not kept
    # the run ends by saying where results, figures and report are; the report exists
    report = tmp_path / "results" / "report.html"
    assert f"pimsk: report   {report}" in proc.stdout + proc.stderr and report.stat().st_size > 0
    assert f"pimsk: results  {tmp_path / 'results'}/<subject>/<trial>/<step>/" in proc.stdout + proc.stderr
    assert ET.parse(scale_dir / "model_scaled.osim").getroot().find("Model") is not None
    assert any(ln.startswith("TOTAL") for ln in (scale_dir / "marker_errors.tsv").read_text().splitlines())
    for trial in ("flex_slow", "flex_medium", "flex_fast"):
        q = read_storage(tmp_path / "results" / "demo_wrist" / trial / "ik" / "coordinates.mot")
        markers = read_trc(tmp_path / "results" / "demo_wrist" / trial / "c3d" / "markers.trc")
        assert q.data.shape[0] == markers.xyz.shape[0] and q.data.shape[0] > 50
    proc = snakemake(tmp_path, "-n", *args, timeout_s=60)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------------
# (e) the workflow's labels are the validation path's (pimsk.validate.process), and meet the [F3] limits


LABEL_FILES = ("ik/coordinates.mot", "id/moments.sto", "so/so_StaticOptimization_force.sto",
               "so/so_StaticOptimization_activation.sto", "cmc/cmc_Actuation_force.sto", "cmc/cmc_states.sto")


def _demo_leg_knee_pair(tmp_path: Path) -> Path:
    """demo_leg's subject file with its static and determinate (knee_pair) trials only; its subject file."""
    doc = subject_doc("demo_leg")
    doc["trials"] = [t for t in doc["trials"] if t["name"] == "knee_pair"]
    doc["synth"]["trials"] = {k: v for k, v in doc["synth"]["trials"].items() if k in ("static", "knee_pair")}
    path = tmp_path / "subjects" / "demo_leg" / "subject.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _model_xml(path: Path) -> tuple[dict[str, tuple[bool, float]], list[str], float]:
    """(coordinate -> (locked, default value), muscle names, total body mass in kg) of an .osim file."""
    root = ET.parse(path).getroot()
    coords = {c.get("name"): ((c.findtext("locked") or "false").strip() == "true",
                              float(c.findtext("default_value") or 0.0)) for c in root.iter("Coordinate")}
    muscles = [m.get("name") for m in root.iter() if m.tag.endswith("Muscle") and m.get("name")]
    mass = sum(float(b.findtext("mass")) for b in root.iter("Body"))
    return coords, muscles, mass


def test_workflow_labels_are_the_validation_paths(tmp_path: Path, opensim_module) -> None:
    """demo_leg knee_pair (one agonist-antagonist pair), analysis window cut to 2 s as in
    tests/integration/test_demo_truth.py: the workflow (synth -> c3d -> scale -> ik -> id -> so -> cmc) and
    pimsk.validate.process on the same synthetic recording give the same numbers in every label file, the
    trial's model is the subject file's set-up, and `pimsk validate` finds every [F3] limit met."""
    import math
    import shutil

    import numpy as np

    from pimsk.cli import main
    from pimsk.osim.storage import read_storage
    from pimsk.validate.process import process_subject

    subject_file = _demo_leg_knee_pair(tmp_path)
    doc = yaml.safe_load(subject_file.read_text())
    setup = doc["synth"]["trials"]["knee_pair"]
    wf_root = tmp_path / "wf"
    t0 = time.perf_counter()
    snakemake(wf_root, "--cores", "2", "--config", f"subjects_dir={subject_file.parent.parent}", "subjects=[demo_leg]",
              "steps=[c3d,scale,ik,id,so,cmc]", "synth_max_duration_s=2.0", check=True, timeout_s=600)
    wf_s = time.perf_counter() - t0
    wf = wf_root / "results" / "demo_leg"

    # the validation path on the workflow's synthetic recording (synth/ copied: one recording, two processings)
    vp = tmp_path / "vp" / "demo_leg"
    shutil.copytree(wf / "synth", vp / "synth")
    t0 = time.perf_counter()
    process_subject(subject_file, vp.parent, steps=("c3d", "scale", "ik", "id", "so", "cmc"))
    vp_s = time.perf_counter() - t0

    # the scaled model holds the leg's share of the body mass (the truth's), not the whole body's
    truth = json.loads((wf / "synth" / "truth" / "truth.json").read_text())
    _, _, wf_mass = _model_xml(wf / "scale" / "model_scaled.osim")
    assert wf_mass == pytest.approx(truth["model_mass_kg"], rel=1e-9) and wf_mass < 0.5 * doc["mass_kg"]
    assert _model_xml(vp / "scale" / "model_scaled.osim")[2] == pytest.approx(wf_mass, rel=1e-12)

    # every step of the trial ran on the trial's model: the subject file's locked coordinates, SO/CMC its muscles
    for step in ("ik", "id", "so", "cmc"):
        coords, muscles, _ = _model_xml(wf / "knee_pair" / step / "model_trial.osim")
        for name, deg in setup["locked_coordinates_deg"].items():
            assert coords[name][0] and coords[name][1] == pytest.approx(math.radians(deg), abs=1e-12), (step, name)
        assert not coords["knee_angle_r"][0]
        if step in ("so", "cmc"):
            assert sorted(muscles) == sorted(setup["muscles"]), step

    # the same numbers in every label file
    for rel in LABEL_FILES:
        a, b = read_storage(wf / "knee_pair" / rel), read_storage(vp / "knee_pair" / rel)
        assert a.labels == b.labels, rel
        np.testing.assert_array_equal(a.time_s, b.time_s, err_msg=rel)
        np.testing.assert_array_equal(a.data, b.data, err_msg=rel)

    # pimsk validate on the workflow's results: every quantity with an [F3] limit is there and meets it
    report = tmp_path / "validation.json"
    assert main(["validate", "--subject-file", str(subject_file), "--results", str(wf), "--fail-on-miss",
                 "--json", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    compared = {(r["step"], r["item"]) for r in rows}
    assert compared == ({("scale", b) for b in doc["synth"]["scale_factors"]} | {("ik", "knee_angle_r"),
                        ("id", "knee_angle_r")} | {(s, m) for s in ("so", "cmc") for m in setup["muscles"]})
    assert all(r["passed"] is True for r in rows), [r for r in rows if not r["passed"]]
    vp_report = tmp_path / "validation_vp.json"
    assert main(["validate", "--results", str(vp), "--json", str(vp_report)]) == 0
    assert json.loads(vp_report.read_text())["rows"] == rows
    print(f"workflow {wf_s:.1f} s, validation path {vp_s:.1f} s; "
          + ", ".join(f"{r['step']}/{r['item']} {r['error']:.2f} {r['error_unit']}" for r in rows))


# ---------------------------------------------------------------------------------------------------------
# profiles: every key is a Snakemake option (the local one runs in the kill-and-resume test above)


@pytest.mark.parametrize("name", ["local", "slurm"])
def test_profiles_use_only_snakemake_options(name: str) -> None:
    from snakemake.cli import get_argument_parser

    known = {s[2:] for a in get_argument_parser()._actions for s in a.option_strings if s.startswith("--")}
    profile = yaml.safe_load((PROJECT_ROOT / "workflow" / "profiles" / name / "config.yaml").read_text())
    assert set(profile) <= known, sorted(set(profile) - known)
    assert profile["keep-going"] is True and profile["rerun-incomplete"] is True
    if name == "slurm":
        assert profile["executor"] == "slurm"
        rules = {"c3d", "scale", "ik", "id", "so", "cmc"}
        assert set(profile.get("set-resources", {})) <= rules
