"""`pimsk c3d`: one C3D trial -> markers.trc, grf.mot, external_loads.xml, emg_raw.sto, events.json.

Settings come from the command line, or from a subject file (``--subject-file``: ``lab_to_opensim``,
``emg.channels`` and the trial's ``plates``, ``rename_markers``, ``drop_markers``); the command line wins where
both give one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pimsk.errors import ConfigError

HELP = "C3D -> markers .trc (m, OpenSim axes), GRF .mot + ExternalLoads .xml, raw EMG .sto, events.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the C3D file")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the outputs (created)")
    parser.add_argument("--subject", help="subject id (for messages and the subject file)")
    parser.add_argument("--trial", help="trial name (default: the file's stem)")
    parser.add_argument("--subject-file", type=Path,
                        help="subject.yaml giving lab_to_opensim, emg.channels and the trial's plates/marker fixes")
    parser.add_argument("--rotation", help="lab -> OpenSim axes: preset (identity, z_up, z_up_y_forward, "
                                           "y_up_z_forward, ...) or OpenSim X,Y,Z as lab axes, e.g. 'x,z,-y'")
    parser.add_argument("--emg-map", help="'auto' (channels not used by plates, named by label), 'none', or "
                                          "CH=muscle,... with CH an analog label or 1-based channel number")
    parser.add_argument("--plate-feet", help="'auto' (from heel/toe markers) or plate=side pairs, e.g. 1=r,2=l,3=none")
    parser.add_argument("--foot-markers", help="markers used by --plate-feet auto, e.g. 'r=RCAL,RMT1;l=LCAL,LMT1'")
    parser.add_argument("--max-gap-frames", type=int, default=10, help="longest marker gap filled by spline (frames)")
    parser.add_argument("--required-markers", help="comma-separated markers that must be present")
    parser.add_argument("--keep-markers", help="comma-separated markers to write (default: all labelled)")
    parser.add_argument("--rename-markers", help="OLD=NEW,... applied before --drop/--keep/--required")
    parser.add_argument("--drop-markers", help="comma-separated markers (after renaming) not to write")
    parser.add_argument("--force-threshold-n", type=float, default=20.0,
                        help="vertical force (N) at or below which a plate counts as unloaded")
    parser.add_argument("--grf-rate", choices=("analog", "point"), default="analog", help="sampling of grf.mot")
    parser.add_argument("--plate-force-sign", choices=("auto", "as_stored", "flip"), default="auto",
                        help="auto: make each plate's force the ground reaction on the subject")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="limit for reading the file (s)")


def _pairs(text: str, field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{item!r} is not KEY=VALUE", field=field, hint=f"e.g. {field} A=B,C=D")
        out[key.strip()] = value.strip()
    return out


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def parse_plate_feet(text: str) -> str | dict[int, str]:
    """'auto' or '1=r,2=l' -> {1: 'r', 2: 'l'}."""
    if text.strip().lower() == "auto":
        return "auto"
    out: dict[int, str] = {}
    for key, side in _pairs(text, "--plate-feet").items():
        if not key.isdigit() or side.lower() not in ("r", "l", "none"):
            raise ConfigError(f"{key}={side}: need a plate number and r, l or none", field="--plate-feet")
        out[int(key)] = side.lower()
    return out


def parse_emg_map(text: str) -> dict[str, str] | None:
    """'auto' -> None (channels not used by plates); 'none' -> {}; 'A=m1,B=m2' -> dict."""
    key = text.strip().lower()
    if key == "auto":
        return None
    if key == "none":
        return {}
    return _pairs(text, "--emg-map")


def parse_foot_markers(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        side, sep, names = part.partition("=")
        if not sep or side.strip().lower() not in ("r", "l"):
            raise ConfigError(f"{part!r}: expected r=A,B or l=C,D", field="--foot-markers")
        out[side.strip().lower()] = _names(names)
    return out


def _from_subject_file(path: Path, trial: str) -> dict:
    """rotation, emg map and plate assignment for ``trial`` from a subject file (validated)."""
    from pimsk.config import load_subject

    doc = load_subject(path)
    found: dict = {}
    if "lab_to_opensim" in doc:
        found["rotation"] = doc["lab_to_opensim"]
    channels = (doc.get("emg") or {}).get("channels")
    if channels:
        found["emg_map"] = dict(channels)
    trials = list(doc.get("trials") or []) + ([doc["static"]] if doc.get("static") else [])
    for t in trials:
        if t.get("name") != trial:
            continue
        if "plates" in t:
            plates = t["plates"]
            found["plate_feet"] = plates if plates == "auto" else {int(k): v for k, v in plates.items()}
        if t.get("rename_markers"):
            found["rename_markers"] = dict(t["rename_markers"])
        if t.get("drop_markers"):
            found["drop_markers"] = list(t["drop_markers"])
    found["subject"] = doc.get("id")
    return found


def run(args: argparse.Namespace) -> int:
    from pimsk.convert.c3d_to_opensim import C3DConvertOptions, convert_c3d

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="pimsk c3d: %(levelname)s: %(message)s")
    trial = args.trial or args.input.stem
    settings = _from_subject_file(args.subject_file, trial) if args.subject_file else {}
    if args.rotation:
        settings["rotation"] = args.rotation
    if args.emg_map:
        settings["emg_map"] = parse_emg_map(args.emg_map)
    if args.plate_feet:
        settings["plate_feet"] = parse_plate_feet(args.plate_feet)
    if args.rename_markers:
        settings["rename_markers"] = _pairs(args.rename_markers, "--rename-markers")
    if args.drop_markers:
        settings["drop_markers"] = _names(args.drop_markers)
    subject = args.subject or settings.pop("subject", None)
    settings.pop("subject", None)
    options = C3DConvertOptions(
        rotation=settings.get("rotation", "identity"),
        keep_markers=_names(args.keep_markers) or None,
        rename_markers=settings.get("rename_markers", {}),
        drop_markers=settings.get("drop_markers", []),
        required_markers=_names(args.required_markers),
        plate_feet=settings.get("plate_feet", "auto"),
        foot_markers=parse_foot_markers(args.foot_markers) if args.foot_markers else None,
        emg_map=settings.get("emg_map"),
        grf_rate=args.grf_rate,
        max_gap_frames=args.max_gap_frames,
        force_threshold_n=args.force_threshold_n,
        plate_force_sign=args.plate_force_sign,
        subject=subject,
        trial=trial,
    )
    conv = convert_c3d(args.input, args.out_dir, options, timeout_s=args.timeout_s)
    print(f"pimsk c3d: wrote {', '.join(p.name for p in conv.files.values())} to {args.out_dir}")
    return 0
