"""OpenSim / Motion Analysis marker files (.trc): read robustly, write what OpenSim's TRCFileAdapter reads.

Layout (tab-delimited)::

    PathFileType  4  (X/Y/Z)  <name>
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames
    <values>
    Frame#  Time  M1 <tab><tab>  M2 ...
            X1 Y1 Z1 X2 Y2 Z2 ...
    <blank line>
    1  0.000  x y z  x y z ...

Reading tolerates: double tabs in the header (Rajagopal), comma-delimited files (pyomeca), a NumFrames
that disagrees with the rows (the rows win; a FileFormatWarning says so), rows shorter than the
header (missing trailing markers become NaN), marker labels offset from their columns (OpenSim's
std_walking*_markers.trc), blank lines. A marker with any empty/NaN coordinate in a frame is NaN in
all three, as in OpenSim. Writing: NaN as empty fields and a trailing tab on every row, as OpenSim's
own writer does (its reader drops one trailing empty field).
"""

from __future__ import annotations

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
from pimsk.io.containers import Markers

HEADER_KEYS = (
    "DataRate",
    "CameraRate",
    "NumFrames",
    "NumMarkers",
    "Units",
    "OrigDataRate",
    "OrigDataStartFrame",
    "OrigNumFrames",
)


def _header(lines: list[str], path: Path) -> tuple[dict[str, str], str | None]:
    if len(lines) < 5:
        raise FileFormatError(f"only {len(lines)} lines; a TRC header has 5", file=path)
    if not lines[0].lstrip().startswith("PathFileType"):
        raise FileFormatError("line 1 does not start with 'PathFileType'", file=path, field="PathFileType",
                              hint="is this a TRC file?")
    delimiter = detect_delimiter(lines[1])
    keys = [k for k in split_fields(lines[1], delimiter) if k]
    values = [v for v in split_fields(lines[2], delimiter) if v]
    if "DataRate" not in keys:
        raise FileFormatError("line 2 lacks the DataRate/.../OrigNumFrames keys", file=path, field="DataRate")
    if len(values) != len(keys):
        warn(path, f"{len(keys)} header keys but {len(values)} values on line 3; pairing them in order")
    return dict(zip(keys, values)), delimiter


def _number(header: dict[str, str], key: str, path: Path) -> float | None:
    text = header.get(key)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        warn(path, f"header {key}={text!r} is not a number; ignored")
        return None


def read_trc(path: str | Path) -> Markers:
    """Read a TRC file into Markers (units as in the file; ``Markers.in_metres()`` converts).

    meta holds every header key (strings), plus 'PathFileType' (line 1) and 'first_frame'.
    Raises FileFormatError naming the file, line and field when the file cannot be read.
    """
    path = Path(path)
    lines = read_lines(path, "TRC")
    header, delimiter = _header(lines, path)
    data_delimiter = detect_delimiter(lines[3]) if delimiter is None else delimiter

    label_fields = split_fields(lines[3], data_delimiter)
    if len(label_fields) < 2 or label_fields[0].lower() != "frame#" or label_fields[1].lower() != "time":
        raise FileFormatError("line 4 must start with 'Frame#' and 'Time'", file=path, field="Frame#")
    labels = [label for label in label_fields[2:] if label]
    n_header = _number(header, "NumMarkers", path)
    if n_header is not None and int(n_header) != len(labels):
        warn(path, f"header NumMarkers={int(n_header)} but {len(labels)} marker labels; using the labels")
    n_markers = len(labels)
    if n_markers == 0:
        raise FileFormatError("no marker labels on line 4", file=path, field="NumMarkers")
    n_values = 3 * n_markers

    rows: list[list[str]] = []
    numbers: list[int] = []
    short = extra = 0
    for index in range(5, len(lines)):
        line = lines[index]
        if is_blank(line):
            continue
        fields = split_fields(line, data_delimiter)
        values = fields[2 : 2 + n_values]
        if len(values) < n_values:
            short += 1
            values = values + [""] * (n_values - len(values))
        if any(f for f in fields[2 + n_values :]):
            extra += 1
        rows.append(fields[:2] + values)
        numbers.append(index + 1)
    if not rows:
        raise FileFormatError("no data rows after the 5 header lines", file=path, field="NumFrames")
    if short:
        warn(path, f"{short} rows have fewer than {n_values} coordinates; missing ones are NaN")
    if extra:
        warn(path, f"{extra} rows have values beyond the {n_markers} labelled markers; ignored")

    if any(len(r) < 2 or not r[1] for r in rows):
        bad = next(numbers[i] for i, r in enumerate(rows) if len(r) < 2 or not r[1])
        raise FileFormatError(f"line {bad}: no time value", file=path, field="Time")
    matrix = parse_matrix([r[1:] for r in rows], numbers, 1 + n_values, path,
                          ["Time"] + [f"{m}.{c}" for m in labels for c in "XYZ"])
    time_s = matrix[:, 0]
    xyz = matrix[:, 1:].reshape(len(rows), n_markers, 3)
    xyz[np.isnan(xyz).any(axis=2)] = np.nan  # OpenSim: a marker needs all three coordinates

    n_frames_header = _number(header, "NumFrames", path)
    if n_frames_header is not None and int(n_frames_header) != len(rows):
        warn(path, f"header NumFrames={int(n_frames_header)} but {len(rows)} data rows; using the rows")

    rate_hz = _number(header, "DataRate", path)
    # mean step over the whole span: robust to time stamps rounded to the millisecond (60 Hz files)
    step = float(time_s[-1] - time_s[0]) / (len(time_s) - 1) if len(time_s) > 1 else None
    if rate_hz is None or rate_hz <= 0:
        if step is None or not step > 0:
            raise FileFormatError("no usable DataRate and too few frames to infer it", file=path, field="DataRate")
        rate_hz = 1.0 / float(step)
        warn(path, f"DataRate missing; inferred {rate_hz:g} Hz from the time column")
    elif step is not None and step > 0 and abs(step * rate_hz - 1.0) > 0.01:
        warn(path, f"DataRate={rate_hz:g} Hz but time steps are {step:g} s ({1.0 / step:g} Hz)")

    units = header.get("Units", "").strip()
    if not units:
        warn(path, "header has no Units; assuming mm")
        units = "mm"
    meta = dict(header)
    meta["PathFileType"] = lines[0].strip()
    first = rows[0][0]
    meta["first_frame"] = first
    return Markers(time_s=time_s, xyz=xyz, labels=labels, rate_hz=float(rate_hz), units=units, meta=meta)


def write_trc(path: str | Path, markers: Markers, first_frame: int = 1) -> Path:
    """Write Markers as a tab-delimited TRC that OpenSim reads; returns the path.

    NaN coordinates become empty fields. CameraRate/OrigDataRate/OrigDataStartFrame/OrigNumFrames are
    taken from ``markers.meta`` when present (else DataRate, ``first_frame``, NumFrames).
    """
    path = Path(path)
    for label in markers.labels:
        check_label(label, path, "marker")
    check_increasing(markers.time_s, path)
    n_frames, n_markers = markers.n_frames, len(markers.labels)
    rate = format_number(markers.rate_hz)
    meta = markers.meta
    values = [
        rate,
        meta.get("CameraRate", rate),
        str(n_frames),
        str(n_markers),
        markers.units,
        meta.get("OrigDataRate", rate),
        meta.get("OrigDataStartFrame", str(first_frame)),
        meta.get("OrigNumFrames", str(n_frames)),
    ]
    out = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "\t".join(HEADER_KEYS),
        "\t".join(values),
        "\t".join(["Frame#", "Time"] + [f"{label}\t\t" for label in markers.labels]),
        "\t\t" + "\t".join(f"{c}{i}" for i in range(1, n_markers + 1) for c in "XYZ"),
        "",
    ]
    flat = markers.xyz.reshape(n_frames, 3 * n_markers)
    for k in range(n_frames):
        fields = ["" if np.isnan(v) else format_number(v) for v in flat[k].tolist()]
        out.append(f"{first_frame + k}\t{format_number(markers.time_s[k])}\t" + "\t".join(fields) + "\t")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
