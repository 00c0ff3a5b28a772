"""Shared plumbing of the text formats (TRC, MOT/STO, ANC): lines, delimiters, numbers, warnings."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pimsk.errors import FileFormatError

# Windows C runtimes write these for NaN / infinity; OpenSim files from old tools contain them.
_NAN_TOKENS = {"nan", "-nan", "+nan", "1.#qnan", "-1.#qnan", "1.#ind", "-1.#ind", "#n/a", "na"}


class FileFormatWarning(UserWarning):
    """A file was readable but odd (header disagrees with the data, columns missing, ...)."""


def warn(path: str | Path, message: str) -> None:
    """Issue a FileFormatWarning that names the file."""
    warnings.warn(f"{path}: {message}", FileFormatWarning, stacklevel=3)


def read_lines(path: str | Path, what: str) -> list[str]:
    """All lines of a text file without line endings; a missing or binary file raises FileFormatError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{what} file not found", file=path, hint="check the path") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {what} file: {exc.strerror}", file=path) from None
    if b"\x00" in raw[:4096]:
        raise FileFormatError(f"not a text {what} file (binary content)", file=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def detect_delimiter(line: str) -> str | None:
    """Tab if the line has one, else comma if it has one, else None (runs of whitespace)."""
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    return None


def split_fields(line: str, delimiter: str | None) -> list[str]:
    """Fields of one line, each stripped of surrounding blanks; empty fields are kept (None: whitespace split)."""
    if delimiter is None:
        return line.split()
    return [field.strip() for field in line.split(delimiter)]


def is_blank(line: str) -> bool:
    """True for a line holding nothing but blanks and delimiters."""
    return not line.strip(" \t,;\r\n")


def parse_number(token: str) -> float:
    """A float from a text field: '' and NaN spellings give NaN; anything else not numeric raises ValueError."""
    token = token.strip()
    if not token or token.lower() in _NAN_TOKENS:
        return math.nan
    return float(token)


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float64; NaN/inf spelt as OpenSim's parsers accept."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(value)


def parse_matrix(
    rows: Sequence[list[str]],
    line_numbers: Sequence[int],
    n_columns: int,
    path: str | Path,
    labels: Sequence[str],
) -> np.ndarray:
    """(n_rows, n_columns) floats from rows of fields already cut to ``n_columns``.

    A bad field raises FileFormatError naming the file, line (1-based) and column label.
    """
    if not rows:
        return np.empty((0, n_columns))
    try:  # fast path: every field a plain number
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), n_columns)
    except ValueError:
        pass
    out = np.empty((len(rows), n_columns))
    for i, fields in enumerate(rows):
        for j, token in enumerate(fields):
            try:
                out[i, j] = parse_number(token)
            except ValueError:
                label = labels[j] if j < len(labels) else f"column {j + 1}"
                raise FileFormatError(
                    f"line {line_numbers[i]}: {token!r} is not a number", file=path, field=label
                ) from None
    return out


def check_label(label: str, path: str | Path, what: str) -> None:
    """A column label must be non-empty and hold no tab, comma or line break (they would shift the columns)."""
    if not label or any(ch in label for ch in "\t\n\r,"):
        raise FileFormatError(
            f"{what} label {label!r} is empty or holds a tab, comma or line break", file=path, field=what
        )


def check_increasing(time_s: np.ndarray, path: str | Path) -> None:
    """OpenSim's tables need strictly increasing, finite time stamps."""
    if time_s.size and not np.all(np.isfinite(time_s)):
        raise FileFormatError("time has NaN or infinite values", file=path, field="time")
    if time_s.size > 1 and not np.all(np.diff(time_s) > 0):
        first = int(np.argmax(np.diff(time_s) <= 0))
        raise FileFormatError(
            f"time is not strictly increasing at row {first + 2} ({time_s[first]} then {time_s[first + 1]})",
            file=path,
            field="time",
            hint="OpenSim refuses such files; drop or merge duplicate frames",
        )
