"""Full demo validation: synthesise both demo subjects, run the OpenSim stage (c3d, scale, IK, ID, SO, CMC) on
every trial, and compare every result with the known truth (issue [F3], "done when" bullets 1 and 2).

    python bench/validate_demo.py                       # all trials, both subjects, SO and CMC
    python bench/validate_demo.py --no-process --results-dir results   # validate a workflow run as it is

Prints the per-quantity table and the per-trial summary (Markdown: the README's validation table) and writes
JSON to results/benchmarks/validate_demo.json (rows, summary, wall time per step). Processing goes through the
same `pimsk` verbs the workflow runs (pimsk.validate.process); results land in <results-dir>/<subject>/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from pimsk.paths import PROJECT_ROOT

SUBJECTS = {"demo_leg": PROJECT_ROOT / "subjects" / "demo_leg" / "subject.yaml",
            "demo_wrist": PROJECT_ROOT / "subjects" / "demo_wrist" / "subject.yaml"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", default=",".join(SUBJECTS), help="comma-separated demo subjects")
    p.add_argument("--results-dir", type=Path, default=PROJECT_ROOT / "results" / "validate_demo",
                   help="results root (<dir>/<subject>/...)")
    p.add_argument("--json", type=Path, default=PROJECT_ROOT / "results" / "benchmarks" / "validate_demo.json")
    p.add_argument("--no-process", action="store_true", help="only compare the results already there")
    p.add_argument("--no-cmc", action="store_true", help="skip CMC (slow)")
    p.add_argument("--seed", type=int, default=None, help="synth seed (default: the subject files')")
    p.add_argument("--max-duration", type=float, default=None, help="shorten every trial to this many s")
    args = p.parse_args(argv)

    from pimsk.osim.logging import quiet_opensim
    from pimsk.validate.process import process_subject
    from pimsk.validate.truth import (format_rows, format_summary, load_truth, subject_trial_order, summary_rows,
                                      validate_results, write_csv)

    quiet_opensim()
    names = [s.strip() for s in args.subjects.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SUBJECTS))
    if unknown:
        p.error(f"unknown subjects {unknown}; choose from {', '.join(SUBJECTS)}")
    steps = ("synth", "c3d", "scale", "ik", "id", "so") + (() if args.no_cmc else ("cmc",))
    out: dict = {"seed": args.seed, "max_duration_s": args.max_duration, "subjects": {}}
    all_rows = []
    t_start = time.perf_counter()
    for name in names:
        wall: dict[str, float] = {}
        if not args.no_process:
            report = process_subject(SUBJECTS[name], args.results_dir, steps=steps, seed=args.seed,
                                     max_duration_s=args.max_duration, force_synth=True,
                                     progress=lambda msg: print(msg, file=sys.stderr, flush=True))
            wall = report.wall_s
        results = args.results_dir / name
        order = subject_trial_order(SUBJECTS[name], load_truth(results / "synth" / "truth" / "truth.json"))
        val = validate_results(results, trials=order)
        write_csv(val.rows, args.results_dir / name / "validation.csv")
        all_rows += val.rows
        out["subjects"][name] = {"rows": [asdict(r) for r in val.rows], "summary": summary_rows(val.rows),
                                 "missing": val.missing, "wall_s": wall,
                                 "failures": [f"{r.trial}/{r.step}/{r.item}" for r in val.failures()]}
    out["total_wall_s"] = time.perf_counter() - t_start
    print("## Demo validation (errors over each trial's analysis window, time_range_s)\n")
    print(format_summary(all_rows, markdown=True))
    print("\n### Every compared quantity\n")
    print(format_rows(all_rows, markdown=True))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nJSON: {args.json}  (total {out['total_wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
