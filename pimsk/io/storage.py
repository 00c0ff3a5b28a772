"""OpenSim Storage files (.mot/.sto): read the variants found in the wild, write what OpenSim reads.

Reading accepts: header lines up to ``endheader`` holding ``key=value`` pairs (version, nRows,
nColumns, inDegrees, DataType, DataRate, ...), a name on the first line, OpenSim 3 / SIMM
``key value`` lines (name, datacolumns, datarows, range); tab, comma, whitespace and double-tab
delimiters; values padded with blanks; trailing delimiters; header row/column counts that disagree
with the data (the data win, a FileFormatWarning says so); a file with no header at all whose first
line starts with ``time``.

Writing produces the classic OpenSim 4 layout (name, version=1, nRows, nColumns, inDegrees,
endheader, tab-delimited) that both ``opensim.Storage`` and ``opensim.TimeSeriesTable`` read. Values
are written with the shortest text that reads back to the same float64. OpenSim's ``Storage`` (used
by the ID/RRA/CMC tools and ExternalLoads) stops reading at the first NaN, so NaN is refused unless
``allow_nan=True`` (``TimeSeriesTable`` reads NaN).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pimsk.errors import FileFormatError
from pimsk.io._text import (
    check_increasing,
    check_label,
    detect_delimiter,
    format_number,
    is_blank,
    parse_matrix,
    read_lines,
    split_fields,
    warn,
)
from pimsk.io.containers import Table

_SIMM_KEY = re.compile(r"^(name|datacolumns|datarows|range|otherdata|wavefront)\s+(.*)$", re.IGNORECASE)
_TRUE = {"yes", "true", "1", "y"}
_FALSE = {"no", "false", "0", "n"}


def _find_endheader(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if line.strip(" \t,;\r").lower() == "endheader":
            return i
    return None


def _parse_header(lines: list[str]) -> tuple[str | None, dict[str, str]]:
    """Name and key/value pairs of the header lines (comments are skipped)."""
    name: str | None = None
    meta: dict[str, str] = {}
    first = True  # the first non-blank line may be a bare name
    for line in lines:
        text = line.strip(" \t,;\r")
        if not text:
            continue
        if "=" in text:
            key, value = text.split("=", 1)
            meta[key.strip()] = value.strip(" \t,;")
        elif (match := _SIMM_KEY.match(text)) is not None:
            key, value = match.group(1).lower(), match.group(2).strip(" \t,;")
            if key == "name":
                name = value
            else:
                meta[key] = value
        elif first:
            name = text
        first = False
    return name, meta


def _in_degrees(meta: dict[str, str], path: Path) -> bool:
    """inDegrees from the header; when absent, OpenSim's Storage rule: a .mot with no version line
    (SIMM / OpenSim 2 era) is in degrees, anything else in radians."""
    text = meta.get("inDegrees")
    if text is None:
        return path.suffix.lower() == ".mot" and "version" not in meta
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FileFormatError(f"inDegrees={text!r}: expected yes or no", file=path, field="inDegrees")


def _header_int(meta: dict[str, str], keys: tuple[str, ...], path: Path) -> int | None:
    for key in keys:
        if key in meta:
            try:
                return int(float(meta[key]))
            except ValueError:
                warn(path, f"header {key}={meta[key]!r} is not a number; ignored")
    return None


def read_storage(path: str | Path) -> Table:
    """Read a .mot/.sto file into a Table (values as stored; ``in_degrees`` from the header, default no).

    meta holds the header's key/value pairs (strings) and 'delimiter'. Raises FileFormatError naming
    file, line and column when the file cannot be read.
    """
    path = Path(path)
    lines = read_lines(path, "storage")
    end = _find_endheader(lines)
    if end is None:
        first = next((i for i, line in enumerate(lines) if not is_blank(line)), None)
        if first is None:
            raise FileFormatError("file is empty", file=path)
        if split_fields(lines[first], detect_delimiter(lines[first]))[0].lower() != "time":
            raise FileFormatError("no 'endheader' line and no 'time' column header", file=path,
                                  field="endheader", hint="is this an OpenSim .mot/.sto file?")
        name, meta, label_index = None, {}, first
    else:
        name, meta = _parse_header(lines[:end])
        label_index = next((i for i in range(end + 1, len(lines)) if not is_blank(lines[i])), None)
        if label_index is None:
            raise FileFormatError("no column labels after 'endheader'", file=path, field="labels")

    delimiter = detect_delimiter(lines[label_index])
    fields = split_fields(lines[label_index], delimiter)
    while fields and not fields[-1]:
        fields.pop()
    collapse = any(not f for f in fields)  # double delimiters: runs of delimiters count as one
    labels = [f for f in fields if f] if collapse else fields
    if not labels or any(not label for label in labels):
        raise FileFormatError(f"line {label_index + 1}: empty column label", file=path, field="labels")
    if labels[0].lower() != "time":
        warn(path, f"first column is {labels[0]!r}, not 'time'; using it as time")
    n_cols = len(labels)

    rows: list[list[str]] = []
    numbers: list[int] = []
    short = extra = 0
    for index in range(label_index + 1, len(lines)):
        line = lines[index]
        if is_blank(line):
            continue
        values = split_fields(line, delimiter)
        if collapse:
            values = [v for v in values if v]
        if len(values) > n_cols:
            if any(values[n_cols:]):
                extra += 1
            values = values[:n_cols]
        elif len(values) < n_cols:
            short += 1
            values = values + [""] * (n_cols - len(values))
        rows.append(values)
        numbers.append(index + 1)
    if short:
        warn(path, f"{short} rows have fewer than {n_cols} columns; missing values are NaN")
    if extra:
        warn(path, f"{extra} rows have more than {n_cols} columns; extra values ignored")

    matrix = parse_matrix(rows, numbers, n_cols, path, labels)
    time_s = matrix[:, 0]
    if np.isnan(time_s).any():
        bad = numbers[int(np.argmax(np.isnan(time_s)))]
        raise FileFormatError(f"line {bad}: no time value", file=path, field=labels[0])
    if time_s.size > 1 and not np.all(np.diff(time_s) > 0):
        warn(path, "time is not strictly increasing (OpenSim's TimeSeriesTable will refuse this file)")

    n_rows = _header_int(meta, ("nRows", "datarows"), path)
    if n_rows is not None and n_rows != len(rows):
        warn(path, f"header says {n_rows} rows but the file has {len(rows)}; using the rows")
    n_columns = _header_int(meta, ("nColumns", "datacolumns"), path)
    if n_columns is not None and n_columns != n_cols:
        warn(path, f"header says {n_columns} columns but there are {n_cols} labels; using the labels")
    if len(set(labels)) != len(labels):
        warn(path, "duplicate column labels; Table.column() returns the first")

    meta["delimiter"] = {"\t": "tab", ",": "comma", None: "whitespace"}[delimiter] + (" (doubled)" if collapse else "")
    return Table(
        time_s=time_s,
        data=matrix[:, 1:],
        labels=labels[1:],
        name=name or path.stem,
        in_degrees=_in_degrees(meta, path),
        meta=meta,
    )


def write_storage(
    path: str | Path,
    table: Table,
    *,
    allow_nan: bool = False,
    extra_header: Mapping[str, str] | None = None,
) -> Path:
    """Write a Table as a tab-delimited OpenSim .mot/.sto (version=1 header); returns the path.

    extra_header: more ``key=value`` lines for the header (e.g. {'DataRate': '2000'}).
    NaN raises FileFormatError (naming the column) unless allow_nan (see module doc).
    """
    path = Path(path)
    name = table.name or path.stem
    if any(ch in name for ch in "\n\r=") or name.strip().lower() == "endheader":
        raise FileFormatError(f"table name {name!r} cannot be a Storage header line", file=path, field="name")
    for label in table.labels:
        check_label(label, path, "column")
    check_increasing(table.time_s, path)
    if not allow_nan and np.isnan(table.data).any():
        col = int(np.argmax(np.isnan(table.data).any(axis=0)))
        row = int(np.argmax(np.isnan(table.data[:, col])))
        raise FileFormatError(
            f"NaN at row {row + 1}; OpenSim's Storage reader stops at the first NaN",
            file=path,
            field=table.labels[col],
            hint="fill or zero the gaps, or pass allow_nan=True for TimeSeriesTable-only readers",
        )
    header = [
        name,
        "version=1",
        f"nRows={table.n_frames}",
        f"nColumns={len(table.labels) + 1}",
        f"inDegrees={'yes' if table.in_degrees else 'no'}",
    ]
    for key, value in (extra_header or {}).items():
        if any(ch in f"{key}{value}" for ch in "\n\r") or "=" in key or not key:
            raise FileFormatError(f"bad header entry {key!r}={value!r}", file=path, field=str(key))
        header.append(f"{key}={value}")
    header += ["endheader", "\t".join(["time"] + list(table.labels))]
    body = [
        "\t".join([format_number(t)] + [format_number(v) for v in row])
        for t, row in zip(table.time_s.tolist(), table.data.tolist())
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + body) + "\n", encoding="utf-8")
    return path
