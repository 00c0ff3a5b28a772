"""Repair ``*_states.sto`` headers that OpenSim overwrites at process exit.

OpenSim 4.6's RRA/CMC write a correct states file, then, when the process exits, a static object
rewrites the first ~65 bytes with a stub header (``UNKNOWN / nRows=0 / nColumns=1 / endheader / time``).
The data rows and usually the column labels survive; only the header and the first label are damaged.
The repair keeps every data row byte for byte and rewrites the header from the surviving labels.
"""

from __future__ import annotations

import os
from pathlib import Path

from pimsk.errors import FileFormatError

STUB_NAME = "UNKNOWN"
#: the bytes OpenSim 4.6 flushes over the head of the file at process exit
STUB = f"{STUB_NAME}\nversion=1\nnRows=0\nnColumns=1\ninDegrees=no\nendheader\ntime\n"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _data_start(lines: list[str]) -> int | None:
    """Index of the first line whose whitespace-separated fields are all numbers (>= 2 of them)."""
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) >= 2 and all(_is_number(f) for f in fields):
            return i
    return None


def header_is_damaged(path: str | Path) -> bool:
    """True when the header does not describe the data (stub header, stray lines, wrong column count)."""
    lines = Path(path).read_text(errors="replace").split("\n")
    d = _data_start(lines)
    if d is None:
        return False  # no data rows: nothing a header repair could save
    n = len(lines[d].split())
    try:
        e = next(i for i, line in enumerate(lines[:d]) if line.strip() == "endheader")
    except StopIteration:
        return True
    if e + 1 != d - 1:
        return True
    labels = lines[d - 1].rstrip("\r").split("\t")
    if len(labels) != n or labels[0].strip() != "time":
        return True
    for line in lines[:e]:
        if line.startswith("nColumns="):
            return line.split("=", 1)[1].strip() != str(n)
    return False


def _recover_labels(line: str, n: int, path: Path, lost: int | None = None) -> list[str]:
    """The ``n`` column labels from the surviving label line.

    The stub overwrites a fixed number of bytes, so a short original header loses the start of the
    label line: ``time`` (or its head), the tab, and possibly the head of the first state path
    (``/jointset/...``), which is restored from the roots of the other paths. ``lost``: how many
    characters of the label line were overwritten, when the original header's length is known.
    Anything else cannot be recovered and raises FileFormatError.
    """
    fields = line.split("\t")
    fail = dict(file=str(path), hint="rerun the tool; the column labels were overwritten")
    if len(fields) == n:
        first = fields[0].strip()
        if first != "time":
            if not "time".endswith(first):  # "" or a tail of "time" survived the overwrite
                raise FileFormatError(f"cannot repair header: first label {first!r} is not (part of) 'time'", **fail)
            fields[0] = "time"
        return fields
    if len(fields) == n - 1 and len(fields) >= 2:
        rem, rest = fields[0], fields[1:]
        roots = {f.split("/")[1] for f in rest if f.startswith("/") and f.count("/") >= 2}
        candidates = set()
        for root in roots:
            head = f"/{root}/"
            for j in range(len(head) + 1):  # j characters of the first path were overwritten
                if lost is not None and j != lost - len("time\t"):
                    continue
                if (head[:j] + rem).startswith(head):
                    candidates.add(head[:j] + rem)
        if len(candidates) > 1:  # e.g. "set/x/..." fits /jointset/ and /forceset/: keep the one that
            # shares the longest prefix with another label (a coordinate's value sits beside its speed)
            def shared(c: str) -> int:
                return max(len(os.path.commonprefix([c, r])) for r in rest)

            best = max(shared(c) for c in candidates)
            candidates = {c for c in candidates if shared(c) == best}
        if len(candidates) == 1:
            return ["time", candidates.pop(), *rest]
    raise FileFormatError(f"cannot repair header: the label line has {len(fields)} columns but the data have {n}",
                          **fail)


def repair_states_header(path: str | Path, name: str | None = None) -> bool:
    """Rewrite a damaged header in place; return True if the file was repaired, False if it was fine.

    ``name`` is the header's first line (OpenSim uses the tool's name); default: the old first line
    unless it is the stub's ``UNKNOWN``, else the file name without ``_states.sto``.
    Raises FileFormatError when the column labels cannot be recovered.
    """
    path = Path(path)
    if not header_is_damaged(path):
        return False
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    d = _data_start(lines)
    assert d is not None  # header_is_damaged returned True
    n = len(lines[d].split())
    rows = [line for line in lines[d:] if line.strip()]
    lost = None
    if name is not None:  # the original header's length tells how much of the label line the stub took
        original = f"{name}\nversion=1\nnRows={len(rows)}\nnColumns={n}\ninDegrees=no\nendheader\n"
        lost = max(0, len(STUB) - len(original))
    labels = _recover_labels(lines[d - 1].rstrip("\r") if d >= 1 else "", n, path, lost)
    if any(not lab.strip() for lab in labels[1:]):
        raise FileFormatError("cannot repair header: empty column label", file=str(path))
    bad = [i for i, row in enumerate(rows) if len(row.split()) != n]
    if bad:
        raise FileFormatError(f"cannot repair: data row {bad[0] + 1} has {len(rows[bad[0]].split())} fields, not {n}",
                              file=str(path))
    if name is None:
        old = lines[0].strip()
        name = old if old and old != STUB_NAME and "=" not in old else path.name.removesuffix("_states.sto")
    header = [name, "version=1", f"nRows={len(rows)}", f"nColumns={n}", "inDegrees=no", "endheader",
              "\t".join(labels)]
    tmp = path.with_name(path.name + ".repair.tmp")
    tmp.write_text("\n".join(header + rows) + "\n")
    os.replace(tmp, path)
    return True
