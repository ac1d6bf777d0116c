"""The hostile-input, CSRF and log findings of issue 9 replayed against a real ``checkstack serve``
(every installed plugin, SQLite or the PostgreSQL of ``CHECKSTACK_TEST_DATABASE_URL``): each is
refused in the documented error shape, never a 500, and the server's log at DEBUG holds no
traceback, secret, digest or forged line afterwards."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "Hostile-pass-123"
EVIL = {"origin": "https://evil.example"}
JSON = {"content-type": "application/json"}
BUFFERED = {"x-orpc-batch": "buffered", **JSON}
TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9])c[ks]_[0-9A-Za-z-]{8,}_")


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_LOG_LEVEL": "DEBUG",
        "CHECKSTACK_SECRET_KEY": "hostile-test-key-not-for-production",
    }


class Attacker:
    """Sends raw requests to the server and checks every answer's shape."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=15)

    def documented(
        self, plugin: str, body: bytes | Any, status: int, code: str, **headers: str
    ) -> dict[str, Any]:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.http.post(f"/api/{plugin}/", content=content, headers=headers)
        assert response.status_code == status, response.text
        error = response.json()
        assert error["code"] == code and error["message"], error
        return error

    def orpc(
        self, method: str, path: str, status: int, code: str, **options: Any
    ) -> dict[str, Any]:
        response = self.http.request(method, path, **options)
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"json", "meta"}, body
        assert body["json"]["code"] == code and body["json"]["status"] == status, body
        return body["json"]

    def batch_items(self, items: list[Any], **headers: str) -> list[dict[str, Any]]:
        response = self.http.post(
            "/api/hello/getGreeting/__batch__", json=items, headers={**BUFFERED, **headers}
        )
        assert response.status_code == 207, response.text
        results: list[dict[str, Any]] = response.json()
        assert all(r["status"] < 500 for r in results), results
        return results


@pytest.fixture
def attacker(checkstack_server: Any) -> Iterator[Attacker]:
    attacker = Attacker(checkstack_server.url)
    yield attacker
    attacker.http.close()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_issue_9_findings_are_refused_without_trace(checkstack_server, attacker) -> None:
    url = checkstack_server.url
    item_url = f"{url}/api"

    # An administrator's session (the cookie a CSRF would ride on) and an API key.
    onboarding = attacker.http.post(
        "/api/auth/",
        json={"completeOnboarding": {"email": "root@example.com", "password": PASSWORD}},
    )
    assert onboarding.status_code == 200, onboarding.text
    session = onboarding.cookies["checkstack_session"]
    cookie = {"cookie": f"checkstack_session={session}"}
    attacker.http.cookies.clear()  # every request below says which credential it carries
    created = attacker.http.post(
        "/api/auth/", json={"createApplication": {"name": "ci", "roles": ["admin"]}}, headers=cookie
    )
    assert created.status_code == 200, created.text
    token = created.json()["createApplication"]["token"]
    key = {"authorization": f"Bearer {token}"}

    # Finding 3, CSRF: no content type, or a cross-site origin, with the session cookie.
    new_system = {"createSystem": {"name": "forged"}}
    attacker.documented("catalog", new_system, 415, "UNSUPPORTED_MEDIA_TYPE", **cookie, **EVIL)
    attacker.documented("catalog", new_system, 403, "FORBIDDEN", **cookie, **EVIL, **JSON)
    attacker.documented(
        "catalog",
        new_system,
        403,
        "FORBIDDEN",
        **cookie,
        **JSON,
        **{"sec-fetch-site": "cross-site"},
    )
    envelope = json.dumps({"json": {"name": "forged"}})
    attacker.orpc(
        "POST",
        "/api/catalog/createSystem",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content=envelope,
        headers={**cookie, **EVIL},
    )
    attacker.orpc(
        "POST",
        "/api/catalog/createSystem",
        403,
        "FORBIDDEN",
        content=envelope,
        headers={**cookie, **EVIL, **JSON},
    )
    attacker.orpc(
        "POST",
        "/api/catalog/createSystem/__batch__",
        403,
        "FORBIDDEN",
        json=[{"url": f"{item_url}/catalog/createSystem", "body": {"json": {"name": "forged"}}}],
        headers={**cookie, **EVIL, **BUFFERED},
    )
    attacker.orpc(
        "GET",
        f"/api/catalog/createSystem?data={quote(envelope)}",
        405,
        "METHOD_NOT_SUPPORTED",
        headers=cookie,
    )
    systems = attacker.http.post("/api/catalog/", json={"getSystems": {}}, headers=key)
    assert systems.json()["getSystems"]["systems"] == []
    # The same origin with the cookie, and the API key from anywhere, still work.
    same_origin = {**cookie, **JSON, "origin": url}
    own = attacker.http.post("/api/catalog/", json={"getSystems": {}}, headers=same_origin)
    assert own.status_code == 200, own.text

    # Finding 4: metadata nested deeply is refused, so reads keep working for everyone.
    deep_metadata = {"createSystem": {"name": "deep", "metadata": {"a": json.loads(nested(40))}}}
    attacker.documented("catalog", deep_metadata, 400, "BAD_REQUEST", **key)
    too_deep = (
        b'{"createSystem": {"name": "deep", "metadata": {"a": ' + nested(950).encode() + b"}}}"
    )
    attacker.documented("catalog", too_deep, 400, "BAD_REQUEST", **key)
    read = attacker.http.post("/api/catalog/getSystems", json={}, headers=key)
    assert read.status_code == 200, read.text

    # Finding 5 (part): cookie setters are refused inside batches, so no token in a JSON body.
    login = {"email": "root@example.com", "password": PASSWORD}
    attacker.orpc(
        "POST",
        "/api/hello/getGreeting/__batch__",
        400,
        "BAD_REQUEST",
        json=[{"url": f"{item_url}/auth/login", "body": {"json": login}}] * 3,
        headers=BUFFERED,
    )

    # Finding 6: hostile bodies on every decoding path, before authentication.
    for body in (nested(1000).encode(), b'{"getGreeting": {"name": "\xff"}}'):
        attacker.documented("hello", body, 400, "BAD_REQUEST", **JSON)
        attacker.orpc(
            "POST", "/api/hello/getGreeting", 400, "BAD_REQUEST", content=body, headers=JSON
        )
        attacker.orpc(
            "POST",
            "/api/hello/getGreeting/__batch__",
            400,
            "BAD_REQUEST",
            content=body,
            headers=BUFFERED,
        )
    attacker.orpc("GET", f"/api/hello/getGreeting?data={quote(nested(1000))}", 400, "BAD_REQUEST")
    attacker.orpc(
        "GET", "/api/hello/getGreeting?data=%7B%22json%22%3A%22%FF%22%7D", 400, "BAD_REQUEST"
    )
    overflow = "0001-01-01T00:00:00+05:00"
    attacker.documented(
        "auth",
        {"createApplication": {"name": "x", "expiresAt": overflow}},
        400,
        "BAD_REQUEST",
        **key,
    )
    attacker.orpc(
        "POST",
        "/api/auth/createApplication",
        400,
        "BAD_REQUEST",
        json={"json": {"name": "x", "expiresAt": overflow}, "meta": [[1, "expiresAt"]]},
        headers=key,
    )
    window = {
        "title": "w",
        "startAt": overflow,
        "endAt": "2030-01-01T00:00:00Z",
        "systemIds": ["x"],
    }
    attacker.documented("maintenance", {"scheduleWindow": window}, 400, "BAD_REQUEST", **key)
    attacker.orpc(
        "POST",
        "/api/catalog/createSystem",
        400,
        "BAD_REQUEST",
        json={"json": {"name": "m", "metadata": [[None, 1]]}, "meta": [[7, "metadata"]]},
        headers=key,
    )
    results = attacker.batch_items(
        [
            {"url": f"{item_url}/hello/getGreeting?data={quote(nested(1000))}", "method": "GET"},
            {
                "url": f"{item_url}/auth/createApplication",
                "body": {"json": {"name": "x", "expiresAt": overflow}},
                "headers": key,
            },
        ]
    )
    assert [r["status"] for r in results] == [400, 400]

    # Finding 7: a NUL in a batch item header; a line feed in a path.
    attacker.orpc(
        "POST",
        "/api/hello/getGreeting/__batch__",
        400,
        "BAD_REQUEST",
        json=[
            {
                "url": f"{item_url}/auth/getCurrentUser",
                "headers": {"user-agent": "evil\u0000agent", **cookie},
            }
        ],
        headers=BUFFERED,
    )
    forged = "%0A2026-01-01%2000:00:00,000%20ERROR%20[-]%20FORGED"
    for path in (
        f"/api/hello{forged}/",
        f"/api/hello/getGreeting{forged}",
        f"/api{forged}/x/__batch__",
    ):
        response = attacker.http.post(path, json={}, headers={**cookie, **JSON})
        assert response.status_code < 500, response.text

    # Finding 8 (part): two Authorization headers, two session cookies.
    for headers in (
        [("authorization", f"Bearer {token}"), ("authorization", "Bearer ck_x_y"), *JSON.items()],
        [
            ("cookie", f"checkstack_session={session}"),
            ("cookie", "checkstack_session=cs_x_y"),
            *JSON.items(),
        ],
    ):
        response = attacker.http.post("/api/hello/", json={"getGreeting": {}}, headers=headers)
        assert response.status_code == 400 and response.json()["code"] == "BAD_REQUEST"
        response = attacker.http.post("/api/hello/getGreeting", json={}, headers=headers)
        assert response.status_code == 400 and response.json()["json"]["code"] == "BAD_REQUEST"

    # The log: no traceback, secret, digest or forged line.
    logs = checkstack_server.logs()
    assert "Traceback" not in logs
    for needle in (session, token, PASSWORD, "hmac-sha256$", "sha256$"):
        assert needle not in logs, needle
    # Token-shaped text (``ck_<id>_...``, ``cs_<id>_...``), not any word ending in "ck_".
    assert TOKEN_SHAPE.search(logs) is None, TOKEN_SHAPE.search(logs)
    assert not any(
        line.startswith("2026-01-01") or "FORGED" in line.split(":", 1)[0]
        for line in logs.splitlines()
    )
