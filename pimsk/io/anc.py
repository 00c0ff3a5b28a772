"""Motion Analysis ASCII analog files (.anc, "Analog R/C ASCII", Generation 2) -> volts.

Layout (tab-delimited)::

    File_Type:  Analog R/C ASCII  Generation#:  2
    Board_Type: NI USB-6225        Polarity:    Bipolar
    Trial_Name: ...  Trial#: 3  Duration(Sec.): 2.389500  #Channels: 28
    BitDepth:   16   PreciseRate: 2000.000000
    (blank lines)
    Name   F1X   ...  SOL  GAS ...
    Rate   2000  ...
    Range  5000  ...           <- A/D input range, +/- millivolts
    0.000000  0  6 -4 ...      <- time (s), then raw A/D counts

Conversion assumed (the format has no documentation of its own; this is the reading of
Motion Analysis Generation-2 files used by BTK's ANCFileIO, Barre & Armand 2014): a bipolar
``BitDepth``-bit converter maps counts ``-2**(bits-1) .. 2**(bits-1)`` onto ``-Range .. +Range`` mV, so

    volts = counts * 2 * (Range_mV / 1000) / 2**BitDepth

The result is the voltage at the A/D input, i.e. *after* any EMG amplifier gain (which the file does
not record). Generation 1 files and unipolar boards are refused rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pimsk.errors import FileFormatError
from pimsk.io._text import is_blank, parse_matrix, read_lines, split_fields, warn
from pimsk.io.containers import Table

# Force-plate channel names as BTK recognises them: FX, F1X, FX1, FP1FX, ... (and M for moments).
_FORCE_PLATE = re.compile(r"^(FP\d*)?[FM](\d*[XYZ]|[XYZ]\d*)$", re.IGNORECASE)


@dataclass
class AncRecording:
    """An .anc file: ``table`` holds volts (time_s, (n_samples, n_channels)); the rest is its header.

    rate_hz: PreciseRate; rates_hz / ranges_mv: per channel (same order as table.labels);
    counts: the raw integer A/D values, (n_samples, n_channels).
    """

    table: Table
    rate_hz: float
    bit_depth: int
    ranges_mv: np.ndarray
    rates_hz: np.ndarray
    counts: np.ndarray
    board_type: str = ""
    polarity: str = ""
    trial_name: str = ""
    generation: int = 2

    @property
    def emg_channels(self) -> list[str]:
        """Channel names that are not force-plate channels (F1X, M2Z, FX1, FP1FX, ...)."""
        return [name for name in self.table.labels if not is_force_plate_channel(name)]


def is_force_plate_channel(name: str) -> bool:
    """True for force/moment channel names such as F1X, M2Z, FX1, FX, FP1FX."""
    return bool(_FORCE_PLATE.match(name.strip()))


def _keywords(line: str) -> dict[str, str]:
    """Pairs 'Key:' value on a header line (tab separated)."""
    fields = [f for f in split_fields(line, "\t") if f]
    out = {}
    for i, field in enumerate(fields):
        if field.endswith(":") and i + 1 < len(fields) and not fields[i + 1].endswith(":"):
            out[field[:-1]] = fields[i + 1]
    return out


def _row(lines: list[str], key: str, path: Path) -> tuple[int, list[str]]:
    for i, line in enumerate(lines):
        fields = split_fields(line, "\t")
        if fields and fields[0] == key:
            while fields and not fields[-1]:
                fields.pop()
            return i, fields[1:]
    raise FileFormatError(f"no '{key}' header row", file=path, field=key)


def _numbers(values: list[str], key: str, path: Path, line: int) -> np.ndarray:
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        raise FileFormatError(f"line {line}: {key} values must be numbers", file=path, field=key) from None


def read_anc(path: str | Path) -> AncRecording:
    """Read a Motion Analysis .anc file; see the module doc for the counts -> volts conversion."""
    path = Path(path)
    lines = read_lines(path, "ANC")
    if not lines or not lines[0].startswith("File_Type:"):
        raise FileFormatError("line 1 does not start with 'File_Type:'", file=path, field="File_Type",
                              hint="is this a Motion Analysis .anc file?")
    header: dict[str, str] = {}
    for line in lines[:4]:
        header.update(_keywords(line))
    if header.get("File_Type") != "Analog R/C ASCII":
        raise FileFormatError(f"File_Type {header.get('File_Type')!r} is not 'Analog R/C ASCII'", file=path,
                              field="File_Type")
    generation = int(float(header.get("Generation#", "0")))
    if generation != 2:
        raise FileFormatError(f"Generation# {generation} is not supported (only 2: counts with +/- mV ranges)",
                              file=path, field="Generation#")
    polarity = header.get("Polarity", "")
    if polarity.lower() != "bipolar":
        raise FileFormatError(f"Polarity {polarity!r} is not supported (only Bipolar)", file=path, field="Polarity")
    try:
        bit_depth = int(header["BitDepth"])
        rate_hz = float(header["PreciseRate"])
    except (KeyError, ValueError):
        raise FileFormatError("BitDepth and PreciseRate must be numbers on line 4", file=path,
                              field="BitDepth/PreciseRate") from None

    name_line, names = _row(lines, "Name", path)
    rate_line, rates = _row(lines, "Rate", path)
    range_line, ranges = _row(lines, "Range", path)
    n = len(names)
    if not n or len(rates) != n or len(ranges) != n:
        raise FileFormatError(f"{n} channel names, {len(rates)} rates, {len(ranges)} ranges", file=path,
                              field="Name/Rate/Range")
    declared = header.get("#Channels")
    if declared is not None and declared.isdigit() and int(declared) != n:
        warn(path, f"#Channels={declared} but {n} channel names; using the names")
    rates_hz = _numbers(rates, "Rate", path, rate_line + 1)
    ranges_mv = _numbers(ranges, "Range", path, range_line + 1)
    if np.any(ranges_mv <= 0):
        raise FileFormatError("Range values must be positive (+/- millivolts)", file=path, field="Range")
    if np.any(np.abs(rates_hz - rate_hz) > 0.1):
        warn(path, f"channel rates {sorted(set(rates_hz.tolist()))} differ from PreciseRate {rate_hz:g}; "
                   "every row holds every channel, so the rows' rate is used")

    rows, numbers = [], []
    for index in range(max(name_line, rate_line, range_line) + 1, len(lines)):
        if is_blank(lines[index]):
            continue
        fields = split_fields(lines[index], "\t")
        while fields and not fields[-1]:
            fields.pop()
        if len(fields) != n + 1:
            raise FileFormatError(f"line {index + 1}: {len(fields)} fields, expected time + {n} channels",
                                  file=path, field="data")
        rows.append(fields)
        numbers.append(index + 1)
    if not rows:
        raise FileFormatError("no data rows", file=path, field="data")
    matrix = parse_matrix(rows, numbers, n + 1, path, ["time"] + names)
    time_s, counts = matrix[:, 0], matrix[:, 1:]
    if np.isnan(counts).any():
        raise FileFormatError("empty or NaN sample values", file=path, field="data")
    duration = header.get("Duration(Sec.)")
    if duration is not None:
        expected = int(round(float(duration) * rate_hz)) + 1
        if expected != len(rows):
            warn(path, f"Duration(Sec.)={duration} at {rate_hz:g} Hz means {expected} samples; file has {len(rows)}")
    volts = counts * (2.0 * ranges_mv / 1000.0 / 2.0**bit_depth)
    table = Table(time_s=time_s, data=volts, labels=list(names), name=path.stem,
                  meta={"units": "V", "source": str(path), **{k: v for k, v in header.items()}})
    return AncRecording(
        table=table,
        rate_hz=rate_hz,
        bit_depth=bit_depth,
        ranges_mv=ranges_mv,
        rates_hz=rates_hz,
        counts=counts,
        board_type=header.get("Board_Type", ""),
        polarity=polarity,
        trial_name=header.get("Trial_Name", ""),
        generation=generation,
    )
