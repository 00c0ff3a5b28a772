"""`pimsk anc`: a Motion Analysis .anc analog file -> raw EMG .sto (volts at the A/D input).

Channels: ``--channels`` (in that order), else the keys of ``--map``, else every channel that is not
a force-plate channel (F1X, M2Z, ...). ``--map CH=muscle,...`` renames channels in the output.
``--analog-out`` also writes every channel (EMG and force plate, volts) to a second .sto.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pimsk.errors import FileFormatError
from pimsk.io.anc import read_anc
from pimsk.io.containers import Table
from pimsk.io.storage import write_storage

HELP = "Motion Analysis .anc analog file -> raw EMG .sto (and force channels)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the .anc file")
    parser.add_argument("--out", type=Path, required=True, help="raw EMG .sto to write (volts)")
    parser.add_argument("--channels", help="comma-separated channel names to keep, e.g. SOL,GAS,TA "
                                           "(default: the --map keys, else all non-force-plate channels)")
    parser.add_argument("--map", dest="mapping", help="CH=muscle,... output names, e.g. SOL=soleus_r,GAS=gasmed_r")
    parser.add_argument("--analog-out", type=Path, help="also write all channels (volts) to this .sto")
    parser.add_argument("--subject", help="subject id (for messages)")
    parser.add_argument("--trial", help="trial name (for messages)")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _mapping(text: str | None, path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _names(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise FileFormatError(f"{item!r} is not CH=muscle", file=path, field="--map", hint="e.g. SOL=soleus_r")
        out[key.strip()] = value.strip()
    return out


def select_channels(available: list[str], emg_default: list[str], channels: list[str],
                    mapping: dict[str, str], path: Path) -> tuple[list[str], list[str]]:
    """(source channels, output names) from --channels / --map; unknown names raise FileFormatError."""
    chosen = channels or list(mapping) or emg_default
    for name in chosen + list(mapping):
        if name not in available:
            raise FileFormatError(f"no channel {name!r}", file=path, field="--channels/--map",
                                  hint=f"channels in the file: {', '.join(available)}")
    stray = [k for k in mapping if k not in chosen]
    if stray:
        raise FileFormatError(f"--map names {stray} that --channels does not keep", file=path, field="--map")
    if len(set(chosen)) != len(chosen):
        raise FileFormatError("a channel is listed twice", file=path, field="--channels")
    outputs = [mapping.get(name, name) for name in chosen]
    if len(set(outputs)) != len(outputs):
        raise FileFormatError(f"output names are not unique: {outputs}", file=path, field="--map")
    if not chosen:
        raise FileFormatError("no EMG channels found", file=path, field="--channels",
                              hint="name them with --channels")
    return chosen, outputs


def run(args: argparse.Namespace) -> int:
    recording = read_anc(args.input)
    table = recording.table
    try:
        chosen, outputs = select_channels(table.labels, recording.emg_channels, _names(args.channels),
                                          _mapping(args.mapping, args.input), args.input)
    except FileFormatError as exc:
        raise exc.located(subject=args.subject, trial=args.trial)
    columns = [table.labels.index(name) for name in chosen]
    header = {"DataRate": f"{recording.rate_hz:g}", "units": "V", "source": args.input.name}
    emg = Table(table.time_s, table.data[:, columns], outputs, name="emg_raw")
    write_storage(args.out, emg, extra_header=header)
    print(f"wrote {args.out}: {len(outputs)} EMG channels x {emg.n_frames} samples at {recording.rate_hz:g} Hz (V)")
    if args.analog_out is not None:
        write_storage(args.analog_out, Table(table.time_s, table.data, list(table.labels), name="analog"),
                      extra_header=header)
        print(f"wrote {args.analog_out}: {len(table.labels)} analog channels (V)")
    return 0
