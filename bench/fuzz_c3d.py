"""Fuzz pimsk's C3D reader with seeded mutations of real files; print a table and write JSON.

    python bench/fuzz_c3d.py 2000            # 2000 cases
    python bench/fuzz_c3d.py 500 --seed 7 --timeout 5

Every case must end in a C3DData or a C3DError naming the file; anything else (another exception, a crash or a
hang of this process) is a bug and makes the script exit non-zero. Writes results/benchmarks/fuzz_c3d.json.
Needs the shared data (PIMSK_DATA, default ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from pimsk.io._c3d_mutate import mutate, run_case
from pimsk.io.c3d_read import shutdown_worker
from pimsk.paths import data_root, results_root

SEED_FILES = [
    "kineticstoolkit/data/c3d_test_suite/Sample02/pc_int.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/pc_real.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/dec_int.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/dec_real.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample02/sgi_real.c3d",
    "kineticstoolkit/data/c3d_test_suite/Sample01/Eb015pi.c3d",
    "motonms/TestData/InputData/Control1_UNIPD/2012_10_17/Static1.c3d",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=1000, help="number of cases")
    parser.add_argument("--seed", type=int, default=0, help="first seed (cases use seed .. seed+n-1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-reader timeout, s")
    parser.add_argument("--out", type=Path, default=results_root() / "benchmarks" / "fuzz_c3d.json")
    args = parser.parse_args(argv)

    root = data_root()
    seeds = [(name, (root / name).read_bytes()) for name in SEED_FILES if (root / name).is_file()]
    if not seeds:
        print(f"no seed files under {root} (set PIMSK_DATA)", file=sys.stderr)
        return 2

    by_mutation: dict[str, Counter] = defaultdict(Counter)
    details: Counter = Counter()
    examples: dict[str, list[dict[str, object]]] = defaultdict(list)
    unexpected: list[dict[str, object]] = []
    times: list[float] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pimsk_fuzz_") as tmp:
        for k in range(args.n):
            seed = args.seed + k
            source, original = seeds[seed % len(seeds)]
            mutation, data = mutate(original, seed // len(seeds) * 7 + seed)
            path = Path(tmp) / f"case_{seed}.c3d"
            path.write_bytes(data)
            result = run_case(str(path), args.timeout)
            path.unlink()
            times.append(float(result["seconds"]))
            by_mutation[mutation][result["outcome"]] += 1
            key = f"{result['outcome']}: {result['detail']}"
            details[key] += 1
            if len(examples[key]) < 3:
                example = {"seed": seed, "source": source, "mutation": mutation, "message": result["message"]}
                examples[key].append(example)
            if result["outcome"] == "UNEXPECTED":
                unexpected.append({"seed": seed, "source": source, "mutation": mutation, **result})
    wall = time.perf_counter() - t_start
    shutdown_worker()

    outcomes = ["ok", "C3DError", "UNEXPECTED"]
    print(f"{'mutation':<20}" + "".join(f"{o:>12}" for o in outcomes))
    for mutation in sorted(by_mutation):
        print(f"{mutation:<20}" + "".join(f"{by_mutation[mutation][o]:>12}" for o in outcomes))
    print()
    print(f"{'outcome detail':<60}{'cases':>8}")
    for detail, count in details.most_common():
        print(f"{detail:<60}{count:>8}")
    times_sorted = sorted(times)
    p50 = times_sorted[len(times) // 2]
    p99 = times_sorted[min(len(times) - 1, int(0.99 * len(times)))]
    print(f"\n{args.n} cases in {wall:.1f} s: median {1e3 * p50:.1f} ms, p99 {1e3 * p99:.1f} ms, "
          f"max {1e3 * times_sorted[-1]:.0f} ms per case; unexpected: {len(unexpected)}")

    report = {
        "cases": args.n,
        "first_seed": args.seed,
        "timeout_s": args.timeout,
        "wall_s": wall,
        "median_case_s": p50,
        "p99_case_s": p99,
        "max_case_s": times_sorted[-1],
        "by_mutation": {m: dict(c) for m, c in sorted(by_mutation.items())},
        "details": dict(details.most_common()),
        "unexpected": unexpected,
        "examples": examples,
        "seed_files": [name for name, _ in seeds],
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
