"""Cheap, bounded, pure-Python inspection of a C3D file's header and parameter section.

This runs in the calling process before any native reader sees the file. It never allocates more than the file
size, never follows a parameter chain backwards, and rejects what would make a reader allocate or read past the
end of the file (truncated data, absurd counts). Layout per the C3D User Guide (c3d.org, "The C3D File Format",
Motion Lab Systems 2008): 512-byte blocks; block 1 header; parameter section at the block named by header byte 1;
data section at header word 9.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pimsk.errors import C3DError

BLOCK_BYTES = 512
PROCESSORS = {84: "intel", 85: "dec", 86: "mips"}
MAX_PARAMETER_ENTRIES = 20_000
MAX_FRAMES_WITHOUT_DATA = 10_000_000


@dataclass
class RawParameter:
    """One parameter as stored: data type (-1 char, 1 byte, 2 int16, 4 float), C3D dimensions, raw bytes."""

    data_type: int
    dims: tuple[int, ...]
    data: bytes


@dataclass
class C3DLayout:
    """What the header and parameter section say about the file (counts are per the header unless noted)."""

    path: Path
    file_bytes: int
    processor: str
    n_points: int
    n_analog_words: int  # header word 3: analog samples per 3D frame, all channels together
    analog_per_frame: int  # header word 10
    first_frame: int  # 1-based, as in the header
    last_frame: int
    point_scale: float  # header word 7-8; < 0 means float storage
    data_start_block: int
    point_rate_hz: float
    parameters: dict[str, dict[str, RawParameter]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)

    @property
    def is_float(self) -> bool:
        return self.point_scale < 0

    @property
    def n_frames(self) -> int:
        return max(0, self.last_frame - self.first_frame + 1)

    @property
    def n_channels(self) -> int:
        return self.n_analog_words // self.analog_per_frame if self.analog_per_frame > 0 else 0

    def value(self, group: str, name: str) -> list[str] | np.ndarray | None:
        """Decoded parameter (see :func:`decode_parameter`), or None when absent."""
        raw = self.parameters.get(group, {}).get(name)
        return None if raw is None else decode_parameter(raw, self.processor)


def _fail(path: Path, message: str, field_name: str | None = None) -> C3DError:
    return C3DError(message, file=str(path), field=field_name, hint="the file is not a readable C3D; re-export it")


def dec_to_float(raw: bytes) -> np.ndarray:
    """DEC F-floating (VAX) 4-byte values to float64: swap 16-bit words, read as IEEE, divide by 4."""
    b = np.frombuffer(raw, dtype=np.uint8)
    n = len(b) // 4
    b = b[: 4 * n].reshape(n, 4)
    swapped = np.ascontiguousarray(b[:, [2, 3, 0, 1]])
    with np.errstate(all="ignore"):
        return swapped.view("<f4").reshape(-1).astype(np.float64) / 4.0


def decode_floats(raw: bytes, processor: str) -> np.ndarray:
    """4-byte floats in the file's processor format as float64."""
    if processor == "dec":
        return dec_to_float(raw)
    dtype = ">f4" if processor == "mips" else "<f4"
    return np.frombuffer(raw[: len(raw) // 4 * 4], dtype=dtype).astype(np.float64)


def decode_parameter(raw: RawParameter, processor: str) -> list[str] | np.ndarray:
    """Parameter value: list of strings for characters (trailing blanks/NULs stripped), else a numeric array.

    Numeric arrays have the C3D dimensions as shape, first index fastest (Fortran order), e.g.
    FORCE_PLATFORM:CORNERS (3, 4, n_plates), EVENT:TIMES (2, n_events). Scalars have shape (1,).
    """
    dims = raw.dims
    if raw.data_type == -1:
        text = raw.data.decode("latin-1")
        if len(dims) <= 1:
            return [text.rstrip(" \x00")]
        width = dims[0]
        count = int(np.prod(dims[1:]))
        return [text[i * width : (i + 1) * width].rstrip(" \x00") for i in range(count)]
    if raw.data_type == 1:
        values = np.frombuffer(raw.data, dtype=np.int8).astype(np.int64)
    elif raw.data_type == 2:
        values = np.frombuffer(raw.data, dtype=">i2" if processor == "mips" else "<i2").astype(np.int64)
    else:
        values = decode_floats(raw.data, processor)
    if len(dims) == 0:
        return values.reshape(1)
    return values.reshape(dims, order="F")


def _parse_parameters(
    buf: bytes, start: int, end: int, path: Path, int16: str
) -> tuple[dict[str, dict[str, RawParameter]], list[str]]:
    """Walk the parameter entries between byte offsets start (after the 4-byte section header) and end."""
    groups: dict[int, str] = {}
    pending: list[tuple[int, str, RawParameter]] = []
    pos = start
    for _ in range(MAX_PARAMETER_ENTRIES):
        if pos + 2 > end:
            break
        name_len = abs(struct.unpack_from("b", buf, pos)[0])
        group_id = struct.unpack_from("b", buf, pos + 1)[0]
        if name_len == 0 or group_id == 0:
            break
        p = pos + 2
        if p + name_len + 2 > end:
            raise _fail(path, f"parameter entry at byte {pos} runs past the parameter section", "parameters")
        name = buf[p : p + name_len].decode("latin-1").strip().upper()
        p += name_len
        offset_at = p
        (offset,) = struct.unpack_from(int16, buf, p)
        p += 2
        if group_id < 0:
            groups.setdefault(-group_id, name)
        else:
            if p + 2 > end:
                raise _fail(path, f"parameter {name!r} is cut off", "parameters")
            data_type = struct.unpack_from("b", buf, p)[0]
            n_dims = struct.unpack_from("B", buf, p + 1)[0]
            p += 2
            if data_type not in (-1, 1, 2, 4):
                raise _fail(path, f"parameter {name!r} has invalid data type {data_type}", "parameters")
            if n_dims > 7 or p + n_dims > end:
                raise _fail(path, f"parameter {name!r} has {n_dims} dimensions", "parameters")
            dims = tuple(buf[p : p + n_dims])
            p += n_dims
            n_bytes = abs(data_type) * math.prod(dims)
            if p + n_bytes > end:
                raise _fail(
                    path, f"parameter {name!r} claims {n_bytes} bytes past the parameter section", "parameters"
                )
            pending.append((group_id, name, RawParameter(data_type, dims, bytes(buf[p : p + n_bytes]))))
        if offset == 0:
            break
        next_pos = offset_at + offset
        if next_pos <= pos:
            raise _fail(path, f"parameter chain loops back at {name!r} (offset {offset})", "parameters")
        if next_pos > end:
            break  # points past the section (seen in the SGI sample files): the remaining entries are lost
        pos = next_pos
    else:
        raise _fail(path, f"more than {MAX_PARAMETER_ENTRIES} parameter entries", "parameters")
    params: dict[str, dict[str, RawParameter]] = {}
    duplicates: list[str] = []
    for group_id, name, raw in pending:
        group = groups.get(group_id, f"GROUP{group_id}")
        bucket = params.setdefault(group, {})
        if name in bucket:
            duplicates.append(f"{group}:{name}")
            continue  # keep the first definition
        bucket[name] = raw
    return params, duplicates


def _count(layout_params: dict[str, dict[str, RawParameter]], processor: str, group: str, name: str) -> int | None:
    raw = layout_params.get(group, {}).get(name)
    if raw is None or raw.data_type == -1 or not raw.data:
        return None
    value = np.asarray(decode_parameter(raw, processor)).reshape(-1)[0]
    if not np.isfinite(value):
        return -1
    return int(value) & 0xFFFF if raw.data_type == 2 else int(value)


def inspect_c3d(path: str | Path) -> C3DLayout:
    """Parse and sanity-check the header and parameter section; raise C3DError naming the file if unusable.

    Checks: the 0x50 key, a known processor type (Intel/DEC/MIPS), a parameter section inside the file, a
    well-formed parameter chain, header and POINT:USED / ANALOG:USED agreeing, and a data section whose size
    (frames x bytes per frame, for every frame count a reader may use) fits in the file.
    """
    path = Path(path)
    try:
        file_bytes = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(BLOCK_BYTES)
            if len(head) < BLOCK_BYTES:
                raise _fail(path, f"only {len(head)} bytes: shorter than a C3D header block")
            param_block = head[0]
            if head[1] != 0x50:
                raise _fail(path, f"byte 2 is {head[1]:#x}, not the C3D key 0x50", "header")
            if param_block < 1 or (param_block - 1) * BLOCK_BYTES + 4 > file_bytes:
                raise _fail(path, f"parameter block {param_block} lies outside the file", "header")
            handle.seek((param_block - 1) * BLOCK_BYTES)
            section_head = handle.read(4)
            n_blocks, proc_byte = section_head[2], section_head[3]
            processor = PROCESSORS.get(proc_byte)
            if processor is None:
                raise _fail(path, f"unknown processor type {proc_byte} (expected 84, 85 or 86)", "parameters")
            section_bytes = max(n_blocks, 1) * BLOCK_BYTES
            handle.seek((param_block - 1) * BLOCK_BYTES)
            section = handle.read(section_bytes)
    except OSError as exc:
        raise C3DError(f"cannot open: {exc.strerror or exc}", file=str(path)) from None
    if len(section) < section_bytes:
        raise _fail(path, f"parameter section ({n_blocks} blocks) runs past the end of the file", "parameters")

    int16 = ">h" if processor == "mips" else "<h"
    uint16 = ">H" if processor == "mips" else "<H"

    def word(i: int) -> int:  # 1-based header word, unsigned
        return struct.unpack_from(uint16, head, 2 * (i - 1))[0]

    def hfloat(i: int) -> float:
        return float(decode_floats(head[2 * (i - 1) : 2 * (i - 1) + 4], processor)[0])

    params, duplicates = _parse_parameters(section, 4, len(section), path, int16)
    layout = C3DLayout(
        path=path,
        file_bytes=file_bytes,
        processor=processor,
        n_points=word(2),
        n_analog_words=word(3),
        analog_per_frame=word(10),
        first_frame=word(4),
        last_frame=word(5),
        point_scale=hfloat(7),
        data_start_block=word(9),
        point_rate_hz=hfloat(11),
        parameters=params,
        duplicates=duplicates,
    )
    _check_counts(layout)
    return layout


def _check_counts(layout: C3DLayout) -> None:
    """Reject files whose counts disagree or whose data section cannot hold what the counts promise."""
    path, proc, params = layout.path, layout.processor, layout.parameters
    if not math.isfinite(layout.point_scale):
        raise _fail(path, "header point scale is not a finite number", "header")
    points_used = _count(params, proc, "POINT", "USED")
    if points_used is not None and points_used != layout.n_points:
        raise _fail(path, f"header has {layout.n_points} points but POINT:USED is {points_used}", "POINT:USED")
    if layout.analog_per_frame and layout.n_analog_words % layout.analog_per_frame:
        raise _fail(
            path,
            f"{layout.n_analog_words} analog words per frame is not a multiple of {layout.analog_per_frame}",
            "header",
        )
    analog_used = _count(params, proc, "ANALOG", "USED")
    if analog_used is not None and layout.analog_per_frame and analog_used != layout.n_channels:
        raise _fail(
            path, f"header has {layout.n_channels} analog channels but ANALOG:USED is {analog_used}", "ANALOG:USED"
        )
    scale = layout.value("POINT", "SCALE")
    if isinstance(scale, np.ndarray) and scale.size and not np.isfinite(scale.reshape(-1)[0]):
        raise _fail(path, "POINT:SCALE is not a finite number", "POINT:SCALE")
    is_float = layout.is_float
    if isinstance(scale, np.ndarray) and scale.size and (scale.reshape(-1)[0] < 0) != is_float:
        raise _fail(path, "header scale and POINT:SCALE disagree on integer/float storage", "POINT:SCALE")
    word_bytes = 4 if is_float else 2
    frame_bytes = (4 * layout.n_points + layout.n_analog_words) * word_bytes
    data_start = (layout.data_start_block - 1) * BLOCK_BYTES
    if layout.data_start_block < 1 or data_start > layout.file_bytes:
        raise _fail(path, f"data section starts at block {layout.data_start_block}, past the end", "header")
    available = layout.file_bytes - data_start
    for n_frames, source in _frame_counts(layout):
        if n_frames < 0:
            raise _fail(path, f"{source} gives a negative frame count", source)
        if frame_bytes == 0:
            if n_frames > MAX_FRAMES_WITHOUT_DATA:
                raise _fail(path, f"{source} claims {n_frames} empty frames", source)
            continue
        needed = n_frames * frame_bytes
        if needed > available:
            raise _fail(
                path,
                f"truncated: {source} gives {n_frames} frames of {frame_bytes} bytes ({needed} bytes) but the data "
                f"section has {available} bytes",
                source,
            )


def _frame_counts(layout: C3DLayout) -> list[tuple[int, str]]:
    """Every frame count a reader may derive: the header's, and the parameter-based ones of the `c3d` package."""
    counts = [(layout.last_frame - layout.first_frame + 1, "header first/last frame")]
    if layout.last_frame < layout.first_frame:
        counts = [(0, "header first/last frame")] if layout.last_frame + 1 == layout.first_frame else counts
    proc = layout.processor
    first = layout.first_frame
    start = layout.parameters.get("TRIAL", {}).get("ACTUAL_START_FIELD")
    if start is not None and start.data_type != -1 and len(start.data) >= 4:
        words = np.frombuffer(start.data[:4], dtype=">u2" if proc == "mips" else "<u2")
        first = int(words[0]) + int(words[1]) * 65535
    end = layout.parameters.get("TRIAL", {}).get("ACTUAL_END_FIELD")
    if end is not None and end.data_type != -1 and len(end.data) >= 4:
        words = np.frombuffer(end.data[:4], dtype=">u2" if proc == "mips" else "<u2")
        last = int(words[0]) + int(words[1]) * 65536
        if last >= layout.last_frame:
            counts.append((last - first + 1, "TRIAL:ACTUAL_END_FIELD"))
    for name in ("LONG_FRAMES", "FRAMES"):
        raw = layout.parameters.get("POINT", {}).get(name)
        if raw is None or raw.data_type == -1 or not raw.data:
            continue
        value = np.asarray(decode_parameter(raw, proc)).reshape(-1)[0]
        if not np.isfinite(value):
            continue
        last = int(value) & 0xFFFF if raw.data_type == 2 else int(value)
        if last >= layout.last_frame and last > 0:
            counts.append((last - first + 1, f"POINT:{name}"))
    return counts
