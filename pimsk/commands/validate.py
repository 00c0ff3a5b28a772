"""`pimsk validate`: compare a processed synthetic subject with its known truth and print the error table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pimsk.errors import ConfigError

HELP = "compare a processed synthetic subject (scale, IK, ID, SO, CMC) with its truth; print and save the table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject-file", type=Path, default=None,
                        help="the subject's subject.yaml (names the subject; its id must match the truth's)")
    parser.add_argument("--results", type=Path, required=True,
                        help="the subject's results folder (results/<subject>), holding synth/, scale/, <trial>/")
    parser.add_argument("--truth", type=Path, default=None,
                        help="truth.json of pimsk synth (default RESULTS/synth/truth/truth.json)")
    parser.add_argument("--out", type=Path, default=None, help="CSV file for every compared quantity")
    parser.add_argument("--json", type=Path, default=None, help="also write rows + per-trial summary as JSON")
    parser.add_argument("--trials", default=None, help="comma-separated dynamic trials (default: all in the truth)")
    parser.add_argument("--steps", default="scale,ik,id,so,cmc", help="results to compare (default: all found)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--fail-on-miss", action="store_true",
                        help="exit with status 1 when a quantity misses its limit (default: report only)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pimsk.validate.truth import (format_rows, format_summary, load_truth, subject_trial_order, summary_rows,
                                      validate_results, write_csv)

    truth_json = args.truth or args.results / "synth" / "truth" / "truth.json"
    trials = [t.strip() for t in args.trials.split(",") if t.strip()] if args.trials else None
    if args.subject_file is not None:
        order = subject_trial_order(args.subject_file, load_truth(truth_json))
        trials = trials if trials is not None else order
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    val = validate_results(args.results, truth_json, trials=trials, steps=steps)
    if not val.rows:
        raise ConfigError("no results to compare", subject=val.subject, file=str(args.results),
                          hint="run the workflow (or pimsk.validate.process) first; looked for: "
                               + ", ".join(val.missing[:4]))
    print(f"pimsk validate: {val.subject} against its truth ({truth_json}); errors over each trial's analysis "
          "window (time_range_s; 'whole trial': the whole overlap of result and truth)\n")
    print(format_rows(val.rows, markdown=args.markdown))
    print()
    print(format_summary(val.rows, markdown=args.markdown))
    if val.missing:
        print("\nnot found (not compared): " + ", ".join(val.missing))
    if args.out:
        write_csv(val.rows, args.out)
        print(f"\ntable: {args.out}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"subject": val.subject, "rows": [asdict(r) for r in val.rows],
                                         "summary": summary_rows(val.rows), "missing": val.missing}, indent=1) + "\n")
    failures = val.failures()
    if failures:
        print(f"\n{len(failures)} quantities miss their limit: "
              + ", ".join(f"{r.trial}/{r.step}/{r.item} {r.error:.2f} {r.error_unit} (limit {r.limit:g})"
                          for r in failures))
    return 1 if (failures and args.fail_on_miss) else 0
