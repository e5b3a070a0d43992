"""The differential referee's long run: tensorfile's pickle reader against CPython's unpickler.

The same families as tests/test_pickle_differential.py (plain data pickled by CPython at every
protocol, opcode programs assembled at random, mutations of both), thousands of cases each, plus
every pickle in tests/fixtures, examples/ and ../shared/corpus (bytes only; skipped when absent).
For each case the globals find_class is asked for, what they resolve to and whether the load fails
must be the same in both ways C reads (as one run, and through its frame buffer). Prints the
counts for docs/BENCHMARKS.md and the first disagreements; exit 1 if there is any.

    .venv/bin/python bench/pickle_differential.py --cases 5000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.pickle_programs import FAMILIES  # noqa: E402
from tests.pickle_referee import Referee, Tally, compare, files_pickles  # noqa: E402

from bench_identify import machine_line  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="cases per generated family")
    parser.add_argument("--seed", default="bench")
    args = parser.parse_args()
    rows: list[tuple[str, Tally, float]] = []
    with Referee() as referee:
        sources = {"tests/fixtures + examples": [ROOT / "tests" / "fixtures", ROOT / "examples"]}
        if CORPUS.is_dir():
            sources["../shared/corpus"] = [CORPUS]
        for name, roots in sources.items():
            tally, start = Tally(), time.perf_counter()
            for root in roots:
                for label, data in files_pickles(root):
                    compare(label, data, referee.ask(data), tally)
            rows.append((name, tally, time.perf_counter() - start))
        for family, make in sorted(FAMILIES.items()):
            tally, start = Tally(), time.perf_counter()
            for i in range(args.cases):
                data = make(random.Random(f"{args.seed}-{family}-{i}"))
                compare(f"{family} #{i}", data, referee.ask(data), tally)
            rows.append((family, tally, time.perf_counter() - start))
    print(f"Machine: {machine_line()}; seed {args.seed!r}, {args.cases} cases per generated family.\n")
    print("| cases | count | streams | globals asked | agree | disagree | memory cap | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total = Tally()
    for name, tally, seconds in rows:
        agree = tally.cases - len(tally.disagreements)
        print(
            f"| {name} | {tally.cases} | {tally.streams} | {tally.globals} | {agree} | "
            f"{len(tally.disagreements)} | {tally.memory_bound} | {seconds:.0f} |"
        )
        total.cases += tally.cases
        total.streams += tally.streams
        total.globals += tally.globals
        total.memory_bound += tally.memory_bound
        total.disagreements += tally.disagreements
    print(f"\nTotal: {total.line()}")
    for problem in total.disagreements[:20]:
        print("  ", problem[:300])
    return 1 if total.disagreements else 0


if __name__ == "__main__":
    raise SystemExit(main())
