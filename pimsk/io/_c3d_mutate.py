"""Seeded mutations of real C3D bytes, for fuzzing :func:`pimsk.io.c3d_read.read_c3d` (tests and bench only).

Each mutation takes the original bytes and a ``numpy.random.Generator`` and returns new bytes. They aim at the
places readers trust: header counts and block numbers, parameter entries (type, dimensions, chain offsets),
the data section, the file length.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BLOCK = 512


@dataclass
class Entry:
    """Byte positions of one parameter-section entry (absolute offsets in the file)."""

    pos: int
    group_id: int
    name: str
    offset_pos: int
    type_pos: int | None = None  # parameters only
    dims_pos: int | None = None
    n_dims: int = 0
    data_pos: int | None = None
    n_bytes: int = 0


def _int16_fmt(buf: bytes) -> tuple[str, str]:
    start = (buf[0] - 1) * BLOCK
    proc = buf[start + 3] if 0 <= start + 3 < len(buf) else 84
    return (">h", ">H") if proc == 86 else ("<h", "<H")


def parameter_entries(buf: bytes) -> list[Entry]:
    """Tolerant scan of the parameter chain of a (valid) C3D file."""
    int16, _ = _int16_fmt(buf)
    start = (buf[0] - 1) * BLOCK
    end = min(len(buf), start + max(buf[start + 2], 1) * BLOCK)
    pos = start + 4
    out: list[Entry] = []
    while pos + 2 <= end and len(out) < 5000:
        name_len = abs(struct.unpack_from("b", buf, pos)[0])
        gid = struct.unpack_from("b", buf, pos + 1)[0]
        if name_len == 0 or gid == 0 or pos + 4 + name_len > end:
            break
        name = buf[pos + 2 : pos + 2 + name_len].decode("latin-1")
        offset_pos = pos + 2 + name_len
        (offset,) = struct.unpack_from(int16, buf, offset_pos)
        entry = Entry(pos, gid, name, offset_pos)
        if gid > 0 and offset_pos + 4 <= end:
            entry.type_pos = offset_pos + 2
            entry.dims_pos = offset_pos + 4
            entry.n_dims = buf[offset_pos + 3]
            dims = buf[entry.dims_pos : entry.dims_pos + entry.n_dims]
            entry.data_pos = entry.dims_pos + entry.n_dims
            entry.n_bytes = abs(struct.unpack_from("b", buf, entry.type_pos)[0]) * int(np.prod(list(dims) or [1]))
        out.append(entry)
        if offset <= 0:
            break
        pos = offset_pos + offset
    return out


def _set_word(buf: bytearray, word: int, value: int) -> None:
    _, uint16 = _int16_fmt(bytes(buf))
    struct.pack_into(uint16, buf, 2 * (word - 1), value & 0xFFFF)


def bit_flips(data: bytes, rng: np.random.Generator) -> bytes:
    """1-32 random bit flips anywhere."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 33))):
        i = int(rng.integers(len(buf)))
        buf[i] ^= 1 << int(rng.integers(8))
    return bytes(buf)


def header_flips(data: bytes, rng: np.random.Generator) -> bytes:
    """Random bytes in the 512-byte header."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        buf[int(rng.integers(min(BLOCK, len(buf))))] = int(rng.integers(256))
    return bytes(buf)


def parameter_flips(data: bytes, rng: np.random.Generator) -> bytes:
    """Random bytes in the parameter section."""
    buf = bytearray(data)
    start = (buf[0] - 1) * BLOCK
    size = max(buf[start + 2], 1) * BLOCK
    for _ in range(int(rng.integers(1, 9))):
        buf[start + int(rng.integers(min(size, len(buf) - start)))] = int(rng.integers(256))
    return bytes(buf)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut the file anywhere (often inside the data section)."""
    return data[: int(rng.integers(0, len(data)))]


def huge_header_counts(data: bytes, rng: np.random.Generator) -> bytes:
    """Set a header count or block number (points, analog words, first/last frame, data start, analog per frame)
    to an extreme value."""
    buf = bytearray(data)
    word = int(rng.choice([2, 3, 4, 5, 9, 10]))
    _set_word(buf, word, int(rng.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF, int(rng.integers(0x10000))])))
    return bytes(buf)


def parameter_block(data: bytes, rng: np.random.Generator) -> bytes:
    """Corrupt the parameter-section pointer, block count or processor byte."""
    buf = bytearray(data)
    start = (buf[0] - 1) * BLOCK
    which = int(rng.integers(3))
    if which == 0:
        buf[0] = int(rng.integers(256))
    elif which == 1:
        buf[start + 2] = int(rng.integers(256))
    else:
        buf[start + 3] = int(rng.choice([0, 83, 84, 85, 86, 87, 255]))
    return bytes(buf)


def entry_corruption(data: bytes, rng: np.random.Generator) -> bytes:
    """Corrupt one parameter entry: its data type, a dimension, its dimension count or its chain offset."""
    buf = bytearray(data)
    entries = parameter_entries(data)
    if not entries:
        return bit_flips(data, rng)
    entry = entries[int(rng.integers(len(entries)))]
    int16, _ = _int16_fmt(data)
    which = int(rng.integers(4))
    if which == 0 and entry.type_pos is not None:
        buf[entry.type_pos] = int(rng.choice([0, 1, 2, 3, 4, 5, 0x7F, 0x80, 0xFF])) & 0xFF
    elif which == 1 and entry.dims_pos is not None and entry.n_dims:
        buf[entry.dims_pos + int(rng.integers(entry.n_dims))] = int(rng.choice([0, 1, 255]))
    elif which == 2 and entry.type_pos is not None:
        buf[entry.type_pos + 1] = int(rng.choice([0, 7, 8, 100, 255]))
    else:
        struct.pack_into(int16, buf, entry.offset_pos, int(rng.choice([0, -1, -100, 1, 3, 32767, -32768])))
    return bytes(buf)


def counts_parameter(data: bytes, rng: np.random.Generator) -> bytes:
    """Change a numeric count parameter (POINT:USED/FRAMES, ANALOG:USED, FORCE_PLATFORM:USED/CHANNEL,
    EVENT:USED, TRIAL fields) to an extreme value, in the file's own encoding."""
    buf = bytearray(data)
    int16, _ = _int16_fmt(data)
    targets = [e for e in parameter_entries(data) if e.data_pos is not None and e.n_bytes >= 2]
    wanted = {"USED", "FRAMES", "CHANNEL", "ACTUAL_END_FIELD", "ACTUAL_START_FIELD", "TYPE", "DATA_START"}
    picks = [e for e in targets if e.name in wanted] or targets
    if not picks:
        return bit_flips(data, rng)
    entry = picks[int(rng.integers(len(picks)))]
    type_byte = struct.unpack_from("b", buf, entry.type_pos)[0]
    value = int(rng.choice([-1, 0, 1, 7, 255, 32767, -32768]))
    k = int(rng.integers(max(entry.n_bytes // max(abs(type_byte), 1), 1)))
    if type_byte == 2 and entry.data_pos + 2 * k + 2 <= len(buf):
        struct.pack_into(int16, buf, entry.data_pos + 2 * k, value)
    elif type_byte == 4 and entry.data_pos + 4 * k + 4 <= len(buf) and int16 == "<h" and buf[
        (buf[0] - 1) * BLOCK + 3
    ] == 84:
        struct.pack_into("<f", buf, entry.data_pos + 4 * k, float(rng.choice([value, np.inf, np.nan, 1e30])))
    elif entry.data_pos < len(buf):
        buf[entry.data_pos] = value & 0xFF
    return bytes(buf)


def garbage(data: bytes, rng: np.random.Generator) -> bytes:
    """Random bytes of a random length, sometimes with a valid-looking first word."""
    n = int(rng.integers(0, 4 * BLOCK))
    out = bytearray(rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())
    if n >= 2 and rng.random() < 0.5:
        out[0], out[1] = 2, 0x50
    return bytes(out)


def splice(data: bytes, rng: np.random.Generator) -> bytes:
    """Duplicate or drop a chunk inside the file (shifts everything after it)."""
    i = int(rng.integers(len(data)))
    j = min(len(data), i + int(rng.integers(1, 2 * BLOCK)))
    return data[:j] + data[i:] if rng.random() < 0.5 else data[:i] + data[j:]


MUTATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "bit_flips": bit_flips,
    "header_flips": header_flips,
    "parameter_flips": parameter_flips,
    "truncate": truncate,
    "huge_header_counts": huge_header_counts,
    "parameter_block": parameter_block,
    "entry_corruption": entry_corruption,
    "counts_parameter": counts_parameter,
    "garbage": garbage,
    "splice": splice,
}


def mutate(data: bytes, seed: int) -> tuple[str, bytes]:
    """(mutation name, mutated bytes) for a seed; the mutation kind cycles with the seed."""
    rng = np.random.default_rng(seed)
    names = list(MUTATIONS)
    name = names[seed % len(names)]
    return name, MUTATIONS[name](data, rng)


def replace_parameter(data: bytes, group: str, name: str, dims: tuple[int, ...], payload: bytes) -> bytes:
    """A well-formed copy of the file with one parameter's dimensions and data replaced (same data type).

    The entry is rewritten, its chain offset fixed, and the rest of the parameter section shifted; the section
    keeps its size (zero padding at its end), so the data section does not move. Only shrinking is supported.
    For building test files, e.g. ANALOG:SCALE holding a single value.
    """
    entries = parameter_entries(data)
    int16, _ = _int16_fmt(data)
    group_ids = {-e.group_id: e.name.strip().upper() for e in entries if e.group_id < 0}
    for entry in entries:
        if entry.group_id > 0 and group_ids.get(entry.group_id) == group and entry.name.strip().upper() == name:
            break
    else:
        raise KeyError(f"{group}:{name}")
    type_size = abs(struct.unpack_from("b", data, entry.type_pos)[0])
    if len(payload) != type_size * int(np.prod(list(dims) or [1])):
        raise ValueError("payload size does not match dims x element size")
    old_len = 1 + entry.n_dims + entry.n_bytes  # n_dims byte, dims, data
    new_part = bytes([len(dims)]) + bytes(dims) + payload
    delta = len(new_part) - old_len
    if delta > 0:
        raise ValueError("replace_parameter can only shrink a parameter")
    (offset,) = struct.unpack_from(int16, data, entry.offset_pos)
    buf = bytearray(data)
    struct.pack_into(int16, buf, entry.offset_pos, offset + delta if offset else 0)
    start = (data[0] - 1) * BLOCK
    section_end = start + max(data[start + 2], 1) * BLOCK
    head = bytes(buf[: entry.type_pos + 1])
    tail = bytes(buf[entry.type_pos + 1 + old_len : section_end])
    section = head + new_part + tail + bytes(-delta)
    return section + bytes(buf[section_end:])


def patch_parameter_dims(data: bytes, group: str, name: str, dims: tuple[int, ...]) -> bytes:
    """Rewrite a parameter's dimensions in place (same number of dimensions; the data block keeps its old size,
    the chain offset is unchanged), e.g. make ANALOG:SCALE hold a single value. For building test files."""
    entries = parameter_entries(data)
    group_ids = {-e.group_id: e.name.strip().upper() for e in entries if e.group_id < 0}
    for entry in entries:
        if entry.group_id > 0 and group_ids.get(entry.group_id) == group and entry.name.strip().upper() == name:
            if entry.n_dims != len(dims):
                raise ValueError(f"{group}:{name} has {entry.n_dims} dimensions, not {len(dims)}")
            buf = bytearray(data)
            buf[entry.dims_pos : entry.dims_pos + len(dims)] = bytes(dims)
            return bytes(buf)
    raise KeyError(f"{group}:{name}")


def _kind(reason: str) -> str:
    if reason.startswith("skipped"):
        return "skipped"
    if "killed by" in reason or "exited with status" in reason:
        return "crash"
    if "timed out" in reason:
        return "timeout"
    return "error"


def run_case(path: str, timeout_s: float) -> dict[str, object]:
    """Read one (mutated) file with read_c3d and classify the outcome.

    outcome: 'ok' (a C3DData came back), 'C3DError' or 'UNEXPECTED' (any other exception: a bug);
    detail: which reader read it / which stage refused it, with each back-end's failure kind
    (crash = the worker died, timeout, error = the back-end raised, skipped = pre-check ruled it out).
    """
    import time

    from pimsk.errors import C3DError
    from pimsk.io.c3d_read import read_c3d

    t0 = time.perf_counter()
    try:
        data = read_c3d(path, timeout_s=timeout_s)
    except C3DError as exc:
        stage = exc.extra.get("stage", "?")
        if stage == "readers":
            detail = "readers: " + ", ".join(f"{r}={_kind(exc.extra.get(r, ''))}" for r in ("ezc3d", "c3d"))
        else:
            detail = stage
        ok_name = str(path) in str(exc)
        return {
            "outcome": "C3DError" if ok_name else "UNEXPECTED",
            "detail": detail if ok_name else f"C3DError without the file name: {exc}",
            "message": str(exc)[:300],
            "seconds": time.perf_counter() - t0,
        }
    except BaseException as exc:  # noqa: BLE001 - the point is to catch everything the reader lets through
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {
            "outcome": "UNEXPECTED",
            "detail": f"{type(exc).__name__}",
            "message": str(exc)[:300],
            "seconds": time.perf_counter() - t0,
        }
    earlier = [w.split(":", 1) for w in data.warnings if w.split(":", 1)[0] in ("ezc3d",)]
    detail = f"read by {data.reader}"
    if earlier:
        detail += f" (ezc3d={_kind(earlier[0][1].strip())})"
    return {"outcome": "ok", "detail": detail, "message": "", "seconds": time.perf_counter() - t0}


def minimal_c3d(xyz: np.ndarray, residual: np.ndarray, labels: list[str], rate_hz: float = 100.0) -> bytes:
    """A small, valid, float-format Intel C3D built by hand (C3D User Guide layout): header block, one
    parameter block with a POINT group (USED, RATE, SCALE=-1, UNITS='mm', LABELS), then the frames.

    xyz: (n_frames, n_points, 3); residual: (n_frames, n_points), negative = invalid point. No analog.
    """
    n_frames, n_points, _ = xyz.shape
    header = bytearray(BLOCK)
    header[0], header[1] = 2, 0x50
    struct.pack_into("<HHHH", header, 2, n_points, 0, 1, n_frames)
    struct.pack_into("<f", header, 12, -1.0)
    struct.pack_into("<H", header, 16, 3)  # data start block
    struct.pack_into("<f", header, 20, rate_hz)
    width = max([len(label) for label in labels] + [1])
    text = b"".join(label.encode("latin-1").ljust(width) for label in labels)
    entries = [
        (-1, b"POINT", None),
        (1, b"USED", (2, (), struct.pack("<h", n_points))),
        (1, b"RATE", (4, (), struct.pack("<f", rate_hz))),
        (1, b"SCALE", (4, (), struct.pack("<f", -1.0))),
        (1, b"UNITS", (-1, (2,), b"mm")),
        (1, b"LABELS", (-1, (width, n_points), text)),
    ]
    params = bytearray([1, 0x50, 1, 84])
    for k, (gid, name, spec) in enumerate(entries):
        if spec is None:
            body = bytearray([0])
        else:
            body = bytearray([spec[0] & 0xFF, len(spec[1]), *spec[1]]) + spec[2] + b"\x00"
        offset = 0 if k == len(entries) - 1 else 2 + len(body)
        params += bytes([len(name), gid & 0xFF]) + name + struct.pack("<h", offset) + body
    if len(params) > BLOCK:
        raise ValueError("labels too long for one parameter block")
    params += bytes(BLOCK - len(params))
    frames = np.concatenate([xyz, residual[:, :, None]], axis=2).astype("<f4")
    return bytes(header) + bytes(params) + frames.tobytes()
