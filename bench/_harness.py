"""Shared benchmark harness: start a server process, load it from another process, report.

Load comes from ``wrk`` when installed (``apt-get install wrk``) and otherwise from a small
keep-alive HTTP/1.1 client written on raw asyncio streams (so the generator, not the server, is
never the thing measured by accident). Each benchmark measures its subject and its baseline in the
same run with the same generator and prints the ratio: the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
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
def server(
    app_factory: str,
    env: Mapping[str, str] | None = None,
    *,
    ready_path: str = "/healthz",
    log: Path | None = None,
) -> Iterator[str]:
    """Run ``uvicorn --factory <app_factory>`` (one worker, no access log) and yield its URL
    once ``ready_path`` answers 200. ``log``: write the server's output there, not to ours."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="checkstack-bench-")
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        "CHECKSTACK_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
        "CHECKSTACK_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    sink = open(log, "ab") if log is not None else None  # noqa: SIM115  (closed below)
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
        stdout=sink,
        stderr=subprocess.STDOUT if log is not None else None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{app_factory} did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # requests still stuck inside: do not wait for them
            process.kill()
            process.wait()
        if sink is not None:
            sink.close()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class LoadResult:
    """What one load run saw. ``requests`` counts answered requests (any status)."""

    requests: int
    seconds: float
    #: Answers with a status of 400 or more (wrk's "Non-2xx or 3xx responses").
    non2xx: int = 0
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    #: Requests without an answer within the generator's timeout.
    timeouts: int = 0
    #: Latency percentiles of the answered requests, in milliseconds (``None``: none answered).
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    #: Seconds the server needed after the run to answer ``settle_url`` promptly again (when
    #: asked to measure it). A generator cannot judge requests still unanswered when it stops;
    #: a server still busy long after the load ended had requests hanging inside.
    drain_s: float | None = None
    #: The per-request timeout the run used (the limit ``drain_s`` is held to).
    timeout: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors

    @property
    def errors(self) -> int:
        """Everything that is not a good answer: error statuses, socket errors, timeouts."""
        return self.non2xx + self.socket_errors + self.timeouts

    @property
    def hung(self) -> bool:
        """Whether the server was still busy for longer than the timeout after the run."""
        return self.drain_s is not None and self.drain_s > self.timeout

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.hung

    def problems(self) -> str:
        """A short description of what went wrong (empty when nothing did)."""
        parts = [
            f"{count} {label}"
            for count, label in (
                (self.non2xx, "error answers"),
                (self.timeouts, "timeouts"),
                (self.connect_errors, "connect errors"),
                (self.read_errors, "read errors"),
                (self.write_errors, "write errors"),
            )
            if count
        ]
        if self.hung:
            parts.append(f"server still busy {self.drain_s:.0f} s after the run (hung requests)")
        return ", ".join(parts)


#: Default per-request timeout of both generators (wrk's own default): a request without an
#: answer by then counts as a timeout, not as a slow answer.
DEFAULT_TIMEOUT = 2.0


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


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (sorted in place); ``None`` when empty."""
    if not values:
        return None
    values.sort()
    rank = max(0, min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1))
    return values[rank]


async def _python_load(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    connections: int,
    duration: float,
    request_timeout: float,
) -> LoadResult:
    host, port, request = _request_bytes(url, body, headers)
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    counts = {"non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return head

    async def worker() -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < deadline:
            if stream is None:
                try:
                    stream = await asyncio.wait_for(
                        asyncio.open_connection(host, port), request_timeout
                    )
                except (OSError, TimeoutError):
                    counts["connect"] += 1
                    await asyncio.sleep(0.01)
                    continue
            started = time.perf_counter()
            try:
                head = await asyncio.wait_for(exchange(*stream), request_timeout)
            except TimeoutError:
                counts["timeout"] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                counts["read"] += 1
            else:
                latencies.append((time.perf_counter() - started) * 1000)
                if not head.startswith(b"HTTP/1.1 2"):
                    counts["non2xx"] += 1
                continue
            stream[1].close()  # like wrk: a failed or timed-out connection is replaced
            stream = None
        if stream is not None:
            stream[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    top = max(latencies, default=None)
    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        non2xx=counts["non2xx"],
        connect_errors=counts["connect"],
        read_errors=counts["read"],
        write_errors=counts["write"],
        timeouts=counts["timeout"],
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=top,
    )


def _lua_string(value: str) -> str:
    """``value`` as a Lua long-bracket string literal that cannot be closed early."""
    level = 1
    while f"]{'=' * level}]" in value:
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


#: wrk's ``done`` hook writes the figures as one JSON line, so nothing depends on wrk's
#: human-readable units ("1.23ms", "2.1k").
_WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\nCHECKSTACK-WRK {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,"
      .. "\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d,"
      .. "\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
"""


def wrk_script(body: bytes, headers: Mapping[str, str]) -> str:
    """The Lua script: POST ``body`` as JSON with ``headers``, report figures as JSON."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {_lua_string(body.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
        *(f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()),
    ]
    return "\n".join(lines) + "\n" + _WRK_DONE


def _wrk_load(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    connections: int,
    duration: float,
    timeout: float,
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(body, headers))
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                f"--timeout={max(1, round(timeout))}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(script.name)
    found = re.search(r"CHECKSTACK-WRK (\{.*\})", completed.stdout)
    if completed.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    figures = json.loads(found.group(1))
    answered = figures["requests"] > 0
    return LoadResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        non2xx=figures["status"],
        connect_errors=figures["connect"],
        read_errors=figures["read"],
        write_errors=figures["write"],
        timeouts=figures["timeout"],
        p50_ms=figures["p50_us"] / 1000 if answered else None,
        p99_ms=figures["p99_us"] / 1000 if answered else None,
        max_ms=figures["max_us"] / 1000 if answered else None,
    )


def load(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    connections: int = 32,
    duration: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
    settle_url: str | None = None,
    generator: str | None = None,
) -> LoadResult:
    """Send POSTs of ``body`` to ``url`` for ``duration`` seconds over ``connections``.

    A request without an answer after ``timeout`` seconds counts as a timeout; error statuses,
    socket errors and timeouts are all counted in the result. ``settle_url``: afterwards, wait
    until a GET of it answers 200 within a second and record how long that took (``drain_s``),
    so that requests still stuck in the server are seen and do not weigh on the next run.
    """
    generator = generator or ("wrk" if shutil.which("wrk") else "python")
    headers = dict(headers or {})
    if generator == "wrk":
        result = _wrk_load(url, body, headers, connections, duration, timeout)
    else:
        result = asyncio.run(_python_load(url, body, headers, connections, duration, timeout))
    result.timeout = timeout
    if settle_url is not None:
        result.drain_s = settle(settle_url)
    return result


def settle(url: str, *, limit: float = 180.0) -> float:
    """Wait until a GET of ``url`` answers 200 within a second, and (checkstack's ``/readyz``)
    says no call is running or queued; return the seconds waited. Readiness alone is not enough:
    ``/readyz`` does not queue behind the calls it would have to wait for."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            response = httpx.get(url, timeout=1)
            calls = response.json().get("calls") if response.status_code == 200 else None
            if response.status_code == 200 and not (calls and any(calls.values())):
                return time.monotonic() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer promptly again within {limit:.0f} s")


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python asyncio client"


#: An exception line closing a traceback: ``sqlalchemy.exc.TimeoutError: QueuePool limit...``.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.*)")
_ERROR_RECORD = re.compile(r" (?:ERROR|CRITICAL) (?:\[[0-9a-f-]*\] )?(.*)")


def logged_errors(*logs: Path) -> Counter[str]:
    """What servers logged at ERROR and the exceptions of their tracebacks, counted by message
    (timestamps and request ids left out, so that one cause is one line)."""
    found: Counter[str] = Counter()
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            match = _EXCEPTION_LINE.match(line) or _ERROR_RECORD.search(line)
            if match:
                found[" ".join(match.groups())[:160]] += 1
    return found


def print_logged_errors(found: Counter[str], *, limit: int = 6) -> None:
    if not found:
        return
    print(f"\n!!! the servers logged {sum(found.values())} errors and exceptions; most frequent:")
    for message, count in found.most_common(limit):
        print(f"  {count:6d} x {message}")
