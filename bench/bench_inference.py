"""Inference speed of a trained PI-CNN on the CPU, and one gait cycle's forces against CMC's time for that cycle.

1. Single-window latency: the saved PI-CNN (``model.pt`` of ``pimsk train`` / ``bench/compare_methods.py``) on one
   sample (batch 1, the sample length it was trained on, e.g. one 100-frame gait cycle), one torch thread,
   eval mode under ``torch.inference_mode``: ``--repeats`` timed calls after ``--warmup`` calls; median, 5th and
   95th percentile in ms. Also through ``PICNN.predict`` (numpy in, SI numpy out: what ``pimsk evaluate`` calls).
2. One gait cycle's forces: raw EMG of the walk -> envelopes (band-pass, rectify, low-pass, normalise by the
   stored reference, delay, resample at the cycle's frames: ``pimsk.core.emg``) -> the 100-frame cycle -> the
   network; timed end to end (median of ``--repeats``), beside CMC's wall time for the same cycle.
   CMC's time comes from ``--cmc-seconds``, a Snakemake benchmark file (``--cmc-benchmark
   results/benchmarks/<subject>/<trial>/cmc.tsv``, column ``s``) or ``--run-cmc`` (runs ``pimsk cmc`` on the
   trial's ``time_range_s`` with reserves of 10 N m, as bench/run_motonms.py, and times it; a few minutes).

Run: ``python bench/bench_inference.py --model results/bench/compare_methods/motonms_unipd/runs/picnn/<fold>/seed_0
[--trial walk1] [--run-cmc | --cmc-seconds S | --cmc-benchmark F]``; writes ``results/bench/bench_inference.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pimsk.config import load_subject  # noqa: E402
from pimsk.core.emg import EnvelopeSettings, apply_delay, envelope, normalise, resample_envelope  # noqa: E402
from pimsk.io.storage import read_storage  # noqa: E402
from pimsk.learn.datasets import time_normalise  # noqa: E402
from pimsk.learn.train import load_fit  # noqa: E402


def _stats_ms(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds) * 1e3
    return {"median_ms": float(np.median(a)), "p05_ms": float(np.percentile(a, 5)),
            "p95_ms": float(np.percentile(a, 95)), "mean_ms": float(a.mean()), "n": int(a.size)}


def window_latency(model, n_frames: int, repeats: int, warmup: int) -> dict[str, dict[str, float]]:
    """Batch-1 forward passes (standardised outputs) and ``predict`` (SI numpy) on random envelopes."""
    net = model.model
    net.eval()
    rng = np.random.default_rng(0)
    emg = rng.uniform(0.0, 1.0, size=(1, n_frames, net.n_inputs))
    dt = np.full(1, float(net.dt_ref_s))
    x, d = torch.as_tensor(emg, dtype=torch.float32), torch.as_tensor(dt, dtype=torch.float32)
    out = {}
    with torch.inference_mode():
        for _ in range(warmup):
            net(x, d)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x, d)
            times.append(time.perf_counter() - t0)
    out["forward"] = _stats_ms(times)
    for _ in range(warmup):
        net.predict(emg, dt)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.predict(emg, dt)
        times.append(time.perf_counter() - t0)
    out["predict"] = _stats_ms(times)
    return out


def cycle_time(model, raw_path: Path, reference: dict, cycle_s: tuple[float, float], n_frames: int,
               delay_s: float, repeats: int) -> dict[str, float]:
    """Raw EMG -> normalised envelopes -> one time-normalised cycle -> forces; median wall time (s)."""
    raw = read_storage(raw_path)
    labels = list(model.emg_labels)
    cols = [raw.labels.index(c) for c in labels]
    ref = np.asarray([reference["reference"][c] for c in labels], dtype=float)
    rate = 1.0 / float(np.median(np.diff(raw.time_s)))
    settings = EnvelopeSettings()
    grid = np.linspace(cycle_s[0], cycle_s[1], n_frames)
    dt = np.full(1, (cycle_s[1] - cycle_s[0]) / (n_frames - 1))

    def once() -> np.ndarray:
        env = envelope(raw.data[:, cols], rate, settings)
        env = apply_delay(normalise(env, ref), rate, delay_s)
        env = resample_envelope(raw.time_s, env, grid)
        return model.predict(time_normalise(grid, env, cycle_s[0], cycle_s[1], n_frames)[None], dt)

    once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred = once()
        times.append(time.perf_counter() - t0)
    assert pred.shape == (1, n_frames, len(model.output_labels)) and np.isfinite(pred).all()
    t_env = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        envelope(raw.data[:, cols], rate, settings)
        t_env.append(time.perf_counter() - t0)
    return {"end_to_end_s": float(np.median(times)), "envelope_filtering_s": float(np.median(t_env)),
            "raw_emg_samples": int(raw.data.shape[0]), "raw_emg_rate_hz": rate}


def run_cmc(results: Path, subject: str, trial: dict, out: Path) -> float:
    """``pimsk cmc`` on the trial's time range (reserves 10 N m, 6 Hz), wall time in s."""
    from pimsk.osim.cmc_defaults import write_actuators
    from pimsk.osim.model_info import read_model_info

    res = results / subject
    model = res / "scale" / "model_scaled.osim"
    out.mkdir(parents=True, exist_ok=True)
    acts = write_actuators(read_model_info(model, log_file=out / "model_info.log"), out / "actuators.xml",
                           purpose="cmc", reserve_optimal_force=10.0)
    name = trial["name"]
    cmd = [sys.executable, "-m", "pimsk", "cmc", "--model", str(model), "--kinematics",
           str(res / name / "ik" / "coordinates.mot"), "--external-loads", str(res / name / "c3d" / "external_loads.xml"),
           "--actuators", str(acts), "--time-range", *map(str, trial["time_range_s"]), "--lowpass-hz", "6",
           "--out", str(out / "cmc"), "--subject", subject, "--trial", name]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="folder with the PI-CNN's model.pt")
    ap.add_argument("--subject", default="motonms_unipd")
    ap.add_argument("--trial", default="walk1")
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--emg-reference", type=Path,
                    default=ROOT / "results/bench/compare_methods/prep/motonms_unipd/emg/emg_reference.json")
    ap.add_argument("--delay-s", type=float, default=0.04)
    ap.add_argument("--frames", type=int, default=100, help="sample length the model was trained on (a cycle: 100)")
    ap.add_argument("--repeats", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cmc-seconds", type=float)
    ap.add_argument("--cmc-benchmark", type=Path, help="Snakemake benchmark .tsv of the trial's cmc job")
    ap.add_argument("--run-cmc", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "bench_inference.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_fit(args.model)
    if model.method not in ("picnn", "cnn"):
        raise SystemExit(f"{args.model} holds a {model.method} model, not a PI-CNN")
    report: dict = {"model": str(args.model), "method": model.method, "threads": args.threads,
                    "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                    "n_parameters": model.model.n_parameters(), "emg_channels": len(model.emg_labels),
                    "outputs": model.output_labels}
    subject = load_subject(ROOT / "subjects" / args.subject / "subject.yaml")
    trial = next(t for t in subject["trials"] if t["name"] == args.trial)
    n_frames = args.frames
    report["window_frames"] = n_frames
    report["latency"] = window_latency(model, n_frames, args.repeats, args.warmup)
    ref = json.loads(args.emg_reference.read_text())
    cycle = tuple(float(x) for x in trial["time_range_s"])
    report["cycle"] = {"trial": args.trial, "time_range_s": list(cycle),
                       **cycle_time(model, args.results / args.subject / args.trial / "c3d" / "emg_raw.sto", ref,
                                    cycle, n_frames, args.delay_s, max(20, args.repeats // 20))}
    cmc_s, source = args.cmc_seconds, "--cmc-seconds"
    if args.cmc_benchmark is not None:
        import csv

        with args.cmc_benchmark.open() as fh:
            cmc_s, source = float(next(csv.DictReader(fh, delimiter="\t"))["s"]), str(args.cmc_benchmark)
    if args.run_cmc:
        cmc_s, source = run_cmc(args.results, args.subject, trial, args.out.parent / "bench_inference_cmc"), "run"
    if cmc_s is not None:
        report["cmc"] = {"seconds": cmc_s, "source": source,
                         "ratio_cmc_over_picnn": cmc_s / report["cycle"]["end_to_end_s"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    lat = report["latency"]
    print(f"PI-CNN {args.model} ({report['n_parameters']} parameters, {report['emg_channels']} EMG -> "
          f"{len(model.output_labels)} outputs), {args.threads} thread(s), batch 1, {n_frames} frames:")
    for k, v in lat.items():
        print(f"  {k:<8} median {v['median_ms']:.3f} ms  (p05 {v['p05_ms']:.3f}, p95 {v['p95_ms']:.3f}; n={v['n']})")
    c = report["cycle"]
    print(f"one gait cycle ({args.trial}, {cycle[1] - cycle[0]:.3f} s): raw EMG ({c['raw_emg_samples']} samples) -> "
          f"forces {c['end_to_end_s'] * 1e3:.2f} ms (envelope filtering {c['envelope_filtering_s'] * 1e3:.2f} ms)")
    if "cmc" in report:
        print(f"CMC for the same cycle: {cmc_s:.1f} s ({source}); ratio CMC / PI-CNN = "
              f"{report['cmc']['ratio_cmc_over_picnn']:.3g}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
