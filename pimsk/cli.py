"""`pimsk <verb>`: one verb per workflow step.

Each verb lives in ``pimsk/commands/<verb>.py`` with ``HELP: str``,
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported lazily so
``pimsk --help`` stays fast. Errors print one line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pimsk.errors import PimskError

# verb -> (module, one-line help). Add a verb here when its module exists.
VERBS: dict[str, tuple[str, str]] = {
    "c3d": ("pimsk.commands.c3d", "C3D -> markers .trc (m, OpenSim axes), GRF .mot + ExternalLoads .xml, raw EMG .sto"),
    "anc": ("pimsk.commands.anc", "Motion Analysis .anc analog file -> raw EMG .sto (and force channels)"),
    "scale": ("pimsk.commands.scale", "scale a generic model (measurements + marker placement, marker error table)"),
    "ik": ("pimsk.commands.ik", "inverse kinematics: markers .trc -> coordinates.mot + marker errors"),
    "id": ("pimsk.commands.id", "inverse dynamics: coordinates + ExternalLoads -> moments.sto"),
    "so": ("pimsk.commands.so", "static optimization: coordinates (+ GRF) -> muscle activations and forces"),
    "rra": ("pimsk.commands.rra", "residual reduction: IK kinematics + GRF -> adjusted kinematics and model"),
    "cmc": ("pimsk.commands.cmc", "computed muscle control: kinematics (+ GRF) -> muscle forces and states"),
    "geometry": ("pimsk.commands.geometry", "fit MTU length / moment-arm polynomials to OpenSim samples (path surrogate)"),
    "synth": ("pimsk.commands.synth", "synthetic subject: scaled generic model + known excitations -> C3D + truth"),
    "emg": ("pimsk.commands.emg", "raw EMG .sto -> normalised envelopes (band-pass, rectify, low-pass, reference)"),
    "dataset": ("pimsk.commands.dataset", "EMG envelopes + coordinate/force .sto -> dataset .npz (cycles or windows)"),
    "train": ("pimsk.commands.train", "train PI-CNN (data + physics loss) or a baseline (CNN, ELM, ML-ELM, SVR)"),
    "transfer": ("pimsk.commands.transfer", "personalise a generic PI-CNN to a new subject (frozen conv blocks, "
                 "fine-tuned head, the subject's physics) vs generic and scratch"),
    "identify": ("pimsk.commands.identify", "identify muscle parameters (musculoskeletal ODE loss) while training a "
                 "label-free PI-CNN"),
    "evaluate": ("pimsk.commands.evaluate", "test-fold metrics of trained runs (RMSE, nRMSE, r, R^2), ANOVA"),
    "figures": ("pimsk.commands.figures", "figures of the learning stage (predictions, methods, training curves, "
                "training size, depth, truth)"),
    "validate": ("pimsk.commands.validate", "compare a processed synthetic subject with its truth (error table)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pimsk",
        description="Physics-informed musculoskeletal modelling: C3D -> OpenSim labels -> PI-CNN.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on error")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (module_name, help_text) in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on error")
        # Arguments are added lazily only for the chosen verb (see main).
    return parser


def _full_parser_for(verb: str) -> argparse.ArgumentParser:
    module_name, help_text = VERBS[verb]
    module = importlib.import_module(module_name)
    p = argparse.ArgumentParser(prog=f"pimsk {verb}", description=help_text)
    p.add_argument("--debug", action="store_true", help="show full tracebacks on error")
    module.add_arguments(p)
    p.set_defaults(_run=module.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    top = build_parser()
    verb_index = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if verb_index is None:
        top.print_help() if not argv or "-h" in argv or "--help" in argv else top.print_usage()
        return 0 if (not argv or "-h" in argv or "--help" in argv) else 2
    verb = argv[verb_index]
    if verb not in VERBS:
        top.print_usage(sys.stderr)
        print(f"pimsk: error: unknown verb {verb!r}; choose one of: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    rest = [a for i, a in enumerate(argv) if i != verb_index]
    try:
        parser = _full_parser_for(verb)
        args = parser.parse_args(rest)
        return int(args._run(args) or 0)
    except PimskError as exc:
        if debug:
            raise
        print(f"pimsk {verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pimsk {verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one line
        if debug:
            raise
        print(f"pimsk {verb}: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
