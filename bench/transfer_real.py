"""Real pair for bench/transfer.py: MOtoNMS UNIPD (gait2392, 5 walks) -> the Rajagopal subject's walk.

Source: results/motonms_unipd (pimsk c3d / scale / ik / so through the workflow: `snakemake --config
subjects=[motonms_unipd] steps=[c3d,scale,ik,id,so]`), SO labels over one right gait cycle per walk; its raw EMG
enveloped here (pimsk emg, 20-450 Hz band, 6 Hz low-pass, no delay: SO labels have none).
Target: the Rajagopal subject's whole recorded walk (0-2.37 s: two right heel strikes, 0.27 and 1.41 s), model
subject_walk_scaled.osim of OpenSim Moco example3DWalking (Rajagopal 2016 as modified there): `pimsk ik` of its
markers_walk.trc with its ik_tasks_walk.xml (100 Hz), `pimsk so` with its grf_walk.xml (labels, ~1.5 min); raw
EMG from opensim-models' emg_walk_raw.anc (pimsk anc, same envelope settings). (The example's own coordinates.sto
is RRA output over one cycle, 0.45-1.80 s: 20 % of it is 4 windows of early stance.)

Shared outputs: right knee angle + the forces of the ten muscles with EMG in both (RF, VL, VM, BF long head,
ST / medial hamstrings, GAS medialis, SOL, TA, GMAX, GMED); gait2392 flexes the knee negative, Rajagopal
positive (declared sign). Physics: muscle consistency only (the knee moment balance needs every knee muscle;
only ten have EMG), each subject's own model (DeGroote parameters read from it, path surrogate fitted to it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MOCO = DATA / "opensim-core/OpenSim/Examples/Moco/example3DWalking"
ANC = DATA / "opensim-models/Pipelines/Rajagopal/ExpData/emg_walk_raw.anc"
SOURCE = ROOT / "results" / "motonms_unipd"
WALKS = ["walk1", "walk2", "walk3", "walk4", "walk5"]

# shared muscle code -> (gait2392 muscle = MOtoNMS EMG channel, Rajagopal muscle, Rajagopal .anc channel)
SHARED = {"RF": ("rect_fem_r", "recfem_r", "RF"), "VL": ("vas_lat_r", "vaslat_r", "VL"),
          "VM": ("vas_med_r", "vasmed_r", "VM"), "BF": ("bifemlh_r", "bflh_r", "BF"),
          "MH": ("semiten_r", "semiten_r", "MH"), "GAS": ("med_gas_r", "gasmed_r", "GAS"),
          "SOL": ("soleus_r", "soleus_r", "SOL"), "TA": ("tib_ant_r", "tibant_r", "TA"),
          "GMAX": ("glut_max2_r", "glmax2_r", "GMAX"), "GMED": ("glut_med2_r", "glmed2_r", "GMED")}
COORDS = ["knee_angle_r", "hip_flexion_r", "ankle_angle_r"]
WINDOW = {"kind": "window", "length": 20, "stride": 2}
RATE_HZ = 100
NETWORK = {"n_blocks": 3, "channels": 32, "kernel_size": 5, "fc_hidden": [64], "dropout": 0.1}
# `--search`: chosen on the source (leave one MOtoNMS walk out, pimsk.learn.transfer.simulate_on_sources). With one
# source subject that simulates a new walk of the same subject, not a new subject (and each walk is one gait
# cycle, so its first 20 % is early stance only): it keeps the generic model nearly unchanged. Default: FIXED,
# the settings the wrist study's source simulation chose with two source subjects (bench/transfer.py wrist:
# the head with L2-SP 0.01-0.1 and 30-100 epochs within 0.3 % of each other; its last run chose these).
# Neither is chosen on the target.
SEARCH = {"layers": ["affine", "head"], "l2sp": [0.001, 0.01, 0.1, 1.0], "epochs": [10, 30, 100]}
FIXED = {"layers": "head", "l2sp": 0.1, "epochs": 100}


def _cli(args: list) -> None:
    from pimsk.cli import main

    rc = main([str(a) for a in args])
    if rc != 0:
        raise SystemExit(f"pimsk {' '.join(map(str, args))} failed ({rc})")


def _geometry(model: Path, muscles: list[str], out: Path, ranges: dict[str, str]) -> None:
    if not out.is_file():
        _cli(["geometry", model, "--muscles", *muscles, "--out", out, "--report", out.with_suffix(".csv"),
              "--n-samples", "400", "--coordinates", *COORDS, "--moment-arms", "difference",
              *[x for c, r in ranges.items() for x in ("--range", f"{c}={r}")]])


def prepare_source(work: Path) -> dict[str, Path]:
    """MOtoNMS: envelopes of the ten shared channels, surrogate of the scaled gait2392, dataset (windows)."""
    work.mkdir(parents=True, exist_ok=True)
    missing = [w for w in WALKS if not (SOURCE / w / "so" / "so_StaticOptimization_force.sto").is_file()]
    if missing or not (SOURCE / "scale" / "model_scaled.osim").is_file():
        raise SystemExit(f"MOtoNMS labels missing under {SOURCE} ({missing}): run `snakemake --cores 2 --config "
                         "subjects=[motonms_unipd] steps=[c3d,scale,ik,id,so]` first")
    gait = [v[0] for v in SHARED.values()]
    if not (work / "emg" / "walk5_envelopes.sto").is_file():
        _cli(["emg", *(SOURCE / w / "c3d" / "emg_raw.sto" for w in WALKS), "--out-dir", work / "emg",
              "--trial-names", *WALKS, "--channels", ",".join(gait), "--band-hz", "20", "450", "--lowpass-hz", "6",
              "--times-from", *(SOURCE / w / "ik" / "coordinates.mot" for w in WALKS), "--subject", "motonms_unipd"])
    model = SOURCE / "scale" / "model_scaled.osim"
    _geometry(model, gait, work / "surrogate.json",
              {"hip_flexion_r": "-40:70", "knee_angle_r": "-110:10", "ankle_angle_r": "-40:40"})
    doc = yaml.safe_load((ROOT / "subjects" / "motonms_unipd" / "subject.yaml").read_text())
    ranges = {t["name"]: t["time_range_s"] for t in doc["trials"]}
    dataset = work / "data.npz"
    if not dataset.is_file():
        spec = {"targets": {"coordinates": COORDS, "forces": gait}, "emg_columns": gait, "rate_hz": RATE_HZ,
                "samples": WINDOW,
                "trials": [{"name": w, "emg": str(work / "emg" / f"{w}_envelopes.sto"),
                            "coordinates": str(SOURCE / w / "ik" / "coordinates.mot"),
                            "forces": str(SOURCE / w / "so" / "so_StaticOptimization_force.sto"),
                            "time_range_s": ranges[w]} for w in WALKS]}
        (work / "dataset.yaml").write_text(yaml.safe_dump(spec))
        _cli(["dataset", "--spec", work / "dataset.yaml", "--out", dataset])
    return {"dataset": dataset, "model": model, "surrogate": work / "surrogate.json"}


def prepare_target(work: Path) -> dict[str, Path]:
    """Rajagopal walk: IK of the whole recorded walk, SO labels, envelopes, surrogate, dataset."""
    work.mkdir(parents=True, exist_ok=True)
    model = MOCO / "subject_walk_scaled.osim"
    coords = work / "ik" / "coordinates.mot"
    if not coords.is_file():
        _cli(["ik", "--model", model, "--trc", MOCO / "markers_walk.trc", "--tasks", MOCO / "ik_tasks_walk.xml",
              "--out", work / "ik", "--subject", "rajagopal", "--trial", "walk"])
    forces = work / "so" / "so_StaticOptimization_force.sto"
    if not forces.is_file():
        _cli(["so", "--model", model, "--coordinates", coords, "--external-loads", MOCO / "grf_walk.xml",
              "--out", work / "so", "--log", work / "so.log", "--subject", "rajagopal", "--trial", "walk"])
    raj = [v[1] for v in SHARED.values()]
    raw = work / "emg_raw.sto"
    if not raw.is_file():
        _cli(["anc", ANC, "--out", raw, "--map", ",".join(f"{v[2]}={v[1]}" for v in SHARED.values()),
              "--subject", "rajagopal", "--trial", "walk"])
    if not (work / "emg" / "walk_envelopes.sto").is_file():
        _cli(["emg", raw, "--out-dir", work / "emg", "--trial-names", "walk", "--band-hz", "20", "450",
              "--lowpass-hz", "6", "--times-from", coords, "--subject", "rajagopal"])
    _geometry(model, raj, work / "surrogate.json",
              {"hip_flexion_r": "-40:70", "knee_angle_r": "0:110", "ankle_angle_r": "-40:40"})
    dataset = work / "data.npz"
    if not dataset.is_file():
        spec = {"targets": {"coordinates": COORDS, "forces": raj}, "emg_columns": raj, "rate_hz": RATE_HZ,
                "samples": WINDOW,
                "trials": [{"name": "walk", "emg": str(work / "emg" / "walk_envelopes.sto"),
                            "coordinates": str(coords), "forces": str(forces)}]}
        (work / "dataset.yaml").write_text(yaml.safe_dump(spec))
        _cli(["dataset", "--spec", work / "dataset.yaml", "--out", dataset])
    return {"dataset": dataset, "model": model, "surrogate": work / "surrogate.json"}


def real_config(src: dict[str, Path], tgt: dict[str, Path], *, seeds: list[int], fraction: float,
                max_epochs: int, search: bool = False, fixed: dict | None = None) -> dict:
    """The real pair's transfer config; ``search``: settings from the source simulation (:data:`SEARCH`),
    otherwise ``fixed`` (default :data:`FIXED`; fixed epochs, no validation part)."""
    fixed = fixed or FIXED
    gait = [v[0] for v in SHARED.values()]
    label_coords = {"hip_flexion_r": "hip_flexion_r", "ankle_angle_r": "ankle_angle_r"}
    physics = {"moment_source": "target", "label_coordinates": label_coords, "force_scale": "labels",
               "tendon": "rigid"}  # rigid: no equilibrium solve at far-off predicted kinematics early in training
    return {
        "sources": [{"name": "motonms_unipd", "dataset": str(src["dataset"])}],
        "generic": {"method": "picnn", "network": NETWORK, "outputs": ["knee_angle_r", *gait],
                    "training": {"max_epochs": max_epochs, "batch_size": 16, "learning_rate": 2e-3, "patience": 30, "grad_clip": 1.0},
                    "loss": {"lambda": 1.0},
                    "physics": {"surrogate": str(src["surrogate"]), "muscle_parameters": str(src["model"]),
                                **physics}},
        "target": {"name": "rajagopal_walk", "dataset": str(tgt["dataset"]),
                   "physics": {"surrogate": str(tgt["surrogate"]), "muscle_parameters": str(tgt["model"]),
                               **physics, "trainable_gain": True},
                   "inputs": {v[0]: v[1] for v in SHARED.values()},
                   "outputs": {v[0]: v[1] for v in SHARED.values()},
                   "output_signs": {"knee_angle_r": -1}},
        "transfer": {"fraction": fraction, "val_share": 0.0, "loss": {"lambda": 1.0}, "restandardise": False,
                     "layers": fixed["layers"], "l2sp": fixed["l2sp"], "search": SEARCH if search else {},
                     "training": {"max_epochs": max_epochs if search else fixed["epochs"], "batch_size": 4,
                                  "learning_rate": 5e-3, "patience": 30, "grad_clip": 1.0},
                     "identify": {"max_isometric_force": 0.3}},
        "seeds": seeds,
    }


def fixed_settings(args: argparse.Namespace) -> dict:
    """``--settings LAYERS L2SP EPOCHS`` or :data:`FIXED`."""
    if not getattr(args, "settings", None):
        return dict(FIXED)
    layers, l2sp, epochs = args.settings
    return {"layers": layers, "l2sp": float(l2sp), "epochs": int(epochs)}


def run_suffix(args: argparse.Namespace) -> str:
    """Name suffix of the run folder and JSON: ``_search`` for ``--search``, ``_<layers>_<l2sp>_<epochs>`` for
    ``--settings``, '' for the default settings."""
    if getattr(args, "search", False):
        return "_search"
    return "_" + "_".join(args.settings) if getattr(args, "settings", None) else ""


def run_real(args: argparse.Namespace) -> dict:
    import torch

    from pimsk.learn.transfer import summarise, transfer_from_config

    torch.set_num_threads(1)
    work = ROOT / "results" / "transfer" / "real"
    t0 = time.perf_counter()
    src = prepare_source(work / "motonms_unipd")
    tgt = prepare_target(work / "rajagopal_walk")
    prep_s = time.perf_counter() - t0
    fixed = fixed_settings(args)
    cfg = real_config(src, tgt, seeds=args.seeds, fraction=args.fraction, max_epochs=args.max_epochs,
                      search=args.search, fixed=fixed)
    out = work / ("runs" + run_suffix(args))
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.yaml").write_text(yaml.safe_dump(cfg))
    t1 = time.perf_counter()
    rows = transfer_from_config({**cfg, "_base_dir": str(out)}, out, recalibration=True)
    split = json.loads((out / "target_split.json").read_text())
    title = (f"Real pair: MOtoNMS UNIPD (gait2392, 5 walks, SO labels) -> Rajagopal walk (SO labels), "
             f"{100 * split['train_frames_share']:.0f} % of the target's time for training "
             f"({split['n_train']} train windows, {split['n_test']} test), {len(args.seeds)} seeds, transfer settings "
             + ("from the source simulation" if args.search else f"fixed {fixed}"))
    return {"experiment": "real", "title": title, "rows": rows, "summary": summarise(rows), "split": split,
            "prepare_s": prep_s, "train_s": time.perf_counter() - t1, "config": cfg}
