"""One comparison table: PI-CNN beside the CNN (lambda = 0), ELM, ML-ELM and SVR, same splits and seeds.

Subjects (labels from the OpenSim stage: ``snakemake --config subjects=[...] steps=[c3d,scale,ik,id,so]``):

* ``motonms_unipd`` (real walking, gait2392): one right gait cycle per walk (its ``time_range_s``, clipped to the
  IK/SO samples, about one frame) normalised to 100 frames; leave-one-trial-out over the 5 walks, one of the other
  4 walks validates (picked from the seed). Inputs: 15 EMG envelopes (``pimsk emg``, peak over the 5 walks,
  40 ms electromechanical delay); outputs: knee angle (IK) and the 13 right-knee muscle forces (SO). Physics: knee
  moment balance against the ID knee moment (``moment_source: target``; hip and ankle angles from IK) and muscle
  consistency for the 9 knee muscles with an electrode; path surrogate of the scaled model (``pimsk geometry``,
  walking ranges).
* ``demo_wrist`` (synthetic, known truth): 3 wrist flexion trials; windows of 50 frames (0.25 s) every 25;
  leave-one-trial-out, the last 20 % of each training trial validates. Outputs: wrist angle (IK) and 5 wrist
  muscle forces (SO); physics: open-chain dynamics of the hand (``moment_source: dynamics``), muscle consistency.
* ``demo_leg`` (synthetic): the redundant seated knee flexion/extension trial; windows of 50 frames (0.5 s) every
  25; within-trial chronological split (first 64 % train, next 16 % validation, last 20 % test). Outputs: knee
  angle and the 10 knee muscle forces; physics: knee moment balance against ID (hip 60 deg, ankle 0 locked).

On the demo subjects every model is also scored against the TRUE forces of the synthetic subject (``truth_*``).
Muscle residuals are normalised by the RMS of each muscle's training labels (``force_scale: labels``: with f_max a
weakly activated task gives a term of ~1e-4 beside a data term of ~1). Hyperparameters (lambda and the weight of
the muscle term of the PI-CNN, C of the baselines) are chosen per fold on the validation samples only
(run config ``search``); the test fold is only read by the evaluation. Everything goes through ``pimsk.learn``
(``run_training``, ``evaluate_runs``).

Writes ``<out>/compare_methods.json`` and ``.csv`` (one row per subject, method, output: mean and SD over folds
and seeds of nRMSE and r, and against the truth), per-subject runs/evaluations under ``<out>/compare_methods/``,
and prints the table (markdown) and the PI-CNN vs CNN verdict with the label-violation figures.

Run: ``python bench/compare_methods.py [--subjects motonms_unipd demo_wrist demo_leg] [--seeds 0 1 2]
[--methods picnn cnn elm mlelm svr] [--max-epochs 100] [--out results/bench]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pimsk.cli import main as pimsk_main  # noqa: E402
from pimsk.config import load_subject, resolve_path  # noqa: E402
from pimsk.io.containers import Table  # noqa: E402
from pimsk.io.storage import read_storage  # noqa: E402
from pimsk.learn.datasets import DatasetWarning, build_trial, concat, gait_cycles, sliding_windows  # noqa: E402
from pimsk.learn.evaluate import evaluate_runs, model_folders  # noqa: E402
from pimsk.learn.metrics import output_metrics, write_csv  # noqa: E402
from pimsk.learn.train import assets_from_config, run_training  # noqa: E402

METHODS = ("picnn", "cnn", "elm", "mlelm", "svr")
GAIT_KNEE = ["rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
             "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r"]
LEG_KNEE = ["rect_fem_r", "vas_int_r", "vas_lat_r", "vas_med_r", "bifemlh_r", "bifemsh_r", "semimem_r",
            "semiten_r", "med_gas_r", "lat_gas_r"]
WRIST = ["FCR", "FCU", "ECRL", "ECRB", "ECU"]
HIP = ["hip_flexion_r", "hip_adduction_r", "hip_rotation_r"]

#: shared by the PI-CNN and the CNN (small: 2 shared CPU cores)
NETWORK = {"n_blocks": 3, "channels": 16, "kernel_size": 5, "fc_hidden": [32], "dropout": 0.1}
TRAINING = {"batch_size": 8, "learning_rate": 3e-3, "patience": 15, "threads": 1}
LAMBDAS = [0.3, 3.0]
#: weight of the muscle-consistency term, searched with lambda (0: moment balance only): where the labels
#: themselves violate the EMG-driven muscle model (SO labels of real walking) validation can switch it off
MUSCLE_WEIGHTS = [0.0, 1.0]
BASELINE_LAGS = [0, 3, 6]

log = logging.getLogger("bench.compare_methods")


# --------------------------------------------------------------------------------------------- helpers
def _renamed(table: Table, prefix: str) -> Table:
    return Table(table.time_s, table.data, [prefix + c for c in table.labels], name=table.name,
                 in_degrees=table.in_degrees, meta=dict(table.meta))


def _envelopes(raw: list[Path], names: list[str], kin: list[Path], out: Path, subject: str) -> None:
    """``pimsk emg`` once per subject: one reference (peak over its trials), 40 ms delay, at the IK times."""
    if all((out / f"{n}_envelopes.sto").is_file() for n in names):
        return
    rc = pimsk_main(["emg", *map(str, raw), "--out-dir", str(out), "--trial-names", *names, "--delay-s", "0.04",
                     "--times-from", *map(str, kin), "--subject", subject])
    if rc != 0:
        raise SystemExit(f"pimsk emg failed for {subject}")


def _surrogate(model: Path, muscles: list[str], coords: list[str], ranges: dict[str, str], out: Path,
               n_samples: int) -> Path:
    """``pimsk geometry`` once per subject (cached): path surrogate of the scaled model."""
    if out.is_file():
        return out
    args = ["geometry", str(model), "--muscles", *muscles, "--coordinates", *coords, "--n-samples", str(n_samples),
            "--moment-arms", "difference", "--out", str(out), "--report", str(out.with_suffix(".csv"))]
    for c, r in ranges.items():
        args += ["--range", f"{c}={r}"]
    if pimsk_main(args) != 0:
        raise SystemExit(f"pimsk geometry failed for {model}")
    return out


def _need(path: Path) -> Path:
    if not path.is_file():
        raise SystemExit(f"missing pipeline output {path}: run the OpenSim stage first (see the module docstring)")
    return path


# -------------------------------------------------------------------------------------------- subjects
def motonms(results: Path, prep: Path) -> dict[str, Any]:
    sid = "motonms_unipd"
    subject = load_subject(ROOT / "subjects" / sid / "subject.yaml")
    res = results / sid
    trials = [t for t in subject["trials"] if t.get("task") == "walking"]
    names = [t["name"] for t in trials]
    _envelopes([_need(res / n / "c3d" / "emg_raw.sto") for n in names], names,
               [_need(res / n / "ik" / "coordinates.mot") for n in names], prep / "emg", sid)
    model = _need(res / "scale" / "model_scaled.osim")
    sur = _surrogate(model, GAIT_KNEE, [*HIP, "knee_angle_r", "ankle_angle_r"],
                     {"hip_flexion_r": "-40:80", "hip_adduction_r": "-30:30", "hip_rotation_r": "-40:40",
                      "knee_angle_r": "-120:10", "ankle_angle_r": "-50:40"}, prep / "surrogate.json", 3000)
    sets, clipped = [], {}
    for t in trials:
        n = t["name"]
        tr = build_trial(n, read_storage(prep / "emg" / f"{n}_envelopes.sto"),
                         [(read_storage(res / n / "ik" / "coordinates.mot"), ["knee_angle_r", *HIP, "ankle_angle_r"]),
                          (read_storage(_need(res / n / "so" / "so_StaticOptimization_force.sto")), GAIT_KNEE),
                          (read_storage(_need(res / n / "id" / "moments.sto")), ["knee_angle_r_moment"])])
        a, b = (float(x) for x in t["time_range_s"])
        a2, b2 = max(a, float(tr.time_s[0])), min(b, float(tr.time_s[-1]))
        clipped[n] = {"time_range_s": [a, b], "used_s": [a2, b2]}
        sets.append(gait_cycles(tr, [(a2, b2)], n_frames=100, strict=True))
    samples = concat(sets)
    physics = {"surrogate": str(sur), "muscle_parameters": str(model), "moment_source": "target", "force_scale": "labels", "clamp_to_surrogate_range": True,
               "moment_columns": {"knee_angle_r": "knee_angle_r_moment"},
               "label_coordinates": {c: c for c in [*HIP, "ankle_angle_r"]}}
    return {"samples": samples, "outputs": ["knee_angle_r", *GAIT_KNEE], "physics": physics,
            "protocol": {"name": "leave_one_trial_out", "n_val_trials": 1}, "truth": {},
            # 3 training cycles = one optimiser step per epoch: a larger step than the windowed demos
            "training": {"learning_rate": 1e-2},
            "notes": {"cycles": clipped, "labels": "SO (OpenSim, Thelen muscles of gait2392)"}}


def _demo_trials(results: Path, prep: Path, sid: str, trial_names: list[str], coords: list[str], muscles: list[str],
                 moment: str | None) -> tuple[list, dict]:
    subject = load_subject(ROOT / "subjects" / sid / "subject.yaml")
    res = results / sid
    by_name = {t["name"]: t for t in subject["trials"]}
    _envelopes([_need(res / n / "c3d" / "emg_raw.sto") for n in trial_names], trial_names,
               [_need(res / n / "ik" / "coordinates.mot") for n in trial_names], prep / "emg", sid)
    trials = []
    for n in trial_names:
        tables = [(read_storage(res / n / "ik" / "coordinates.mot"), coords),
                  (read_storage(_need(res / n / "so" / "so_StaticOptimization_force.sto")), muscles),
                  (_renamed(read_storage(_need(res / "synth" / "truth" / n / "forces.sto")), "true:"),
                   [f"true:{m}" for m in muscles])]
        if moment:
            tables.append((read_storage(_need(res / n / "id" / "moments.sto")), [moment]))
        trials.append(build_trial(n, read_storage(prep / "emg" / f"{n}_envelopes.sto"), tables,
                                  time_range_s=tuple(by_name[n]["time_range_s"])))
    return trials, {m: f"true:{m}" for m in muscles}


def demo_wrist(results: Path, prep: Path) -> dict[str, Any]:
    sid = "demo_wrist"
    names = ["flex_slow", "flex_medium", "flex_fast"]
    trials, truth = _demo_trials(results, prep, sid, names, ["wrist_flexion_r"], WRIST, "wrist_flexion_r_moment")
    model = _need(results / sid / "scale" / "model_scaled_degroote.osim")
    sur = _surrogate(model, WRIST, ["wrist_flexion_r"], {}, prep / "surrogate.json", 300)
    samples = concat([sliding_windows(t, 50, 25) for t in trials])
    # moment reference: the ID moment the SO labels were solved against (IK low-passed at 10 Hz, subject file);
    # the open-chain dynamics of the unfiltered 200 Hz IK angles differ from it by 0.53 N m RMS (0.96 of the
    # normalised term: finite-difference accelerations of IK noise), so the labels would violate it
    physics = {"surrogate": str(sur), "muscle_parameters": str(model), "moment_source": "target", "force_scale": "labels", "clamp_to_surrogate_range": True,
               "moment_columns": {"wrist_flexion_r": "wrist_flexion_r_moment"}}
    return {"samples": samples, "outputs": ["wrist_flexion_r", *WRIST], "physics": physics,
            "protocol": {"name": "leave_one_trial_out", "val_fraction": 0.2}, "truth": truth,
            "notes": {"labels": "SO (passive method, DeGroote, equilibrium tendon)"}}


def demo_leg(results: Path, prep: Path) -> dict[str, Any]:
    sid = "demo_leg"
    trials, truth = _demo_trials(results, prep, sid, ["knee_flexext"], ["knee_angle_r"], LEG_KNEE,
                                 "knee_angle_r_moment")
    model = _need(results / sid / "scale" / "model_scaled_degroote.osim")
    sur = _surrogate(model, LEG_KNEE, ["hip_flexion_r", "knee_angle_r", "ankle_angle_r"],
                     {"hip_flexion_r": "40:80", "knee_angle_r": "-120:10", "ankle_angle_r": "-20:20"},
                     prep / "surrogate.json", 1500)
    samples = concat([sliding_windows(t, 50, 10) for t in trials])  # one 400-frame trial: stride 10
    physics = {"surrogate": str(sur), "muscle_parameters": str(model), "moment_source": "target", "force_scale": "labels", "clamp_to_surrogate_range": True,
               "moment_columns": {"knee_angle_r": "knee_angle_r_moment"},
               "fixed_coordinates_rad": {"hip_flexion_r": math.radians(60.0), "ankle_angle_r": 0.0}}
    return {"samples": samples, "outputs": ["knee_angle_r", *LEG_KNEE], "physics": physics,
            "protocol": {"name": "within_trial", "train_fraction": 0.8, "val_fraction": 0.2}, "truth": truth,
            "notes": {"labels": "SO (passive method, DeGroote, equilibrium tendon)"}}


SUBJECTS = {"motonms_unipd": motonms, "demo_wrist": demo_wrist, "demo_leg": demo_leg}


# ---------------------------------------------------------------------------------------------- configs
def run_config(method: str, setup: dict[str, Any], seeds: list[int], max_epochs: int) -> dict[str, Any]:
    """The run config of one method (shared: outputs, protocol, seeds; search on validation data only)."""
    base = {"method": method, "seeds": seeds, "outputs": setup["outputs"], "protocol": setup["protocol"]}
    if method in ("picnn", "cnn"):
        base.update(network=dict(NETWORK), training={**TRAINING, "max_epochs": max_epochs, **setup.get("training", {})},
                    physics=dict(setup["physics"]))
        if method == "picnn":
            base["search"] = {"loss.lambda": list(LAMBDAS), "loss.physics_muscle": list(MUSCLE_WEIGHTS)}
        else:
            base["loss"] = {"lambda": 0.0}
        return base
    if method == "elm":
        base.update(baseline={"n_hidden": 200, "lags": BASELINE_LAGS}, search={"baseline.C": [0.1, 1.0, 10.0, 100.0]})
    elif method == "mlelm":
        base.update(baseline={"hidden": [64, 64], "n_hidden": 200, "lags": BASELINE_LAGS},
                    search={"baseline.C": [0.1, 1.0, 10.0, 100.0]})
    elif method == "svr":
        base.update(baseline={"lags": BASELINE_LAGS, "max_frames": 3000}, search={"baseline.C": [1.0, 10.0]})
    else:
        raise SystemExit(f"unknown method {method}")
    return base


# ------------------------------------------------------------------------------------------- evaluation
def _mean_sd(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def truth_rows(samples, eval_dir: Path, truth: dict[str, str]) -> list[dict[str, Any]]:
    """Metrics of every saved prediction against the TRUE forces (synthetic subjects)."""
    rows = []
    for f in sorted((eval_dir / "predictions").rglob("*.npz")):
        with np.load(f) as d:
            labels = [str(x) for x in d["labels"]]
            keep = [k for k, lab in enumerate(labels) if lab in truth]
            cols = [samples.target_labels.index(truth[labels[k]]) for k in keep]
            true = samples.targets[d["indices"]][..., cols]
            for r in output_metrics(true, d["pred"][..., keep], [labels[k] for k in keep]):
                rows.append({"run": f.relative_to(eval_dir / "predictions").parts[0],
                             "seed": f.stem.removeprefix("seed_"), **r})
    return rows


def summarise(subject: str, eval_dir: Path, truth: list[dict[str, Any]], outputs: list[str],
              methods: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """Mean and SD over folds x ``seeds`` per method and output (models of other seeds are left out)."""
    import csv

    keep = {str(s) for s in seeds}
    with (eval_dir / "metrics.csv").open() as fh:
        metrics = [r for r in csv.DictReader(fh) if r["seed"] in keep]
    truth = [r for r in truth if r["seed"] in keep]
    out = []
    for m in methods:
        for o in outputs:
            lab = [r for r in metrics if r["run"] == m and r["output"] == o]
            tru = [r for r in truth if r["run"] == m and r["output"] == o]
            row = {"subject": subject, "method": m, "output": o, "n": len(lab)}
            for key in ("nrmse", "r", "rmse"):
                row[f"{key}_mean"], row[f"{key}_sd"] = _mean_sd([float(r[key]) for r in lab])
                if tru:
                    row[f"truth_{key}_mean"], row[f"truth_{key}_sd"] = _mean_sd([float(r[key]) for r in tru])
            out.append(row)
    return out


def physics_facts(run_dir: Path) -> dict[str, Any]:
    """Mean over folds/seeds of the training labels' physics violation, and the chosen lambdas."""
    import csv

    viol: dict[str, list[float]] = defaultdict(list)
    for f in run_dir.rglob("physics.json"):
        for k, v in json.loads(f.read_text()).get("label_violation_train", {}).items():
            viol[k].append(float(v))
    chosen = []
    if (run_dir / "summary.csv").is_file():
        with (run_dir / "summary.csv").open() as fh:
            for r in csv.DictReader(fh):
                chosen.append({k: v for k, v in r.items() if k.startswith("chosen:") or k in ("fold", "seed",
                                                                                                 "seconds",
                                                                                                 "best_epoch")})
    return {"label_violation_train_mean": {k: float(np.nanmean(v)) for k, v in viol.items()}, "chosen": chosen}


def verdict(rows: list[dict[str, Any]], subject: str, key: str = "nrmse_mean") -> dict[str, Any]:
    pi = {r["output"]: r for r in rows if r["subject"] == subject and r["method"] == "picnn"}
    cnn = {r["output"]: r for r in rows if r["subject"] == subject and r["method"] == "cnn"}
    common = [o for o in pi if o in cnn and np.isfinite(pi[o].get(key, np.nan))]
    if not common:
        return {}
    diff = {o: pi[o][key] - cnn[o][key] for o in common}
    mean_pi = float(np.mean([pi[o][key] for o in common]))
    mean_cnn = float(np.mean([cnn[o][key] for o in common]))
    return {"metric": key, "picnn_mean": mean_pi, "cnn_mean": mean_cnn, "better_on_mean": mean_pi < mean_cnn,
            "worse_outputs": sorted(o for o, d in diff.items() if d > 0),
            "worse_beyond_1sd": sorted(o for o, d in diff.items()
                                       if d > (cnn[o].get(key.replace("mean", "sd"), 0.0) or 0.0)),
            "diff_per_output": diff}


# ---------------------------------------------------------------------------------------------- tables
def markdown(rows: list[dict[str, Any]], methods: list[str], truth: bool = False) -> str:
    pre = "truth_" if truth else ""
    lines = ["| subject | output | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    keyed = {(r["subject"], r["output"], r["method"]): r for r in rows}
    seen = list(dict.fromkeys((r["subject"], r["output"]) for r in rows))
    for s, o in seen:
        cells = []
        for m in methods:
            r = keyed.get((s, o, m))
            if r is None or f"{pre}nrmse_mean" not in r:
                cells.append("-")
                continue
            cells.append(f"{r[pre + 'nrmse_mean']:.3f} ± {r[pre + 'nrmse_sd']:.3f} / "
                         f"{r[pre + 'r_mean']:.2f} ± {r[pre + 'r_sd']:.2f}")
        if all(c == "-" for c in cells):
            continue
        lines.append(f"| {s} | {o} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", nargs="+", default=list(SUBJECTS), choices=list(SUBJECTS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-epochs", type=int, default=100)
    ap.add_argument("--results", type=Path, default=ROOT / "results", help="pipeline results folder")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    ap.add_argument("--retrain", action="store_true", help="train again where a run folder exists")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="train nothing: evaluate the models saved so far (a partial table: see the n column)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    warnings.simplefilter("ignore", DatasetWarning)
    work = args.out / "compare_methods"
    all_rows, facts, timings, notes = [], {}, {}, {}
    for sid in args.subjects:
        t0 = time.perf_counter()
        setup = SUBJECTS[sid](args.results, work / "prep" / sid)
        samples = setup["samples"]
        notes[sid] = {**setup["notes"], "n_samples": len(samples), "kind": samples.kind,
                      "sample_frames": int(samples.emg.shape[1]), "emg": samples.emg_labels,
                      "protocol": setup["protocol"], "physics": setup["physics"]}
        print(f"{sid}: {len(samples)} {samples.kind} samples x {samples.emg.shape[1]} frames, "
              f"{len(samples.emg_labels)} EMG, outputs {setup['outputs']}", flush=True)
        assets = assets_from_config({"physics": setup["physics"]})
        runs = []
        for m in args.methods:
            run_dir = work / sid / "runs" / m
            if not args.evaluate_only and (args.retrain or not (run_dir / "summary.csv").is_file()):
                tm = time.perf_counter()
                run_training(samples, run_config(m, setup, args.seeds, args.max_epochs), run_dir,
                             assets if m in ("picnn", "cnn") else None)
                timings[f"{sid}/{m}"] = time.perf_counter() - tm
                print(f"  {m}: trained in {timings[f'{sid}/{m}']:.0f} s", flush=True)
            runs.append(run_dir)
        eval_dir = work / sid / "eval"
        present = [(m, r) for m, r in zip(args.methods, runs) if model_folders(r)]
        evaluate_runs(samples, [r for _, r in present], eval_dir, names=[m for m, _ in present])
        truth = truth_rows(samples, eval_dir, setup["truth"]) if setup["truth"] else []
        rows = summarise(sid, eval_dir, truth, setup["outputs"], [m for m, _ in present], args.seeds)
        all_rows += rows
        facts[sid] = {m: physics_facts(work / sid / "runs" / m) for m in ("picnn", "cnn") if m in args.methods}
        facts[sid]["verdict_labels"] = verdict(rows, sid)
        if truth:
            facts[sid]["verdict_truth"] = verdict(rows, sid, "truth_nrmse_mean")
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.evaluate_only:
        print("PARTIAL: --evaluate-only, models saved so far (n = folds x seeds per row)")
    write_csv(all_rows, args.out / "compare_methods.csv")
    report = {"rows": all_rows, "facts": facts, "train_seconds": timings, "subjects": notes,
              "seeds": args.seeds, "methods": args.methods, "network": NETWORK, "training": TRAINING,
              "max_epochs": args.max_epochs, "lambda_grid": LAMBDAS, "muscle_weight_grid": MUSCLE_WEIGHTS,
              "cell": "nRMSE mean ± SD / r mean ± SD over folds x seeds", "partial": bool(args.evaluate_only)}
    (args.out / "compare_methods.json").write_text(json.dumps(report, indent=1, default=str))
    print("\nnRMSE / r against the labels (mean ± SD over folds x seeds)")
    print(markdown(all_rows, list(args.methods)))
    if any("truth_nrmse_mean" in r for r in all_rows):
        print("\nnRMSE / r against the TRUE forces (synthetic subjects)")
        print(markdown(all_rows, list(args.methods), truth=True))
    for sid in args.subjects:
        v = facts[sid].get("verdict_labels", {})
        if v:
            print(f"\n{sid}: PI-CNN mean nRMSE {v['picnn_mean']:.4f} vs CNN {v['cnn_mean']:.4f} "
                  f"(better on the mean: {v['better_on_mean']}); worse on {v['worse_outputs']}")
        vt = facts[sid].get("verdict_truth", {})
        if vt:
            print(f"{sid} (truth): PI-CNN {vt['picnn_mean']:.4f} vs CNN {vt['cnn_mean']:.4f}; worse on "
                  f"{vt['worse_outputs']}")
        lv = facts[sid].get("picnn", {}).get("label_violation_train_mean", {})
        if lv:
            print(f"{sid}: training labels violate the physics by " +
                  ", ".join(f"{k} {v:.4g}" for k, v in lv.items()))
    print(f"\nwrote {args.out / 'compare_methods.json'} and {args.out / 'compare_methods.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
