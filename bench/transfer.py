"""Physics-informed transfer to an unseen subject (Zhang et al. 2022, IEEE TIM): generic / scratch / transfer.

    python bench/transfer.py wrist  [--seeds 0 1 2] [--fraction 0.2] [--out results/bench/transfer_wrist.json]
    python bench/transfer.py real   [--seeds 0 1 2] [--search | --settings head 0.01 30] [--out ...]

``wrist``: synthetic subjects of other anthropometry (subjects/demo_wrist, demo_wrist_b, demo_wrist_c: other
segment scales, masses, muscle perturbations, seeds, burst amplitudes). Each is synthesised (pimsk synth), its
C3D converted (pimsk c3d), EMG enveloped (pimsk emg), the generic wrist model scaled to its static trial (pimsk
scale: the lab's model; the truth's muscle perturbations are unknown to it) and its path surrogate fitted (pimsk
geometry). Labels: the synthetic truth (coordinates, forces). Sources demo_wrist + demo_wrist_b, target
demo_wrist_c. The generic PI-CNN's physics is the generic (unscaled) wrist model; scratch and transfer use the
target's own scaled model.

``real``: MOtoNMS UNIPD (5 walks, gait2392, SO labels from results/motonms_unipd) -> the Rajagopal subject's walk
(Moco example3DWalking, SO labels made here with `pimsk so`), see :func:`real_pair`.

Prints one table (arm x output: nRMSE and r, mean +- SD over seeds) and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WRIST_TRIALS = ["flex_slow", "flex_medium", "flex_fast"]
WRIST_MUSCLES = ["FCR", "FCU", "ECRL", "ECRB", "ECU"]
WRIST_NETWORK = {"n_blocks": 3, "channels": 32, "kernel_size": 5, "fc_hidden": [64], "dropout": 0.1}


def _cli(args: list[str]) -> None:
    from pimsk.cli import main

    rc = main([str(a) for a in args])
    if rc != 0:
        raise SystemExit(f"pimsk {' '.join(map(str, args))} failed ({rc})")


def prepare_wrist_subject(subject_yaml: Path, root: Path, *, max_duration_s: float | None = None,
                          window: int = 40, stride: int = 5) -> dict[str, Path]:
    """synth -> c3d -> emg -> scale -> geometry -> dataset for one synthetic wrist subject under ``root``.

    Returns the paths: dataset (.npz), scaled model, its surrogate, the generic model and the truth model."""
    from pimsk.synth.generate import synthesize

    doc = yaml.safe_load(subject_yaml.read_text())
    root.mkdir(parents=True, exist_ok=True)
    synth = root / "synth"
    if not (synth / "truth" / WRIST_TRIALS[-1] / "forces.sto").is_file():
        synthesize(subject_yaml, synth, max_duration_s=max_duration_s, only_trials=["static", *WRIST_TRIALS])
    truth = synth / "truth"
    for t in ["static", *WRIST_TRIALS]:
        if not (root / "c3d" / t).is_dir():
            _cli(["c3d", synth / f"{t}.c3d", "--out-dir", root / "c3d" / t, "--subject-file", subject_yaml,
                  "--trial", t, *(["--emg-map", "none"] if t == "static" else [])])
    if not (root / "emg" / f"{WRIST_TRIALS[-1]}_envelopes.sto").is_file():
        _cli(["emg", *(root / "c3d" / t / "emg_raw.sto" for t in WRIST_TRIALS), "--out-dir", root / "emg",
              "--trial-names", *WRIST_TRIALS, "--delay-s", "0.04",
              "--times-from", *(truth / t / "coordinates.mot" for t in WRIST_TRIALS)])
    scaled = root / "scale" / "model_scaled.osim"
    if not scaled.is_file():
        settings = root / "scale_settings.json"
        settings.write_text(json.dumps({"measurements": doc["scaling"]["measurements"]}))
        trc = next((root / "c3d" / "static").glob("*.trc"))
        _cli(["scale", "--model", synth / "model_generic.osim", "--trc", trc, "--measurements", settings,
              "--mass-kg", doc["mass_kg"], "--generic-body-mass-kg", doc["synth"]["generic_body_mass_kg"],
              "--height-m", doc["height_m"], "--out", root / "scale", "--log", root / "scale" / "scale.log",
              "--subject", doc["id"], "--trial", "static"])
    for name, model in (("surrogate.json", scaled), ("surrogate_generic.json", synth / "model_generic.osim")):
        if not (root / name).is_file():
            _cli(["geometry", model, "--muscles", *WRIST_MUSCLES, "--out", root / name,
                  "--report", root / name.replace(".json", ".csv"), "--n-samples", "200",
                  "--coordinates", "wrist_flexion_r"])
    dataset = root / "data.npz"
    if not dataset.is_file():
        spec = {"targets": {"coordinates": ["wrist_flexion_r"], "forces": WRIST_MUSCLES},
                "samples": {"kind": "window", "length": window, "stride": stride},
                "trials": [{"name": t, "emg": f"emg/{t}_envelopes.sto",
                            "coordinates": f"synth/truth/{t}/coordinates.mot",
                            "forces": f"synth/truth/{t}/forces.sto",
                            "time_range_s": next(tr["time_range_s"] for tr in doc["trials"] if tr["name"] == t)}
                           for t in WRIST_TRIALS]}
        (root / "dataset.yaml").write_text(yaml.safe_dump(spec))
        _cli(["dataset", "--spec", root / "dataset.yaml", "--out", dataset])
    return {"dataset": dataset, "scaled": scaled, "surrogate": root / "surrogate.json",
            "generic_model": synth / "model_generic.osim", "surrogate_generic": root / "surrogate_generic.json",
            "truth_model": truth / WRIST_TRIALS[0] / "model.osim"}


# The transfer's settings are chosen on the sources (pimsk.learn.transfer.simulate_on_sources), not on the target.
SEARCH = {"layers": ["affine", "head"], "l2sp": [0.001, 0.01, 0.1, 1.0], "epochs": [10, 30, 100]}


def wrist_config(sources: dict[str, dict[str, Path]], target: dict[str, Path], target_name: str, *,
                 seeds: list[int], fraction: float = 0.2, max_epochs: int = 100, finetune_epochs: int = 100,
                 lam: float = 1.0, search: dict | None = None) -> dict:
    """The transfer config of the synthetic wrist experiment (absolute paths); ``search`` (default
    :data:`SEARCH`; ``{}``: none, fixed ``layers: affine``, ``l2sp: 0.01``, ``finetune_epochs``)."""
    any_src = next(iter(sources.values()))
    chain = {"chain_root_body": "forearm_r", "chain_coordinates": ["wrist_flexion_r"]}
    physics_spec = {"force_scale": "labels"}
    return {
        "sources": [{"name": n, "dataset": str(p["dataset"])} for n, p in sources.items()],
        "generic": {"method": "picnn", "network": WRIST_NETWORK,
                    "training": {"max_epochs": max_epochs, "batch_size": 32, "learning_rate": 3e-3, "patience": 20},
                    "loss": {"lambda": lam},
                    "physics": {"surrogate": str(any_src["surrogate_generic"]),
                                "muscle_parameters": str(any_src["generic_model"]),
                                "chain": str(any_src["generic_model"]), **chain, **physics_spec}},
        "target": {"name": target_name, "dataset": str(target["dataset"]),
                   "physics": {"surrogate": str(target["surrogate"]), "muscle_parameters": str(target["scaled"]),
                               "chain": str(target["scaled"]), **chain, **physics_spec, "trainable_gain": True}},
        "transfer": {"fraction": fraction, "val_share": 0.25, "loss": {"lambda": lam}, "restandardise": False,
                     "layers": "affine", "l2sp": 0.01, "search": SEARCH if search is None else search,
                     "training": {"max_epochs": finetune_epochs, "batch_size": 16, "learning_rate": 5e-3,
                                  "patience": 25},
                     "identify": {"max_isometric_force": 0.3}},
        "seeds": seeds,
    }


def table(summary: list[dict], title: str) -> str:
    """Markdown table: one row per output, nRMSE and r (mean +- SD over seeds) per arm."""
    arms = list(dict.fromkeys(r["arm"] for r in summary))
    outputs = list(dict.fromkeys(r["output"] for r in summary))
    by = {(r["arm"], r["output"]): r for r in summary}
    head = "| output | " + " | ".join(f"{a} nRMSE % | {a} r" for a in arms) + " |"
    lines = [f"**{title}**", "", head, "|---|" + "---|---|" * len(arms)]
    for o in outputs:
        cells = []
        for a in arms:
            r = by[(a, o)]
            cells += [f"{100 * r['nrmse_mean']:.1f} ± {100 * r['nrmse_sd']:.1f}", f"{r['r_mean']:.2f} ± {r['r_sd']:.2f}"]
        lines.append(f"| {o} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kept_generic_line(rows: list[dict]) -> str:
    """Which outputs of the transfer arm kept the generic model (chosen per seed on the target's validation
    share: pimsk.learn.transfer.select_outputs_on_val)."""
    seeds = sorted({r["seed"] for r in rows if r["arm"] == "transfer"})
    parts = [f"seed {s}: " + (", ".join(r["output"] for r in rows if r["arm"] == "transfer" and r["seed"] == s
                                        and r.get("kept_generic")) or "none") for s in seeds]
    return "transfer outputs keeping the generic model (chosen on validation): " + "; ".join(parts)


def run_wrist(args: argparse.Namespace) -> dict:
    import torch

    from pimsk.learn.transfer import summarise, transfer_from_config

    torch.set_num_threads(1)
    work = ROOT / "results" / "transfer" / "wrist"
    t0 = time.perf_counter()
    subjects = {s: prepare_wrist_subject(ROOT / "subjects" / s / "subject.yaml", work / s)
                for s in ("demo_wrist", "demo_wrist_b", "demo_wrist_c")}
    prep_s = time.perf_counter() - t0
    target = args.target
    sources = {s: p for s, p in subjects.items() if s != target}
    cfg = wrist_config(sources, subjects[target], target, seeds=args.seeds, fraction=args.fraction,
                       max_epochs=args.max_epochs, finetune_epochs=args.max_epochs)
    out = work / f"runs_{target}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.yaml").write_text(yaml.safe_dump(cfg))
    t1 = time.perf_counter()
    rows = transfer_from_config({**cfg, "_base_dir": str(out)}, out, recalibration=True)
    summary = summarise(rows)
    split = json.loads((out / "target_split.json").read_text())
    title = (f"Synthetic wrist: sources {', '.join(sources)} -> target {target}, "
             f"{100 * split['train_frames_share']:.0f} % of the target's time for training "
             f"({split['n_train']} train + {split['n_val']} val windows, {split['n_test']} test), "
             f"{len(args.seeds)} seeds")
    return {"experiment": "wrist", "title": title, "rows": rows, "summary": summary, "split": split,
            "prepare_s": prep_s, "train_s": time.perf_counter() - t1, "config": cfg}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=("wrist", "real"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--target", default="demo_wrist_c")
    parser.add_argument("--search", action="store_true", help="real: choose the transfer settings by the source "
                        "simulation (default: bench/transfer_real.FIXED)")
    parser.add_argument("--settings", nargs=3, metavar=("LAYERS", "L2SP", "EPOCHS"),
                        help="real: these fixed transfer settings instead of bench/transfer_real.FIXED")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.experiment == "wrist":
        result = run_wrist(args)
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from transfer_real import run_real

        result = run_real(args)
    print(table(result["summary"], result["title"]))
    print(kept_generic_line(result["rows"]))
    suffix = ""
    if args.experiment == "real":
        from transfer_real import run_suffix

        suffix = run_suffix(args)
    out = args.out or ROOT / "results" / "bench" / f"transfer_{args.experiment}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
