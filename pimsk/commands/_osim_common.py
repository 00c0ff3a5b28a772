"""Arguments and helpers shared by the OpenSim verbs (scale, ik, id, so, rra, cmc).

Every verb runs either from explicit arguments or, with ``--setup FILE``, a setup file as it is
(its inputs resolved relative to it, its results redirected to ``--out``), through the same runner.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from pimsk.errors import ConfigError
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun

#: verb -> the OpenSim tool a --setup file must set up
TOOL_OF_VERB = {"scale": "ScaleTool", "ik": "InverseKinematicsTool", "id": "InverseDynamicsTool",
                "so": "AnalyzeTool", "rra": "RRATool", "cmc": "CMCTool"}


def add_common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("run")
    g.add_argument("--out", type=Path, required=True, help="results folder (results/<subject>/<trial>/<step>/)")
    g.add_argument("--log", type=Path, default=None, help="log file for OpenSim's output (default OUT/<step>.log)")
    g.add_argument("--subject", default=None, help="subject id (named in errors)")
    g.add_argument("--trial", default=None, help="trial name (named in errors)")
    g.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="stop the tool after this many s")
    g.add_argument("--setup", type=Path, default=None,
                   help="run this OpenSim setup file as is (results go to --out); other inputs are then ignored")
    g.add_argument("--set", action="append", default=[], metavar="PROPERTY=VALUE",
                   help="with --setup: change a top-level tool property, e.g. final_time=0.7 (repeatable)")


def trial_model_args(parser: argparse.ArgumentParser) -> None:
    """``--lock`` / ``--keep-muscles``: the trial's own model (pimsk.osim.trial_model)."""
    g = parser.add_argument_group("trial model (written to OUT/model_trial.osim and used instead of --model)")
    g.add_argument("--lock", default=None, metavar="COORD=VALUE,...",
                   help="lock these coordinates at these values (deg; m for a translation): a seat, a brace")
    g.add_argument("--keep-muscles", default=None, metavar="MUSCLE,...",
                   help="keep only these muscles (every other force stays)")


def trial_model(args: argparse.Namespace, model: Path) -> Path:
    """``model``, or ``OUT/model_trial.osim`` made from it when ``--lock`` or ``--keep-muscles`` is given."""
    from pimsk.osim.trial_model import TRIAL_MODEL, parse_lock, parse_muscles

    locked, muscles = parse_lock(getattr(args, "lock", None)), parse_muscles(getattr(args, "keep_muscles", None))
    if not locked and muscles is None:
        return model
    from pimsk.osim.trial_model import write_trial_model

    return write_trial_model(model, Path(args.out) / TRIAL_MODEL, locked_deg=locked, muscles=muscles,
                             subject=args.subject, trial=args.trial)


def time_range_arg(parser: argparse.ArgumentParser, required: bool = False, help_text: str = "") -> None:
    parser.add_argument("--time-range", type=float, nargs=2, metavar=("T0_S", "T1_S"), default=None,
                        help=help_text or "time window (s); default: the whole input file")


def lowpass_arg(parser: argparse.ArgumentParser, default: float | None) -> None:
    parser.add_argument("--lowpass-hz", type=float, default=default,
                        help=f"low-pass cutoff for the input coordinates (Hz; <= 0 disables; default {default})")


def lowpass(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def require(args: argparse.Namespace, verb: str, *names: str) -> None:
    """ConfigError naming the missing options (explicit mode needs them; --setup mode does not)."""
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) in (None, [])]
    if missing:
        raise ConfigError(f"pimsk {verb}: {', '.join(missing)} required unless --setup is given",
                          subject=args.subject, trial=args.trial)


def run_setup_as_is(args: argparse.Namespace, verb: str) -> ToolRun:
    from pimsk.osim import setup_xml
    from pimsk.osim.runner import run_setup

    cls = setup_xml.tool_class(args.setup)
    if cls != TOOL_OF_VERB[verb]:
        raise ConfigError(f"sets up {cls}; `pimsk {verb}` runs {TOOL_OF_VERB[verb]} setups", file=str(args.setup),
                          subject=args.subject, trial=args.trial)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects PROPERTY=VALUE, got {item!r}", field="--set")
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    return run_setup(args.setup, step=verb, out_dir=args.out, log_file=args.log, overrides=overrides,
                     subject=args.subject, trial=args.trial, timeout_s=args.timeout_s)


def report(run: ToolRun) -> int:
    """Print where the results are; return 0."""
    print(f"{run.step}: {run.tool} finished in {run.wall_s:.2f} s; setup {run.setup}; log {run.log_file}")
    for p in run.outputs:
        print(f"  {p}")
    for k, p in run.extra.items():
        print(f"  {k}: {p}")
    if run.repaired:
        print(f"  repaired states headers: {', '.join(map(str, run.repaired))}")
    return 0


def constraint_weight(value: float | None) -> float:
    return math.inf if value is None or value < 0 else value
