"""A real ``checkstack serve`` process for end-to-end tests.

The port is never released between choosing it and serving on it: :class:`RunningServer` binds a
loopback socket on port 0 itself and hands the bound socket to the child (``uvicorn --fd``), so
another process (another test, another user of the machine) cannot take the port in between and
answer our readiness probe. The socket stays with the :class:`RunningServer` across
``stop()``/``start()``, so a restarted server keeps its URL.

Run as ``python -m checkstack_core.testing.server --fd N [serve options]``: the real ``checkstack
serve`` command, serving on the inherited socket ``N`` instead of binding ``--host``/``--port``.

Readiness waits up to ``startup_timeout`` seconds: the argument, else
``CHECKSTACK_TEST_SERVER_TIMEOUT``, else :data:`DEFAULT_STARTUP_TIMEOUT` (generous: a loaded
2-core machine can take half a minute to import and migrate).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

#: Seconds to wait for ``/readyz`` when neither the caller nor the environment says.
DEFAULT_STARTUP_TIMEOUT = 60.0
#: Environment variable overriding :data:`DEFAULT_STARTUP_TIMEOUT` (seconds).
TIMEOUT_ENV = "CHECKSTACK_TEST_SERVER_TIMEOUT"
#: How often a server whose own command binds ``self.port`` is restarted on a lost port race.
BIND_ATTEMPTS = 5


def startup_timeout_from_env(default: float = DEFAULT_STARTUP_TIMEOUT) -> float:
    """The readiness timeout ``CHECKSTACK_TEST_SERVER_TIMEOUT`` asks for, or ``default``."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be positive, got {raw!r}")
    return value


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now (racy: prefer :class:`RunningServer`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bound_socket() -> socket.socket:
    # No SO_REUSEADDR: on Linux another socket may share a bound (not yet listening) address
    # only when both set it, so without it nobody else can bind this port while we hold it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


class ServerNotReady(RuntimeError):
    """The server process exited or did not answer ``/readyz`` in time (its logs attached)."""


class RunningServer:
    """A server process on loopback; ``url`` is its base URL, ``logs()`` what it wrote.

    Subclasses may override :meth:`command` to serve another process on ``self.port``. Such a
    command binds the port itself, so the socket is released just before it starts: a lost race
    (the process exits saying the address is in use) is retried on a fresh port, up to
    :data:`BIND_ATTEMPTS` times. Prefer :meth:`serve_command` (an inherited socket, no race).
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        *,
        startup_timeout: float | None = None,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.startup_timeout = (
            startup_timeout if startup_timeout is not None else startup_timeout_from_env()
        )
        if not self.startup_timeout > 0:
            raise ValueError(f"startup_timeout must be positive, got {self.startup_timeout!r}")
        self._socket: socket.socket | None = None
        self._bind()
        self.process: subprocess.Popen[bytes] | None = None

    def _bind(self) -> None:
        self._socket = _bound_socket()
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / f"server-{self.port}.log"

    @property
    def inherits_socket(self) -> bool:
        """Whether :meth:`command` serves on the socket this object holds (no port race)."""
        return type(self).command is RunningServer.command

    def serve_command(self, fd: int, *args: str) -> list[str]:
        """``checkstack serve`` on the inherited socket ``fd`` (extra serve options: ``args``)."""
        return [sys.executable, "-m", "checkstack_core.testing.server", "--fd", str(fd), *args]

    def command(self) -> list[str]:
        """The process to run; override to serve something else on ``self.port``."""
        assert self._socket is not None
        return self.serve_command(self._socket.fileno())

    def start(self) -> RunningServer:
        """Start the process and wait until ``/readyz`` answers 200 (``ServerNotReady`` if not)."""
        if self.process is not None:
            raise RuntimeError("The server is already running: stop() it first")
        if self._socket is None:
            self._bind()
        if self.inherits_socket:
            self._spawn()
            return self._wait()
        for attempt in range(1, BIND_ATTEMPTS + 1):
            assert self._socket is not None
            self._socket.close()  # the command binds self.port itself
            self._socket = None
            self._spawn()
            try:
                return self._wait()
            except ServerNotReady:
                if attempt == BIND_ATTEMPTS or not self._lost_port_race():
                    raise
                self._bind()
        raise AssertionError("unreachable")  # pragma: no cover

    def _lost_port_race(self) -> bool:
        logs = self.logs().lower()
        return "address already in use" in logs or "errno 98" in logs

    def _spawn(self) -> None:
        env = {**os.environ, "CHECKSTACK_DATABASE_URL": self.database_url, **self.extra_env}
        env.pop("CHECKSTACK_CONFIG", None)
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the child's lifetime)
        try:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(self._socket.fileno(),) if self._socket is not None else (),
            )
        finally:
            log.close()

    def _wait(self) -> RunningServer:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ServerNotReady(f"Server exited with {code}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerNotReady(
            f"Server not ready after {self.startup_timeout} s (set {TIMEOUT_ENV} to wait "
            f"longer):\n{self.logs()}"
        )

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s); the port stays reserved."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the process and release the port."""
        self.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        sock = getattr(self, "_socket", None)
        if sock is not None:
            sock.close()

    def logs(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _serve_on_fd(argv: Sequence[str]) -> None:
    """Run ``checkstack serve`` with uvicorn serving on an inherited socket.

    The real command runs unchanged (settings, logging, app factory, uvicorn options); only the
    socket differs, so the end-to-end tests test what deployers run.
    """
    import uvicorn

    args = list(argv)
    if len(args) < 2 or args[0] != "--fd" or not args[1].isdigit():
        raise SystemExit("usage: python -m checkstack_core.testing.server --fd N [serve options]")
    fd = int(args[1])
    run = uvicorn.run

    def run_on_fd(app: Any, **options: Any) -> None:
        options.pop("host", None)
        options.pop("port", None)
        run(app, fd=fd, **options)

    uvicorn.run = run_on_fd
    from ..cli import main

    sys.argv = ["checkstack", "serve", *args[2:]]
    main()


if __name__ == "__main__":
    _serve_on_fd(sys.argv[1:])
