"""Every benchmark once, at a size that takes seconds: does it still run?

A benchmark is not a test (its figures are read by people, never asserted),
but one that no longer runs is noticed only when someone needs its figures:
bench/service.py waited 900 s for a priming it could no longer see for a whole
stop after a schema change. CI runs this after the tests (.ci/run). Each
benchmark must exit 0 within its time; what it prints is shown only when it
fails. The figures of such small runs mean nothing.

    .venv/bin/python bench/smoke.py            # all of them
    .venv/bin/python bench/smoke.py feeds push # some
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from postgres import find_bindir  # noqa: E402
# name: (arguments, seconds allowed). PostgreSQL is left out where a flag allows
# (starting a cluster is the tests' business); twitter_count needs an npm package
# that is never in the repository, and is left out.
RUNS: dict[str, tuple[list[str], float]] = {
    "feeds": (["--feeds", "10", "--rounds", "1"], 120),
    "store": (["--feeds", "20", "--skip-postgres"], 120),
    "status": (["--articles", "2000", "--rounds", "1", "--skip-postgres"], 120),
    "publish": (["--small", "10", "--large", "30", "--rounds", "1"], 120),
    "filters": (["-n", "500"], 60),
    "leases": (["--feeds", "500", "--rounds", "3"], 60),
    "leads": ([], 180),
    "push": (["--n", "2", "--gap", "0.3", "--wait", "15"], 120),
    "service": (["--feeds", "30", "--every", "10", "--articles", "2000"], 240),
    "scaleout": (["--feeds", "30", "--every", "5", "--seconds", "5", "--warmup", "2",
                  "--workers", "1,2"], 300),
    "chaos": (["--pairs", "6", "--kills", "2", "--timeout", "240"], 300),
}
NEEDS_POSTGRES = {"scaleout"}


def run(name: str) -> bool:
    args, allowed = RUNS[name]
    if name in NEEDS_POSTGRES and find_bindir() is None:
        print(f"bench/{name}.py: skipped (it needs PostgreSQL's server binaries)", flush=True)
        return True
    began = time.monotonic()
    code, out = _run([sys.executable, str(HERE / f"{name}.py"), *args], allowed)
    ok = code == 0
    why = f"still running after {allowed:g} s" if code is None else f"exit {code}"
    print(f"bench/{name}.py {' '.join(args)}: {'ran' if ok else 'FAILED, ' + why}"
          f" in {time.monotonic() - began:.0f} s", flush=True)
    if not ok:
        print("\n".join("    " + line for line in out.splitlines()[-40:]), flush=True)
    return ok


def _run(command: list[str], allowed: float) -> tuple[int | None, str]:
    """(exit code, or None when stopped for overrunning; what it printed). An
    overrunning benchmark gets SIGTERM first (they stop the Herald processes,
    fake servers and clusters they started), then its whole group SIGKILL."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=allowed)
        except subprocess.TimeoutExpired:
            code = None
            _stop(proc)
        out.seek(0)
        return code, out.read()


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        print(f"no such benchmark here: {', '.join(unknown)} (known: {', '.join(RUNS)})")
        return 2
    failed = [n for n in names or list(RUNS) if not run(n)]
    if failed:
        print(f"{len(failed)} benchmark(s) no longer run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
