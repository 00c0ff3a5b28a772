"""Label-free PI-CNN beside the supervised PI-CNN on the real MOtoNMS walks, scored against CMC and SO ([F6]).

Subject ``motonms_unipd`` (gait2392, 5 overground walks with 15 right-leg EMG channels). Run the OpenSim stage
first: ``python bench/run_motonms.py`` (C3D -> Scale -> IK -> ID -> SO -> CMC under ``results/motonms_unipd``,
CMC acceptance in ``results/benchmarks/motonms.json``). The data are prepared by ``bench/compare_methods.py``'s
functions (its ``motonms``: EMG envelopes, path surrogate, the physics settings, one right gait cycle per walk
normalised to 100 frames); the cycles here are the same, clipped to the CMC run's time span where that is
shorter. Leave-one-trial-out over the walks, one of the other walks validates (picked from the seed), for:

* ``label_free``: :func:`pimsk.learn.identify.identify_and_train`, data loss on the knee angle (IK) ONLY; the
  13 right-knee muscle forces are shaped by the physics alone: the EMG-driven DeGrooteFregly2016 ODE of the
  scaled gait2392 model (Thelen parameters converted) and the knee moment balance against the inverse-dynamics
  knee moment (``moment_source: target``: walking has ground reaction forces; hip and ankle angles from IK).
  Muscle parameters kept at the scaled model's values (``label_free``) or identified from the ODE loss
  (``label_free_id``); ``*_ode`` rows are the EMG-driven ODE forces themselves (generic / identified parameters).
  The excitation gain is label-free: envelopes are normalised by their peak over the 5 walks, and one common
  gain (scanned on a log grid) minimises the ODE's knee moment residual against ID on the training cycles.
* ``picnn_cmc``: the PI-CNN of ``compare_methods`` (same network, search over lambda and the muscle weight on
  the validation walk) supervised with the CMC forces (accepted walks only);
* ``picnn_so``: the same, supervised with the SO forces.

EMG: 9 of the 13 knee muscles have an electrode; the ODE needs an excitation for every predicted force, so 4
channels are derived from neighbouring electrodes (as EMG-driven knee models do for deep or small muscles, e.g.
Lloyd & Besier 2003, J Biomech 36: 765-776): ``vas_int_r`` = mean of the vastus medialis and lateralis
envelopes, ``semimem_r`` = semitendinosus, ``bifemsh_r`` = biceps femoris long head; ``grac_r`` = adductor
longus (our choice: the other medial thigh adductor). Every method gets the same 19 input channels.
SO labels: ``so/`` (the workflow's labels; run_motonms's default: DeGrooteFregly2016 muscles); CMC: Thelen2003
muscles of gait2392 (``cmc_thelen/``).

Scores: per muscle Pearson r and nRMSE (RMSE / range of the reference) on the test walk's cycle, against the
CMC forces (test walks whose CMC passed run_motonms's acceptance) and against the SO forces; mean ± SD over
folds x seeds. Writes ``results/bench/label_free_motonms.json`` and prints the tables.

    python bench/label_free_motonms.py [--seeds 0] [--epochs 100] [--sup-epochs 100] [--no-identify] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import compare_methods as cm  # noqa: E402

from pimsk.config import load_subject  # noqa: E402
from pimsk.io.storage import read_storage  # noqa: E402
from pimsk.learn.datasets import DatasetWarning, SampleSet, build_trial, concat, gait_cycles, select_columns, \
    table_in_si  # noqa: E402
from pimsk.learn.identify import BoundedMuscleParameters, MusculoskeletalODE, identify_and_train, \
    predict_forces  # noqa: E402
from pimsk.learn.losses import PhysicsLoss, PhysicsSpec  # noqa: E402
from pimsk.learn.metrics import nrmse, pearson_r  # noqa: E402
from pimsk.learn.train import assets_from_config, load_fit, make_splits, run_training  # noqa: E402

SID = "motonms_unipd"
KNEE = "knee_angle_r"
MUSCLES = list(cm.GAIT_KNEE)
#: derived EMG channels: muscle without an electrode -> the electrodes (muscle names) whose mean drives it
DERIVED_EMG = {"vas_int_r": ["vas_med_r", "vas_lat_r"], "semimem_r": ["semiten_r"], "bifemsh_r": ["bifemlh_r"],
               "grac_r": ["add_long_r"]}
CMC_MODEL = "thelen"
GAIN_GRID = np.geomspace(0.05, 1.0, 14)
PROTOCOL = {"name": "leave_one_trial_out", "n_val_trials": 1}

log = logging.getLogger("bench.label_free_motonms")


# ------------------------------------------------------------------------------------------------ data
def cmc_acceptance(report_path: Path, walks: list[str], results: Path) -> dict[str, dict[str, Any]]:
    """Per walk: CMC (Thelen muscles) acceptance and its figures, from run_motonms's report; where the report
    has no entry but a CMC run exists (a run_motonms still going, or CMC run separately) its criteria are
    evaluated here (``run_motonms.cmc_numbers``)."""
    if not report_path.is_file():
        raise SystemExit(f"missing {report_path}: run bench/run_motonms.py first")
    rep = json.loads(report_path.read_text())
    out = {}
    for w in walks:
        nums = rep.get("walks", {}).get(w, {}).get("cmc", {}).get(CMC_MODEL)
        folder = results / SID / w / f"cmc_{CMC_MODEL}"
        forces = folder / "cmc_Actuation_force.sto"
        source = "run_motonms report"
        if nums is None and forces.is_file() and (folder / "cmc_pErr.sto").is_file():
            import run_motonms as rm

            res = results / SID / w
            nums = rm.cmc_numbers(folder, forces, res.parent / "scale" / "model_scaled.osim",
                                  res / "ik" / "coordinates.mot", res / "id" / "moments.sto")
            source = "run_motonms.cmc_numbers on the CMC outputs"
        if nums is None:
            out[w] = {"accepted": False, "reason": rep.get("errors", {}).get(f"{w}/cmc_{CMC_MODEL}", "no CMC run")}
            continue
        out[w] = {"accepted": bool(nums["accepted"]),
                  "max_joint_tracking_error_deg": nums["max_joint_tracking_error_deg"],
                  "max_joint_tracking_error_coordinate": nums["max_joint_tracking_error_coordinate"],
                  "max_knee_reserve_nm": nums["max_knee_reserve_nm"], "source": source}
    return out


def with_derived_emg(samples: SampleSet) -> SampleSet:
    """The samples with the :data:`DERIVED_EMG` channels appended (mean of the named envelopes)."""
    extra = [samples.emg[..., [samples.emg_labels.index(e) for e in src]].mean(-1) for src in DERIVED_EMG.values()]
    return SampleSet(np.concatenate([samples.emg, np.stack(extra, -1)], -1), samples.targets, samples.dt_s,
                     samples.trial, samples.start_s, samples.end_s, [*samples.emg_labels, *DERIVED_EMG],
                     list(samples.target_labels), samples.kind, samples.attributes)


def build_samples(results: Path, prep: Path, accepted: dict[str, dict]) -> tuple[SampleSet, dict, dict]:
    """One 100-frame cycle per walk: targets = IK (knee, hip, ankle), ID knee moment, SO forces (muscle names)
    and CMC forces (``cmc:<muscle>``; NaN on walks whose CMC was not accepted). Returns (samples, the
    compare_methods setup, cycle notes)."""
    setup = cm.motonms(results, prep)  # envelopes, surrogate, physics, the SO cycles (clipped to IK/SO)
    subject = load_subject(ROOT / "subjects" / SID / "subject.yaml")
    res = results / SID
    sets, notes = [], {}
    for t in [t for t in subject["trials"] if t.get("task") == "walking"]:
        n = t["name"]
        tables = [(read_storage(res / n / "ik" / "coordinates.mot"), [KNEE, *cm.HIP, "ankle_angle_r"]),
                  (read_storage(res / n / "so" / "so_StaticOptimization_force.sto"), MUSCLES),
                  (read_storage(res / n / "id" / "moments.sto"), ["knee_angle_r_moment"])]
        cmc_files = [f for f in [res / n / f"cmc_{CMC_MODEL}" / "cmc_Actuation_force.sto"] if f.is_file()]
        use_cmc = accepted.get(n, {}).get("accepted", False) and bool(cmc_files)
        tr = build_trial(n, read_storage(prep / "emg" / f"{n}_envelopes.sto"), tables)
        a, b = setup["notes"]["cycles"][n]["used_s"]
        a2, b2 = max(a, float(tr.time_s[0])), min(b, float(tr.time_s[-1]))
        cmc_cols = np.full((len(tr.time_s), len(MUSCLES)), np.nan)
        # CMC forces on the trial's own time base (the cycles do not depend on whether CMC exists), the cycle
        # clipped to CMC's span (trial frames beyond it hold CMC's end values: they only enter the first/last
        # grid point's interpolation)
        if use_cmc:
            cmc = table_in_si(read_storage(cmc_files[0]))
            a2, b2 = max(a2, float(cmc.time_s[0])), min(b2, float(cmc.time_s[-1]))
            vals = select_columns(cmc, MUSCLES, trial=n, file=cmc_files[0])
            cmc_cols = np.stack([np.interp(tr.time_s, cmc.time_s, vals[:, i])
                                 for i in range(len(MUSCLES))], -1)
        tr.targets = np.hstack([tr.targets, cmc_cols])
        tr.target_labels = [*tr.target_labels, *[f"cmc:{m}" for m in MUSCLES]]
        notes[n] = {"time_range_s": setup["notes"]["cycles"][n]["time_range_s"], "used_s": [a2, b2],
                    "cmc_labels": use_cmc}
        sets.append(gait_cycles(tr, [(a2, b2)], n_frames=100, strict=True))
    return with_derived_emg(concat(sets)), setup, notes


# ----------------------------------------------------------------------------------------- label-free
def physics_spec(setup: dict) -> dict[str, Any]:
    """The compare_methods physics (ID knee moment, IK hip/ankle), without the file entries."""
    return {k: v for k, v in setup["physics"].items() if k not in ("surrogate", "muscle_parameters", "force_scale")}


@torch.no_grad()
def label_free_gain(samples: SampleSet, train_idx: np.ndarray, assets, spec: dict) -> dict[str, Any]:
    """One excitation gain for every channel: the grid value with the smallest ODE knee-moment residual (scaled
    model, generic parameters) against the ID moment on the training cycles. No force labels are read."""
    outputs = [KNEE, *MUSCLES]
    sub = samples.subset(train_idx)
    costs = []
    for g in GAIN_GRID:
        ph = PhysicsLoss(outputs, samples.target_labels, samples.emg_labels, assets.surrogate, assets.params,
                         assets.chain, PhysicsSpec.from_dict({**spec, "excitation_gain": float(g)}))
        ode = MusculoskeletalODE(ph, BoundedMuscleParameters(ph.params, []), skip_frames=10)
        ode.calibrate(sub.targets, sub.dt_s)
        term, _ = ode(torch.as_tensor(sub.emg), torch.as_tensor(sub.targets), torch.as_tensor(sub.dt_s))
        costs.append(float(term))
    k = int(np.nanargmin(costs))
    return {"gain": float(GAIN_GRID[k]), "grid": GAIN_GRID.tolist(), "ode_moment_cost": costs}


def train_label_free(samples: SampleSet, split, assets, spec: dict, gain: float, identify: bool, seed: int,
                     epochs: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Label-free PI-CNN on one fold; test-cycle forces of the network and of the ODE (n, T, 13)."""
    settings = {"identify": identify, "max_epochs": epochs, "batch_size": 8, "learning_rate": 1e-2, "seed": seed,
                "threads": 1}
    res = identify_and_train(samples, split, assets, [KNEE], MUSCLES, network=cm.NETWORK, settings=settings,
                             excitation_gain={m: gain for m in MUSCLES}, physics_spec=spec)
    pred = predict_forces(res, samples, split.test)
    knee = samples.targets[split.test][..., samples.target_labels.index(KNEE)]
    last = res.history[-1]
    info = {"seconds": res.seconds, "knee_rmse_deg": float(np.degrees(np.sqrt(np.mean((pred["coordinates"][..., 0]
                                                                                       - knee) ** 2)))),
            **{k: float(v) for k, v in last.items() if k.startswith(("train_", "val_"))}}
    if identify:
        info["parameters"] = res.parameters.table()
    return {"network": pred["network"], "ode": pred["ode"]}, info


# ----------------------------------------------------------------------------------------- supervised
def _cached_rows(folder: Path, key: dict) -> list[dict] | None:
    """The summary rows of an earlier run_training in ``folder`` made with the same config and cycles."""
    import csv

    kf = folder / "bench_key.json"
    if not (kf.is_file() and (folder / "summary.csv").is_file()):
        return None
    if json.loads(kf.read_text()) != json.loads(json.dumps(key, default=str)):
        return None
    with (folder / "summary.csv").open() as fh:
        return [{**r, "seed": int(r["seed"]), "best_epoch": int(r["best_epoch"]), "seconds": float(r["seconds"])}
                for r in csv.DictReader(fh)]


def supervised(samples: SampleSet, setup: dict, labels: str, seeds: list[int], epochs: int, out: Path,
               assets, reuse: bool = False) -> dict[tuple[str, int], np.ndarray]:
    """compare_methods' PI-CNN (search on the validation walk) with ``labels`` "so" or "cmc" forces; test-cycle
    forces per (test walk, seed), (n, T, 13) in MUSCLES order. CMC: trained and tested on accepted walks only."""
    outs = [KNEE, *(MUSCLES if labels == "so" else [f"cmc:{m}" for m in MUSCLES])]
    physics = dict(setup["physics"])
    if labels == "cmc":
        physics["muscles"] = {f"cmc:{m}": m for m in MUSCLES}
    cfg = cm.run_config("picnn", {**setup, "outputs": outs, "physics": physics}, seeds, epochs)
    keep = np.flatnonzero(np.isfinite(samples.targets[..., samples.target_labels.index(outs[-1])]).all(1))
    sub = samples.subset(keep)
    key = {"config": cfg, "cycles": sub.start_s.tolist() + sub.end_s.tolist(), "trials": sub.trial.tolist()}
    rows = _cached_rows(out / labels, key) if reuse else None
    if rows is None:
        rows = run_training(sub, cfg, out / labels, assets)
        (out / labels / "bench_key.json").write_text(json.dumps(key, default=str))
    preds = {}
    for r in rows:
        fit = load_fit(out / labels / r["folder"])
        test = fit.split.test
        p = fit.predict(sub.emg[test], sub.dt_s[test])
        preds[(r["test_group"], int(r["seed"]))] = p[..., [fit.output_labels.index(o) for o in outs[1:]]]
        preds[(r["test_group"], int(r["seed"]), "info")] = {"seconds": r["seconds"], "best_epoch": r["best_epoch"],
                                                             **{k: v for k, v in r.items() if k.startswith("chosen:")}}
    return preds


# ------------------------------------------------------------------------------------------- scoring
def scores(ref: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, float]]:
    """Per muscle r and nRMSE of pred against ref, (n, T, 13) each."""
    r, e = pearson_r(ref, pred), nrmse(ref, pred)
    return {m: {"r": float(r[i]), "nrmse": float(e[i])} for i, m in enumerate(MUSCLES)}


def _mean_sd(v: list[float]) -> list[float]:
    a = np.asarray([x for x in v if np.isfinite(x)], dtype=float)
    if a.size == 0:
        return [math.nan, math.nan, 0]
    return [float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan, int(a.size)]


def summarise(folds: list[dict]) -> dict:
    """reference -> method -> muscle -> {r, nrmse: [mean, SD, n]} over folds x seeds; plus 'mean' over muscles."""
    out: dict = {}
    for ref in ("cmc", "so"):
        methods = list(dict.fromkeys(m for f in folds for m in f["scores"].get(ref, {})))
        out[ref] = {}
        for meth in methods:
            got = [f["scores"][ref][meth] for f in folds if meth in f["scores"].get(ref, {})]
            row = {m: {k: _mean_sd([g[m][k] for g in got]) for k in ("r", "nrmse")} for m in MUSCLES}
            row["mean"] = {k: _mean_sd([float(np.nanmean([g[m][k] for m in MUSCLES])) for g in got])
                           for k in ("r", "nrmse")}
            out[ref][meth] = row
    return out


def print_table(summary: dict) -> None:
    short = {m: m.removesuffix("_r") for m in MUSCLES}
    for ref, name in (("cmc", "CMC (accepted walks)"), ("so", "SO")):
        if not summary.get(ref):
            continue
        for key, label in (("r", "Pearson r"), ("nrmse", "nRMSE")):
            print(f"\n### {label} against {name} forces, test walk, mean ± SD over folds x seeds")
            print("| method | n | " + " | ".join(short.values()) + " | mean |")
            print("|---|---|" + "---|" * (len(MUSCLES) + 1))
            for meth, row in summary[ref].items():
                cells = [f"{row[m][key][0]:.2f} ± {row[m][key][1]:.2f}" for m in MUSCLES]
                mean = row["mean"][key]
                print(f"| {meth} | {mean[2]} | " + " | ".join(cells) + f" | {mean[0]:.2f} ± {mean[1]:.2f} |")


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results", help="pipeline results folder")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "label_free_motonms")
    ap.add_argument("--json", type=Path, default=ROOT / "results" / "bench" / "label_free_motonms.json")
    ap.add_argument("--report", type=Path, default=None, help="run_motonms report (default "
                    "<results>/benchmarks/motonms.json)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=100, help="label-free epochs (fixed; no early stopping)")
    ap.add_argument("--sup-epochs", type=int, default=100, help="max epochs of the supervised PI-CNNs")
    ap.add_argument("--no-identify", action="store_true", help="skip the label-free run with identification")
    ap.add_argument("--no-so", action="store_true", help="skip the PI-CNN supervised with SO labels")
    ap.add_argument("--reuse", action="store_true", help="reuse models trained earlier under --out with the same "
                    "settings and cycles (e.g. the label-free and SO runs while CMC was still running)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    warnings.simplefilter("ignore", DatasetWarning)
    t_all = time.perf_counter()
    walks = [t["name"] for t in load_subject(ROOT / "subjects" / SID / "subject.yaml")["trials"]
             if t.get("task") == "walking"]
    accepted = cmc_acceptance(args.report or args.results / "benchmarks" / "motonms.json", walks, args.results)
    print("CMC (Thelen) acceptance per walk (run_motonms: joints tracked < 5 deg, knee reserve < 10 N·m):")
    for w, a in accepted.items():
        state = "accepted" if a["accepted"] else ("REJECTED" if "max_knee_reserve_nm" in a else "no CMC labels")
        print(f"  {w}: {state} " +
              (f"(worst joint {a['max_joint_tracking_error_coordinate']} {a['max_joint_tracking_error_deg']:.1f} "
               f"deg, knee reserve {a['max_knee_reserve_nm']:.1f} N·m)" if "max_knee_reserve_nm" in a
               else f"({a.get('reason', '')[:80]})"))
    samples, setup, cycles = build_samples(args.results, args.out / "prep", accepted)
    phys_files = {"physics": {**setup["physics"], "chain": str(args.results / SID / "scale" / "model_scaled.osim"),
                              "chain_root_body": "femur_r", "chain_coordinates": [KNEE]}}
    # the chain (femur -> shank, foot) is not used with moment_source "target" (the ODE loss no longer requires
    # one there); kept so that the measured run and a rerun build the same physics assets
    assets = assets_from_config(phys_files)
    spec = physics_spec(setup)
    t_prep = time.perf_counter() - t_all

    t0 = time.perf_counter()
    sup = {}
    n_cmc = sum(c["cmc_labels"] for c in cycles.values())
    if n_cmc >= 3:  # a training, a validation and a test walk
        sup["picnn_cmc"] = supervised(samples, setup, "cmc", args.seeds, args.sup_epochs, args.out, assets,
                                      args.reuse)
    else:
        print(f"only {n_cmc} walks with accepted CMC labels: no PI-CNN supervised with CMC (needs 3)")
    if not args.no_so:
        sup["picnn_so"] = supervised(samples, setup, "so", args.seeds, args.sup_epochs, args.out, assets,
                                     args.reuse)
    t_sup = time.perf_counter() - t0

    so_cols = [samples.target_labels.index(m) for m in MUSCLES]
    cmc_cols = [samples.target_labels.index(f"cmc:{m}") for m in MUSCLES]
    folds, t_lf = [], 0.0
    for seed in args.seeds:
        for split in make_splits(samples, PROTOCOL, seed=seed):
            walk = split.test_group
            t0 = time.perf_counter()
            gain = label_free_gain(samples, split.train, assets, spec)
            preds, info = {}, {"gain": gain}
            variants = [("label_free", False)] + ([] if args.no_identify else [("label_free_id", True)])
            for name, ident in variants:
                cache = args.out / "label_free" / f"{walk}_seed{seed}_{name}"
                key = {"epochs": args.epochs, "gain": gain["gain"], "cycles": samples.start_s.tolist()
                       + samples.end_s.tolist(), "train": split.train.tolist(), "val": split.val.tolist()}
                if args.reuse and (cache / "key.json").is_file() and \
                        json.loads((cache / "key.json").read_text()) == key:
                    with np.load(cache / "forces.npz") as d:
                        p = {"network": d["network"], "ode": d["ode"]}
                    info[name] = json.loads((cache / "info.json").read_text())
                else:
                    p, info[name] = train_label_free(samples, split, assets, spec, gain["gain"], ident, seed,
                                                     args.epochs)
                    cache.mkdir(parents=True, exist_ok=True)
                    np.savez(cache / "forces.npz", **p)
                    (cache / "info.json").write_text(json.dumps(info[name], default=float))
                    (cache / "key.json").write_text(json.dumps(key))
                preds[name], preds[f"{name}_ode"] = p["network"], p["ode"]
            t_lf += time.perf_counter() - t0
            for meth, got in sup.items():
                if (walk, seed) in got:
                    preds[meth] = got[(walk, seed)]
                    info[meth] = got[(walk, seed, "info")]
            tg = samples.targets[split.test]
            sc = {"so": {m: scores(tg[..., so_cols], p) for m, p in preds.items()}}
            if cycles[walk]["cmc_labels"]:
                sc["cmc"] = {m: scores(tg[..., cmc_cols], p) for m, p in preds.items()}
            folds.append({"test_walk": walk, "seed": seed, "val_walks": sorted(set(samples.trial[split.val])),
                          "scores": sc, "info": info})
            print(f"fold {walk} seed {seed}: gain {gain['gain']:.3f}, label-free knee RMSE "
                  f"{info['label_free']['knee_rmse_deg']:.1f} deg, mean r vs " +
                  ", ".join(f"{ref.upper()}: " + " ".join(f"{m} {np.nanmean([v['r'] for v in s.values()]):.2f}"
                                                          for m, s in sc[ref].items()) for ref in sc), flush=True)
    summary = summarise(folds)
    print_table(summary)
    total = time.perf_counter() - t_all
    print(f"\nCMC labels from: {[w for w, c in cycles.items() if c['cmc_labels']]} "
          f"(none from: {[w for w, c in cycles.items() if not c['cmc_labels']]}: rejected or no CMC run)")
    print(f"time: preparation {t_prep:.0f} s, supervised {t_sup:.0f} s, label-free {t_lf:.0f} s, total {total:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "subject": SID, "seeds": args.seeds, "epochs_label_free": args.epochs, "max_epochs_supervised": args.sup_epochs,
        "cmc_model": CMC_MODEL, "cmc_acceptance": accepted, "cycles": cycles, "derived_emg": DERIVED_EMG,
        "network": cm.NETWORK, "physics": spec, "summary": summary, "folds": folds,
        "cell": "[mean, SD, n] over folds x seeds; r = Pearson r, nrmse = RMSE / range of the reference",
        "seconds": {"preparation": t_prep, "supervised": t_sup, "label_free": t_lf, "total": total}},
        indent=1, default=str))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
