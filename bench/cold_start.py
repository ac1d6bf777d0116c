"""Cold start: ``checkstack serve`` with every installed plugin on an existing database, until
``/readyz`` answers 200, against a bare Litestar app started by uvicorn the same way.

    uv run python bench/cold_start.py [--rounds 5] [--database-url postgresql+asyncpg://...]

The database is created and migrated by a first start that is not measured; each measured start
then finds every plugin at its newest revision (the common case: a restart or a deploy without
schema changes). Readiness (``/healthz`` for the bare app) is polled with a raw socket every
10 ms, so the poller costs nothing measurable. Rounds alternate between the two, so machine noise
hits both alike; the ratio is checkstack / bare (the bare start is what Python, uvicorn and
Litestar cost on this machine).

Python must not be compiling every module on each start. A deployment installs with bytecode
(``uv sync --compile-bytecode``, or ``UV_COMPILE_BYTECODE=1``); that compiles what uv installs in
site-packages, but not the workspace's own packages, which a clone installs editable: their
source stays in the checkout and is compiled on import, and not even cached where
``PYTHONDONTWRITEBYTECODE`` is set. So this benchmark first compiles the core and every plugin
package into their ``__pycache__`` folders (what an install does) and says how many modules
that took; ``--as-is`` measures without that step.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

from _harness import BENCH_DIR, free_port


def _package_dirs() -> set[Path]:
    """The folders of the core's and every installed plugin's top-level package."""
    names = {"checkstack_core"} | {
        found.module.split(".")[0] for found in entry_points(group="checkstack.plugins")
    }
    folders = set()
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folders.update(Path(location) for location in spec.submodule_search_locations)
    return folders


def compile_packages() -> int:
    """Write bytecode for every module of those packages (as an install does); how many."""
    folders = _package_dirs()
    for folder in folders:
        compileall.compile_dir(folder, quiet=2, workers=0)
    return sum(1 for folder in folders for _ in folder.rglob("*.py"))


def _ready(port: int, path: str) -> bool:
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(request)
            return sock.recv(32).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _start(command: list[str], port: int, env: dict[str, str], cwd: Path, path: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = started + 120
        while not _ready(port, path):
            if process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"{command} did not become ready")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--as-is", action="store_true", help="do not compile the packages' bytecode first"
    )
    args = parser.parse_args()
    if not args.as_is:
        print(f"bytecode: {compile_packages()} modules of the core and the plugins compiled")

    workdir = Path(tempfile.mkdtemp(prefix="checkstack-cold-"))
    url = args.database_url or f"sqlite+aiosqlite:///{workdir}/cold.db"
    env = {
        **os.environ,
        "CHECKSTACK_DATABASE_URL": url,
        "CHECKSTACK_LOG_LEVEL": "WARNING",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    port = free_port()
    checkstack = [sys.executable, "-m", "checkstack_core", "serve", "--port", str(port)]
    bare = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "_apps:bare_app",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    first = _start(checkstack, port, env, workdir, "/readyz")  # creates and migrates the database
    print(f"first start (new database, migrations): {first:.2f} s")
    timings: dict[str, list[float]] = {"checkstack": [], "bare": []}
    for _ in range(args.rounds):
        timings["checkstack"].append(_start(checkstack, port, env, workdir, "/readyz"))
        # The baseline has no plugins and no database: its health route is its readiness.
        timings["bare"].append(_start(bare, port, env, workdir, "/healthz"))
    ours, base = statistics.median(timings["checkstack"]), statistics.median(timings["bare"])
    print(f"{'start':<44}{'median s':>10}{'min s':>8}")
    print(
        f"{'checkstack serve (every plugin, migrated db)':<44}{ours:>10.2f}"
        f"{min(timings['checkstack']):>8.2f}"
    )
    print(f"{'bare Litestar app under uvicorn':<44}{base:>10.2f}{min(timings['bare']):>8.2f}")
    print(f"ratio checkstack / bare: {ours / base:.2f}; target: checkstack under 1.5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
