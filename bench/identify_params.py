"""Parameter identification and label-free training on the synthetic wrist with perturbed muscles ([F6]).

    python bench/identify_params.py [--out results/bench/identify] [--folds fast_c] [--epochs 300]
        [--angles ik|truth] [--angles-lowpass-hz 15] [--moment-filter matched|none]
        [--max-duration S] [--json results/bench/identify_params.json]

subjects/demo_wrist_id: true max isometric force and optimal fibre length differ from the generic scaled model's
by 20-30 %. Path: pimsk synth -> c3d -> emg (10 Hz envelope low-pass: the 0.2 s bursts of the fast trials
carry content above 6 Hz; MVC trial for the reference) -> geometry (the subject's scaled geometry) -> dataset
(windows; coordinates = the workflow's IK of the subject, low-passed at 15 Hz (`--angles truth`: the
synthetic kinematics); forces only for scoring; with IK the ODE term's muscle moment is low-passed by the
same filter, so both sides of the moment balance carry it (`--moment-filter matched`, Kristianslund et al.
2012): without it the trimmed peak accelerations of the filtered angle pull F_max down, most for ECU, the
muscle with the smallest moment arm) -> for each test fold:

* ``pimsk identify`` (label-free; max isometric forces and optimal fibre lengths identified from the ODE loss,
  starting at the GENERIC scaled model's parameters, written to generic_parameters.json; tendon slack lengths
  and activation time constants stay generic; quasi-dynamic tendon with 3 relaxed passes; parameter learning
  rate 0.1, 300 epochs: ECU's force, the weakest-identified one, still climbs at 150 epochs (fold fast_b: -11.1 %
  at 150, -9.8 % at 300));
* ``pimsk train`` PI-CNN supervised with the true forces as labels (the usual PI-CNN, generic physics);
* forces on the test trial from the ODE (EMG-driven DeGroote at the measured kinematics) with the generic and
  with the identified parameters, and from the label-free network.

Diagnosis of the F_max bias (fold fast_c, parameters alone fitted to the ODE term, which is all they see):
with the TRUE activations as input F_max came out 4-6 % low and l_opt within 1 % (the remaining bias is the
quasi-dynamic tendon: 3 relaxed passes -> 2-5 % low); with the EMG-driven activations 6-16 % low, because the
errors-in-variables kappa was measured on the MVC plateau after clipping the excitation at 1 (0.04-0.06
instead of 0.08-0.11; the true relative activation error in the fast trials is 0.09-0.13). With the kappa fixed
the ODE loss at the true parameters drops from 0.036 to 0.003 (0.006 with true activations): the correction now
has the right size. Freeing the tendon slack lengths and time constants too lets l_opt trade against l_ts
(+-3 %) and tau_d widen to 100-170 ms to smooth the EMG noise (l_opt up to 11 % off), so they stay generic.

Prints (1) truth, generic, identified and % error per muscle and parameter, (2) force RMSE / nRMSE / r against
the truth per method and muscle (test trial), and writes everything to JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUBJECT = ROOT / "subjects" / "demo_wrist_id" / "subject.yaml"
TRIALS = ["fast_a", "fast_b", "fast_c"]
MUSCLES = ["FCR", "FCU", "ECRL", "ECRB", "ECU"]
COORD = "wrist_flexion_r"
NETWORK = {"n_blocks": 3, "channels": 16, "kernel_size": 7, "fc_hidden": [32], "dropout": 0.0}
#: Identified: F_max and l_opt. The tendon slack length (1 % of it moves the fibre by ~4 % of l_opt on these
#: short-fibred muscles) and the activation time constants (they widen to smooth the EMG noise) are kept at the
#: generic model's values: freeing them trades l_opt against l_ts and tau_d against noise (see the module doc).
IDENTIFIED = ("max_isometric_force_n", "optimal_fiber_length_m")
FIELDS = {"max_isometric_force_n": "max_isometric_force", "optimal_fiber_length_m": "optimal_fiber_length",
          "tendon_slack_length_m": "tendon_slack_length"}


def ik_angles(out: Path, trials: list[str]) -> dict[str, Path]:
    """The workflow's own synth -> c3d -> scale -> IK of the subject (results under ``out/wf``): trial -> IK
    coordinates.mot, the kinematics a lab has (the synthetic truth only scores)."""
    import subprocess

    wf = (out / "wf").resolve()
    files = {t: wf / "demo_wrist_id" / t / "ik" / "coordinates.mot" for t in trials}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(ROOT), "--cores", "1",
           "--quiet", "--config", "subjects=[demo_wrist_id]", "steps=[c3d,scale,ik]", f"results_dir={wf}",
           "--", *map(str, files.values())]
    subprocess.run(cmd, check=True)
    return files


def prepare(out: Path, max_duration: float | None = None, angles: str = "ik", lowpass_hz: float = 15.0) -> dict:
    """synth -> c3d -> emg -> geometry -> dataset; generic parameters JSON. Returns paths.

    angles: ``ik`` (the workflow's IK, zero-phase low-passed at ``lowpass_hz`` before it is differentiated) or
    ``truth`` (synthetic kinematics)."""
    from pimsk.cli import main
    from pimsk.learn.physics_files import load_muscle_parameters, save_muscle_parameters
    from pimsk.synth.generate import synthesize

    import torch

    trials = ["mvc", *TRIALS]
    synthesize(SUBJECT, out / "synth", max_duration_s=max_duration, only_trials=trials)
    truth_dir = out / "synth" / "truth"
    for t in trials:
        assert main(["c3d", str(out / "synth" / f"{t}.c3d"), "--out-dir", str(out / "c3d" / t),
                     "--subject-file", str(SUBJECT), "--trial", t]) == 0
    assert main(["emg", *(str(out / "c3d" / t / "emg_raw.sto") for t in trials), "--out-dir", str(out / "emg"),
                 "--trial-names", *trials, "--delay-s", "0.04", "--lowpass-hz", "10",
                 "--mvc", str(out / "c3d" / "mvc" / "emg_raw.sto"),
                 "--times-from", *(str(truth_dir / t / "coordinates.mot") for t in trials)]) == 0
    model = truth_dir / TRIALS[0] / "model.osim"  # geometry and inertia = the scaled subject's
    assert main(["geometry", str(model), "--muscles", *MUSCLES, "--out", str(out / "surrogate.json"),
                 "--report", str(out / "surrogate.csv"), "--n-samples", "200", "--coordinates", COORD]) == 0
    coords = ik_angles(out, TRIALS) if angles == "ik" else {
        t: (truth_dir / t / "coordinates.mot").resolve() for t in TRIALS}
    spec = {"targets": {"coordinates": [COORD], "forces": MUSCLES},
            "samples": {"kind": "window", "length": 100, "stride": 50},
            "trials": [{"name": t, "emg": f"emg/{t}_envelopes.sto", "coordinates": str(coords[t]),
                        "forces": f"synth/truth/{t}/forces.sto"} for t in TRIALS]}
    if angles == "ik":
        spec["lowpass_hz"] = {"coordinates": lowpass_hz}
    (out / "dataset.yaml").write_text(yaml.safe_dump(spec))
    assert main(["dataset", "--spec", str(out / "dataset.yaml"), "--out", str(out / "data.npz")]) == 0
    # the generic scaled model's muscle parameters: the subject's model with the unperturbed values
    doc = json.loads((truth_dir / "truth.json").read_text())["muscle_parameters"]
    params = load_muscle_parameters(model, MUSCLES)
    changes = {f: torch.tensor([doc["scaled"][m][k] for m in MUSCLES], dtype=torch.float64) for f, k in FIELDS.items()}
    save_muscle_parameters(params.replace(**changes), out / "generic_parameters.json")
    return {"truth": doc, "model": model, "data": out / "data.npz"}


def reuse_prepared(out: Path) -> dict:
    """What :func:`prepare` returned, from files it wrote earlier."""
    truth_dir = out / "synth" / "truth"
    return {"truth": json.loads((truth_dir / "truth.json").read_text())["muscle_parameters"],
            "model": truth_dir / TRIALS[0] / "model.osim", "data": out / "data.npz"}


def write_configs(out: Path, model: Path, epochs: int, moment_lowpass_hz: float | None = None) -> tuple[Path, Path]:
    physics = {"surrogate": "surrogate.json", "muscle_parameters": "generic_parameters.json", "chain": str(model),
               "chain_root_body": "forearm_r", "chain_coordinates": [COORD]}
    ident = {"coordinates": [COORD], "muscles": MUSCLES, "physics": physics,
             "mvc": {"envelopes": "emg/mvc_envelopes.sto", "window_s": [0.5, 2.5]}, "network": NETWORK,
             "identify": {"max_epochs": epochs, "parameters": list(IDENTIFIED), "tendon_iterations": 3,
                          "tendon_relaxation": 0.5, "parameter_learning_rate": 0.1,
                          "moment_lowpass_hz": moment_lowpass_hz},
             "protocol": {"name": "leave_one_trial_out", "n_val_trials": 0}}
    (out / "identify.yaml").write_text(yaml.safe_dump(ident))
    sup = {"method": "picnn", "seed": 0, "outputs": [COORD, *MUSCLES], "network": NETWORK,
           "training": {"max_epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "patience": epochs},
           "loss": {"lambda": 1.0}, "physics": {**physics, "clamp_to_surrogate_range": True},
           "protocol": {"name": "leave_one_trial_out", "n_val_trials": 0}}
    (out / "supervised.yaml").write_text(yaml.safe_dump(sup))
    return out / "identify.yaml", out / "supervised.yaml"


def force_metrics(y: np.ndarray, f: np.ndarray, skip: int = 10) -> dict[str, dict[str, float]]:
    """Per muscle RMSE (N), nRMSE (RMSE / range of the truth) and Pearson r over the test windows (first
    ``skip`` frames of each window left out: the EMG-driven activation starts at a(0) = e(0))."""
    from pimsk.learn.metrics import nrmse, pearson_r, rmse

    yt, fp = y[:, skip:], f[:, skip:]
    r, n, c = rmse(yt, fp), nrmse(yt, fp), pearson_r(yt, fp)
    return {m: {"rmse_n": float(r[i]), "nrmse": float(n[i]), "r": float(c[i])} for i, m in enumerate(MUSCLES)}


def run_fold(out: Path, fold: str, prep: dict, cfg_id: Path, cfg_sup: Path, reuse: bool = False) -> dict:
    from pimsk.cli import main
    from pimsk.learn.dataset_file import load_samples
    from pimsk.learn.physics_files import load_muscle_parameters
    from pimsk.learn.train import load_fit

    samples = load_samples(prep["data"])
    folder = out / "identify" / f"leave_one_trial_out-{fold}"
    sup_folder = out / "supervised" / f"leave_one_trial_out-{fold}" / "seed_0"
    t_id = t_sup = float("nan")
    if not (reuse and (folder / "test_forces.npz").is_file()):
        t0 = time.perf_counter()
        assert main(["identify", "--dataset", str(prep["data"]), "--config", str(cfg_id), "--out",
                     str(out / "identify"), "--fold", fold]) == 0
        t_id = time.perf_counter() - t0
    if not (reuse and (sup_folder / "model.pt").is_file()):
        t0 = time.perf_counter()
        assert main(["train", "--dataset", str(prep["data"]), "--config", str(cfg_sup), "--out",
                     str(out / "supervised"), "--fold", fold]) == 0
        t_sup = time.perf_counter() - t0
    saved = np.load(folder / "test_forces.npz")
    idx = saved["index"]
    y = samples.targets[idx][..., [samples.target_labels.index(m) for m in MUSCLES]]
    # generic ODE forces: same ODE, generic parameters (pimsk identify --no-identify would retrain a network)
    from pimsk.commands.identify import load_identify_config

    raw = load_identify_config(cfg_id)
    generic = load_muscle_parameters(out / "generic_parameters.json", MUSCLES)
    identified = load_muscle_parameters(folder / "identified_parameters.json", MUSCLES)
    doc = json.loads((folder / "identify.json").read_text())
    ode_generic = _ode(samples, idx, raw, generic, doc["excitation_gain"])
    sup = load_fit(sup_folder)
    pred = sup.predict(samples.emg[idx], samples.dt_s[idx])
    f_sup = pred[..., [sup.output_labels.index(m) for m in MUSCLES]]
    methods = {"generic_ode": ode_generic, "identified_ode": saved["ode"], "label_free_network": saved["network"],
               "supervised_picnn": f_sup}
    truth = prep["truth"]
    params = {}
    for f, key in FIELDS.items():
        for j, m in enumerate(MUSCLES):
            tv, gv, iv = truth["truth"][m][key], float(getattr(generic, f)[j]), float(getattr(identified, f)[j])
            params[f"{m}:{f}"] = {"truth": tv, "generic": gv, "identified": iv,
                                  "generic_err_pct": 100 * (gv / tv - 1), "identified_err_pct": 100 * (iv / tv - 1)}
    for f in ("activation_time_constant_s", "deactivation_time_constant_s"):
        for j, m in enumerate(MUSCLES):
            tv, gv, iv = 0.015 if f.startswith("act") else 0.060, float(getattr(generic, f)[j]), \
                float(getattr(identified, f)[j])
            params[f"{m}:{f}"] = {"truth": tv, "generic": gv, "identified": iv,
                                  "generic_err_pct": 100 * (gv / tv - 1), "identified_err_pct": 100 * (iv / tv - 1)}
    angle = saved["coordinates"][..., 0]
    y_angle = samples.targets[idx][..., samples.target_labels.index(COORD)]
    return {"fold": fold, "parameters": params, "forces": {k: force_metrics(y, v) for k, v in methods.items()},
            "angle_rmse_deg": float(np.degrees(np.sqrt(((angle - y_angle)[:, 10:] ** 2).mean()))),
            "seconds": {"identify": t_id, "supervised": t_sup}}


def _ode(samples, idx, raw, params, gain: dict) -> np.ndarray:
    """EMG-driven DeGroote forces at the measured kinematics with ``params`` (the ODE of pimsk identify)."""
    import torch

    from pimsk.learn.identify import BoundedMuscleParameters, MusculoskeletalODE, ode_forces
    from pimsk.learn.losses import PhysicsLoss, PhysicsSpec
    from pimsk.learn.train import assets_from_config

    assets = assets_from_config(raw)
    physics = PhysicsLoss([COORD, *MUSCLES], samples.target_labels, samples.emg_labels, assets.surrogate, params,
                          assets.chain, PhysicsSpec(excitation_gain=gain))
    settings = dict(raw.get("identify") or {})
    ode = MusculoskeletalODE(physics, BoundedMuscleParameters(physics.params, []),
                             tendon_iterations=int(settings.get("tendon_iterations", 1)),
                             tendon_relaxation=float(settings.get("tendon_relaxation", 1.0)))
    sub = samples.subset(idx)
    with torch.no_grad():
        _, forces = ode(torch.as_tensor(sub.emg), torch.as_tensor(sub.targets), torch.as_tensor(sub.dt_s))
    return forces.numpy()


def print_tables(results: list[dict]) -> None:
    for res in results:
        print(f"\n## fold {res['fold']} (test trial), identify {res['seconds']['identify']:.0f} s, supervised "
              f"{res['seconds']['supervised']:.0f} s; label-free angle RMSE {res['angle_rmse_deg']:.2f} deg")
        print("| muscle | parameter | truth | generic | identified | generic err % | identified err % |")
        print("|---|---|---|---|---|---|---|")
        for key, v in res["parameters"].items():
            m, f = key.split(":")
            print(f"| {m} | {f} | {v['truth']:.5g} | {v['generic']:.5g} | {v['identified']:.5g} | "
                  f"{v['generic_err_pct']:+.1f} | {v['identified_err_pct']:+.1f} |")
        print("\n| method | " + " | ".join(f"{m} RMSE N / nRMSE / r" for m in MUSCLES) + " | mean nRMSE | mean r |")
        print("|---|" + "---|" * (len(MUSCLES) + 2))
        for meth, per in res["forces"].items():
            cells = [f"{per[m]['rmse_n']:.1f} / {per[m]['nrmse']:.3f} / {per[m]['r']:.3f}" for m in MUSCLES]
            mean_n = np.mean([per[m]["nrmse"] for m in MUSCLES])
            mean_r = np.mean([per[m]["r"] for m in MUSCLES])
            print(f"| {meth} | " + " | ".join(cells) + f" | {mean_n:.3f} | {mean_r:.3f} |")


def main() -> int:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "identify")
    ap.add_argument("--json", type=Path, default=ROOT / "results" / "bench" / "identify_params.json")
    ap.add_argument("--folds", nargs="+", default=["fast_c"])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--max-duration", type=float, default=None)
    ap.add_argument("--angles", choices=("ik", "truth"), default="ik",
                    help="kinematics of the dataset: the workflow's IK (10 Hz low-pass) or the synthetic truth")
    ap.add_argument("--angles-lowpass-hz", type=float, default=15.0,
                    help="cut-off of the IK angle (Hz): the fast trials' 0.2 s bursts move the wrist up to ~15 Hz")
    ap.add_argument("--moment-filter", choices=("matched", "none"), default="matched",
                    help="with IK angles: low-pass the ODE term's muscle moment at the angles' cut-off too (matched, "
                         "Kristianslund et al. 2012) or leave it unfiltered")
    ap.add_argument("--reuse", action="store_true", help="reuse the data and trained folds already under --out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    prep = prepare(args.out, args.max_duration, args.angles, args.angles_lowpass_hz) if not (args.reuse and (args.out / "data.npz").is_file()) else \
        reuse_prepared(args.out)
    matched = args.angles == "ik" and args.moment_filter == "matched"
    cfg_id, cfg_sup = write_configs(args.out, prep["model"], args.epochs, args.angles_lowpass_hz if matched else None)
    results = [run_fold(args.out, f, prep, cfg_id, cfg_sup, args.reuse) for f in args.folds]
    print_tables(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"subject": str(SUBJECT.relative_to(ROOT)), "epochs": args.epochs,
                                     "angles": args.angles, "angles_lowpass_hz": args.angles_lowpass_hz,
                                     "moment_lowpass_hz": args.angles_lowpass_hz if matched else None,
                                     "max_duration_s": args.max_duration, "results": results}, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
