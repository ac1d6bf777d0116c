"""A real ``checkstack serve`` process for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    """A server process on loopback; ``url`` is its base URL, ``logs()`` what it wrote."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        *,
        startup_timeout: float = 30.0,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The process to run; override to serve something else on ``self.port``."""
        return [sys.executable, "-m", "checkstack_core", "serve", "--port", str(self.port)]

    def start(self) -> RunningServer:
        """Start the process and wait until ``/readyz`` answers 200."""
        env = {**os.environ, "CHECKSTACK_DATABASE_URL": self.database_url, **self.extra_env}
        env.pop("CHECKSTACK_CONFIG", None)
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the child's lifetime)
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Server exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Server not ready after {self.startup_timeout} s:\n{self.logs()}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def logs(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
