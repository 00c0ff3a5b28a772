"""Fuzzing read_c3d: malformed C3D files end in a C3DData or a C3DError naming the file, never in a crash,
a hang or another exception in this process. More cases: ``python bench/fuzz_c3d.py N``."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pimsk.errors import C3DError
from pimsk.io._c3d_layout import inspect_c3d
from pimsk.io._c3d_mutate import mutate, run_case

pytestmark = pytest.mark.data

SEEDS = [
    "kineticstoolkit/data/c3d_test_suite/Sample02/pc_int.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/pc_real.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/dec_int.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/sgi_real.c3d",
    "motonms/TestData/InputData/Control1_UNIPD/2012_10_17/Static1.c3d",
]
N_CASES = 1000
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def seed_bytes(data_dir: Path) -> list[tuple[str, bytes]]:
    return [(name, (data_dir / name).read_bytes()) for name in SEEDS]


def test_seeded_mutations(seed_bytes, tmp_path: Path) -> None:
    """N_CASES mutations (bit flips, truncation, header/parameter corruption, huge counts, garbage, splices)."""
    outcomes: Counter = Counter()
    bad: list[str] = []
    t0 = time.perf_counter()
    for seed in range(N_CASES):
        source, original = seed_bytes[seed % len(seed_bytes)]
        kind, data = mutate(original, 10_000 + seed)
        path = tmp_path / f"case{seed}.c3d"
        path.write_bytes(data)
        result = run_case(str(path), TIMEOUT_S)
        outcomes[f"{result['outcome']}: {result['detail']}"] += 1
        if result["outcome"] == "UNEXPECTED" or result["seconds"] > 2 * TIMEOUT_S + 5:
            bad.append(f"seed {seed} {kind} on {source}: {result}")
        path.unlink()
    elapsed = time.perf_counter() - t0
    print(f"\n{N_CASES} fuzz cases in {elapsed:.1f} s:", dict(outcomes))
    assert not bad, "\n".join(bad)
    # The fuzzer must exercise both ends: files that still read and files refused before and by the readers.
    assert sum(v for k, v in outcomes.items() if k.startswith("ok")) > N_CASES // 10
    assert outcomes["C3DError: precheck"] > N_CASES // 10
    assert any(k.startswith("C3DError: readers") for k in outcomes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=3000))
def test_precheck_on_arbitrary_bytes(tmp_path_factory, blob: bytes) -> None:
    """The in-process pre-check only ever returns a layout or raises C3DError, whatever the bytes."""
    path = tmp_path_factory.mktemp("blob") / "x.c3d"
    path.write_bytes(blob)
    try:
        inspect_c3d(path)
    except C3DError as exc:
        assert str(path) in str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offset=st.integers(min_value=0, max_value=4095),
    chunk=st.binary(min_size=1, max_size=64),
)
def test_overwrite_parameter_region(seed_bytes, tmp_path_factory, offset: int, chunk: bytes) -> None:
    """Arbitrary bytes written over the header and parameter section of a real file, read end to end."""
    original = seed_bytes[0][1]
    data = bytearray(original)
    data[offset : offset + len(chunk)] = chunk
    path = tmp_path_factory.mktemp("over") / "x.c3d"
    path.write_bytes(bytes(data[: len(original)]))
    result = run_case(str(path), TIMEOUT_S)
    assert result["outcome"] in ("ok", "C3DError"), result


def test_huge_counts_are_refused_cheaply(seed_bytes, tmp_path: Path) -> None:
    """Header counts claiming 65535 points x 65535 frames are refused by the pre-check in milliseconds,
    before any reader allocates for them."""
    data = bytearray(seed_bytes[0][1])
    data[2:4] = (0xFFFF).to_bytes(2, "little")  # points
    data[8:10] = (0xFFFF).to_bytes(2, "little")  # last frame
    path = tmp_path / "huge.c3d"
    path.write_bytes(bytes(data))
    t0 = time.perf_counter()
    with pytest.raises(C3DError) as info:
        inspect_c3d(path)
    assert time.perf_counter() - t0 < 0.5
    assert "POINT:USED" in str(info.value) or "truncated" in str(info.value)
