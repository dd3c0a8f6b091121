"""Run every benchmark, one after the other, and keep their tables: ``make bench`` / ``python -m bench``.

    python -m bench [--quick] [--only append,api_latency,...]

Each benchmark runs in its own process (so one's connection pools, caches and garbage cannot
slow the next) against the same PostgreSQL: ``CASELEDGER_BENCH_PG_DSN``, else
``CASELEDGER_TEST_PG_DSN``, else one throwaway cluster started here for the whole run. The
tables go to the terminal and to ``var/bench/<time>.md``, ready to be copied into
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from ledger.settings import Settings

#: (module, what it measures); each takes --quick.
BENCHMARKS = [
    ("bench.append", "append vs raw eventsourcing, growth to 1M events"),
    ("bench.history", "in-process read/command cost vs raw eventsourcing; history length with snapshots"),
    ("bench.api_latency", "API latency under load against gunicorn"),
    ("bench.integrity", "Merkle log cost, verification, proofs"),
    ("bench.rebuild", "read-model rebuild vs raw decoded read"),
    ("bench.encryption", "per-subject encryption cost"),
]


def describe_machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    cores = os.cpu_count()
    try:
        load = ", load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = ""
    return f"{model} · {cores} cores{load} · Python {platform.python_version()} · {platform.platform()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated module names without 'bench.', e.g. append,api_latency")
    args = parser.parse_args()
    chosen = [(m, what) for m, what in BENCHMARKS if importlib.util.find_spec(m) is not None
              and (not args.only or m.removeprefix("bench.") in args.only.split(","))]
    out_dir = Path("var/bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / f"{datetime.now():%Y-%m-%d-%H%M%S}{'-quick' if args.quick else ''}.md"
    failed = []
    with ExitStack() as stack, report.open("w") as out:
        settings = Settings.from_environ()
        dsn = settings.bench_pg_dsn or settings.test_pg_dsn
        if not dsn:
            from cli.throwaway_pg import ThrowawayPostgres

            dsn = stack.enter_context(ThrowawayPostgres(settings.pg_bindir)).dsn
            print(f"started a throwaway PostgreSQL for this run: {dsn}", file=sys.stderr)
        env = settings.child_environ(CASELEDGER_TEST_PG_DSN=dsn)
        header = f"Machine: {describe_machine()}\nMode: {'quick' if args.quick else 'full'}\n"
        print(header)
        out.write(header + "\n")
        for module, what in chosen:
            title = f"## {module} — {what}"
            print(title, flush=True)
            out.write(title + "\n\n")
            started = time.perf_counter()
            command = [sys.executable, "-m", module, *(["--quick"] if args.quick else [])]
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
            for line in process.stdout:
                print(line, end="", flush=True)
                out.write(line)
            if process.wait() != 0:
                failed.append(module)
            note = f"({module}: {time.perf_counter() - started:.0f} s{', FAILED' if module in failed else ''})\n"
            print(note)
            out.write(note + "\n")
            out.flush()
    print(f"tables written to {report}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
