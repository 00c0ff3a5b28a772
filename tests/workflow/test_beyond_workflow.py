"""Step beyond of the workflow ([F6]: parameter identification, label-free training, transfer to an unseen subject)
run as a user runs it, `snakemake` in a subprocess with its working directory in a tmp folder.

(a) the dry run plans exactly the jobs the config's beyond section and the subject files call for (counted here
from plain YAML), one `pimsk` verb each, the identify configs' relative paths pointing at the files the workflow
makes; (b) a bad beyond section stops the run at parse time with one line naming the field; (c) a real short run of
the identification study (demo_wrist_id cut to short trials, 2 epochs): both figures, the tables, and the generic
scaled model's errors against the truth equal the subject file's perturbations (true = generic scaled x (1 + pct /
100), so the generic's error is 1 / (1 + pct / 100) - 1)."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from pimsk.paths import PROJECT_ROOT

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import CONFIG, _one_line_error, beyond_jobs, job_counts, snakemake, subject_doc  # noqa: E402

FIGURES = ("identification_parameters", "identification_forces", "label_free", "transfer")


def test_dry_run_plans_every_study_and_only_the_stages_it_needs(tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["subjects"] = ["demo_leg"]  # no beyond subject among the config's: every one is a helper subject
    proc = snakemake(tmp_path, "-n", "--printshellcmds", "--config", "subjects=[demo_leg]", "steps=[beyond]",
                     check=True, timeout_s=120)
    expected = beyond_jobs(config)
    expected = {k: n for k, n in expected.items() if n}
    expected["all"] = 1
    expected["total"] = sum(expected.values())
    assert job_counts(proc.stdout) == expected  # no id, so, cmc or learning jobs, nothing of demo_leg
    for name in FIGURES:
        assert f"results/figures/beyond/{name}.png" in proc.stdout
    shells = [ln[len("Shell command:"):].strip() for ln in proc.stdout.splitlines()
              if ln.startswith("Shell command:") and ln != "Shell command: None"]
    identify = [s for s in shells if "pimsk identify" in s]
    flags = sorted("--no-identify" if "--no-identify" in s else "--supervised" if "--supervised" in s else "label-free"
                   for s in identify)
    assert flags == ["--no-identify", "--supervised", "label-free"]
    b = config["beyond"]
    assert all(f"--fold {b['identify']['test_trial']}" in s for s in identify)
    transfer = next(s for s in shells if "pimsk transfer" in s)
    assert f"--fraction {float(b['transfer']['fraction'])!r}" in transfer
    # the identify config's relative paths, resolved from its own folder as `pimsk identify` does, are the files
    # the workflow makes (the scaled model of the subject, its surrogate, its MVC envelopes)
    text = re.search(r"printf '%s\\n' '(\{.*?\})' > (\S+) &&", identify[0])
    doc, config_file = json.loads(text.group(1)), Path(text.group(2))
    sid = b["identify"]["subject"]
    resolved = {k: os.path.normpath(config_file.parent / v) for k, v in doc["physics"].items()
                if k in ("surrogate", "muscle_parameters", "chain")}
    assert resolved == {"surrogate": f"results/beyond/{sid}/geometry/scaled.json",
                        "muscle_parameters": f"results/{sid}/scale/model_scaled_degroote.osim",
                        "chain": f"results/{sid}/scale/model_scaled_degroote.osim"}
    assert os.path.normpath(config_file.parent / doc["mvc"]["envelopes"]) == \
        f"results/beyond/{sid}/identify/emg/{b['identify']['mvc_trial']}_envelopes.sto"
    mvc = next(t for t in subject_doc(sid)["trials"] if t["name"] == b["identify"]["mvc_trial"])
    assert doc["mvc"]["window_s"] == mvc["time_range_s"]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("setting, field, phrase", [
    ("beyond={'identify':{'test_trial':'fast_z'}}", "beyond.identify.test_trial", "not one of the identify trials"),
    ("beyond={'transfer':{'target':'demo_wrist'}}", "beyond.transfer.target", "the target is one of the sources"),
    ("beyond={'transfer':{'fraction':1.5}}", "beyond.transfer.fraction", "1.5"),
    ("beyond={'identify':{'trials':['fast_a','fast_q']}}", "beyond.identify.trials", "fast_q"),
], ids=["test_trial", "target_is_source", "fraction", "unknown_trial"])
def test_bad_beyond_section_fails_at_parse_time(tmp_path: Path, setting: str, field: str, phrase: str) -> None:
    # --config merges into the config file's beyond section: only the named key changes
    proc = snakemake(tmp_path, "-n", "--config", "steps=[beyond]", setting, timeout_s=60)
    line = _one_line_error(proc)
    assert f"field {field}:" in line and phrase in line, line


SHORT = {"identify": {"settings": {"max_epochs": 2}, "samples": {"kind": "window", "length": 100, "stride": 50},
                      "network": {"n_blocks": 1, "channels": 4, "kernel_size": 3, "fc_hidden": [8], "dropout": 0.0}},
         "geometry": {"n_samples": 60}}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.opensim
def test_identification_study_runs_and_scores_against_the_truth(tmp_path: Path, opensim_module) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config = {**config, "subjects": ["demo_leg"], "steps": ["beyond"], "synth_max_duration_s": 2.5,
              "beyond": _merge(config["beyond"], SHORT)}
    cfg_file = tmp_path / "short.yaml"
    cfg_file.write_text(yaml.safe_dump(config))
    t0 = time.perf_counter()
    proc = snakemake(tmp_path / "wf", "--cores", "2", "--configfile", str(cfg_file), "--",
                     "beyond_identification_figures", timeout_s=900)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = tmp_path / "wf" / "results"
    for name in ("identification_parameters", "identification_forces"):
        assert (res / "figures" / "beyond" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the report of the target (a run of one target makes no report of the whole config at its end)
    snakemake(tmp_path / "wf", "--configfile", str(cfg_file), "--report", str(tmp_path / "report.html"), "--",
              "beyond_identification_figures", timeout_s=300, check=True)
    html = (tmp_path / "report.html").read_text(errors="replace")  # both figures, in their category
    assert "identification_parameters.png" in html and "identification_forces.png" in html
    assert "Parameter identification" in html
    b = config["beyond"]["identify"]
    with (res / "beyond" / "identification" / "parameters.csv").open() as fh:
        params = list(csv.DictReader(fh))
    perturbation = subject_doc(b["subject"])["synth"]["muscle_perturbation_pct"]
    checked = 0
    for row in params:
        name = {"max_isometric_force_n": "max_isometric_force", "optimal_fiber_length_m": "optimal_fiber_length",
                "tendon_slack_length_m": "tendon_slack_length"}[row["parameter"]]
        pct = perturbation.get(row["muscle"], {}).get(name, 0.0)
        expected_error = 100.0 * (1.0 / (1.0 + pct / 100.0) - 1.0)
        # the generic is the workflow's own scaled model (pimsk scale from the static trial's markers)
        assert float(row["generic_error_pct"]) == pytest.approx(expected_error, abs=3.0), row
        checked += 1
    true_fields = ("max_isometric_force_n", "optimal_fiber_length_m", "tendon_slack_length_m")
    identified = (b.get("settings") or {}).get("parameters") or true_fields  # the table: identified ones with a truth
    assert checked == len([f for f in identified if f in true_fields]) * len(b["muscles"])
    assert any(abs(float(r["identified"]) - float(r["generic"])) > 1e-6 * abs(float(r["generic"])) for r in params)
    with (res / "beyond" / "identification" / "forces.csv").open() as fh:
        forces = {(r["method"], r["muscle"]): r for r in csv.DictReader(fh)}
    for method in ("identified_ode", "generic_ode"):
        for m in [*b["muscles"], "mean"]:
            assert 0.0 < float(forces[(method, m)]["rmse_n"]) < float("inf")
            assert -1.0 <= float(forces[(method, m)]["r"]) <= 1.0
    print(f"identification study, short: {seconds:.0f} s")
