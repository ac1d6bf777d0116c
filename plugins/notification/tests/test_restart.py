"""No lost notification: a real ``checkstack serve`` process is killed (SIGKILL) after a trigger
wrote its delivery and before the message got through (the receiver is down); once restarted,
it delivers it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkstack_core.testing.server import RunningServer, free_port

from .conftest import SECRET_KEY
from .signature import verify

pytestmark = pytest.mark.e2e

PASSWORD = "Admin-pass-123"
HOOK_SECRET = "whsec-restart-test-0123456789"
PLUGINS = "auth,catalog,healthcheck,healthcheck-tcp,maintenance,incident,notification"


class ThreadedReceiver:
    """A webhook receiver on a fixed loopback port, in a thread (the test blocks on the server)."""

    def __init__(self, port: int) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def call(url: str, procedure: str, input: Any, headers: dict[str, str], plugin: str) -> Any:
    response = httpx.post(
        f"{url}/api/{plugin}/", json={procedure: input}, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()[procedure]


def wait_for(check: Callable[[], bool], within: float = 60.0) -> None:
    """Poll until ``check`` holds; fail after ``within`` seconds (a deadline, not a timing
    assertion)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within} s")
        time.sleep(0.1)


@pytest.fixture
def server(checkstack_database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    (tmp_path / "checkstack.toml").write_text(
        "[plugins.notification]\n"
        "retry_base_seconds = 1.0\nretry_max_seconds = 2.0\nmax_attempts = 50\n"
        "sweep_seconds = 1.0\nrequest_timeout_seconds = 2.0\n"
    )
    env = {
        "CHECKSTACK_PLUGINS": PLUGINS,
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
    }
    running = RunningServer(checkstack_database_url, tmp_path, env)
    try:
        yield running.start()
    finally:
        running.close()


def test_a_killed_server_delivers_the_pending_notification_after_restart(
    server: RunningServer,
) -> None:
    url = server.url
    onboarding = httpx.post(
        f"{url}/api/auth/",
        json={"completeOnboarding": {"email": "root@example.com", "password": PASSWORD}},
        timeout=10,
    )
    assert onboarding.status_code == 200, onboarding.text
    admin = {"Cookie": f"checkstack_session={onboarding.cookies['checkstack_session']}"}

    port = free_port()  # nothing listens here yet: the receiver is down
    system = call(url, "createSystem", {"name": "Billing"}, admin, "catalog")
    channel = call(
        url,
        "createChannel",
        {
            "name": "Hook",
            "kind": "webhook",
            "config": {"url": f"http://127.0.0.1:{port}/hook", "secret": HOOK_SECRET},
        },
        admin,
        "notification",
    )
    call(url, "subscribe", {"systemId": system["id"]}, admin, "notification")
    call(url, "setMyChannels", {"channelIds": [channel["id"]]}, admin, "notification")
    call(
        url,
        "createIncident",
        {"title": "Database down", "severity": "critical", "systemIds": [system["id"]]},
        admin,
        "incident",
    )

    def deliveries() -> list[dict[str, Any]]:
        return list(call(url, "getDeliveries", {}, admin, "notification")["deliveries"])

    # The trigger committed its delivery, and an attempt failed against the dead receiver.
    wait_for(lambda: any(d["attempts"] >= 1 for d in deliveries()))
    [pending] = deliveries()
    assert pending["status"] == "pending" and pending["lastError"]

    assert server.process is not None
    server.process.kill()  # SIGKILL: no shutdown callbacks, in-memory jobs are gone
    server.process.wait()
    server.process = None

    receiver = ThreadedReceiver(port)
    try:
        server.start()
        wait_for(lambda: deliveries()[0]["status"] == "delivered")
        [delivered] = deliveries()
        assert delivered["id"] == pending["id"] and delivered["attempts"] > pending["attempts"]
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert verify(HOOK_SECRET, headers, body)
        assert json.loads(body)["title"] == "Incident reported: Database down"
        assert HOOK_SECRET not in server.logs()
    finally:
        receiver.close()
