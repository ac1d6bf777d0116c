"""Shared benchmark harness: start a server process, load it from another process, report.

Load comes from ``wrk`` when installed (``apt-get install wrk``) and otherwise from a small
keep-alive HTTP/1.1 client written on raw asyncio streams (so the generator, not the server, is
never the thing measured by accident). Each benchmark measures its subject and its baseline in the
same run with the same generator and prints the ratio: the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(app_factory: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``uvicorn --factory <app_factory>`` (one worker, no access log) and yield its URL."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="checkstack-bench-")
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        "CHECKSTACK_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
        "CHECKSTACK_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            app_factory,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=workdir,
        env=full_env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app_factory} did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _request_bytes(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, int, bytes]:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match, url
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    return host, port, "\r\n".join(lines).encode() + body


async def _python_load(
    url: str, body: bytes, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    host, port, request = _request_bytes(url, body, headers)
    deadline = time.perf_counter() + duration
    counts = [0] * connections
    errors = [0] * connections

    async def worker(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[index] += 1
            counts[index] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return LoadResult(sum(counts), time.perf_counter() - started, sum(errors))


def _wrk_load(
    url: str, body: bytes, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    header_lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = [==[{body.decode()}]==]\n"
            'wrk.headers["Content-Type"] = "application/json"\n' + header_lines
        )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return LoadResult(total, seconds, int(non2xx.group(1)) if non2xx else 0)


def load(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    connections: int = 32,
    duration: float = 5.0,
    generator: str | None = None,
) -> LoadResult:
    """Send POSTs of ``body`` to ``url`` for ``duration`` seconds over ``connections``."""
    generator = generator or ("wrk" if shutil.which("wrk") else "python")
    headers = dict(headers or {})
    if generator == "wrk":
        return _wrk_load(url, body, headers, connections, duration)
    return asyncio.run(_python_load(url, body, headers, connections, duration))


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python asyncio client"
