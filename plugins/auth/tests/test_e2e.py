"""End to end against real ``checkstack serve`` processes: the documented API-key flow, revocation
across processes on one PostgreSQL database, and no secret in any log line."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from checkstack_auth.tokens import Digester
from sqlalchemy.engine import make_url

from checkstack_core.client import CheckstackClient
from checkstack_core.errors import Forbidden, Unauthorized
from checkstack_core.testing.server import RunningServer

pytestmark = pytest.mark.e2e

SECRET_KEY = "e2e-server-key-not-for-production"
PASSWORD = "Admin-pass-123"


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_PLUGINS": "auth,hello",
        "CHECKSTACK_LOG_LEVEL": "DEBUG",
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
    }


def call(
    url: str, plugin: str, procedure: str, input: Any = None, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{url}/api/{plugin}/", json={procedure: input or {}}, headers=headers, timeout=10
    )


def onboard(url: str) -> tuple[str, dict[str, str]]:
    response = call(
        url, "auth", "completeOnboarding", {"email": "root@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    session = response.cookies["checkstack_session"]
    return session, {"Cookie": f"checkstack_session={session}"}


def test_documented_flow_and_no_secret_in_logs(checkstack_server):
    url = checkstack_server.url
    session, admin = onboard(url)
    created = call(
        url, "auth", "createApplication", {"name": "ci", "description": "pipeline"}, **admin
    )
    token = created.json()["createApplication"]["token"]
    app_id = token.split("_", 2)[1]
    secrets_seen = [token, token.split("_", 2)[2], session, session.split("_", 2)[2], PASSWORD]

    with CheckstackClient(url, token) as client:
        assert client.call("hello", "getGreeting", {"name": "CI"}) == {"message": "Hello, CI!"}
        with pytest.raises(Forbidden, match=r"Missing access: hello\.hello\.manage"):
            client.call("hello", "setGreeting", {"template": "Hi {name}"})
        role = call(
            url,
            "auth",
            "createRole",
            {"name": "greeters", "rules": ["hello.hello.read", "hello.hello.manage"]},
            **admin,
        ).json()["createRole"]
        call(
            url,
            "auth",
            "updateApplication",
            {"id": app_id, "roles": ["applications", role["id"]]},
            **admin,
        )
        assert client.call("hello", "setGreeting", {"template": "Hi {name}"}) == {
            "template": "Hi {name}"
        }

    bearer = {"Authorization": f"Bearer {token}"}
    assert call(url, "hello", "getGreeting", **bearer).json() == {
        "getGreeting": {"message": "Hi world"}
    }
    wrong_secret = token[:-1] + ("a" if token[-1] != "a" else "b")
    unknown = f"ck_00000000-0000-4000-8000-000000000000_{token.split('_', 2)[2]}"
    for bad in ("garbage", wrong_secret, unknown):
        for procedure in ("getGreeting", "setGreeting"):
            response = call(url, "hello", procedure, {}, Authorization=f"Bearer {bad}")
            assert response.status_code == 401
            assert response.json() == {"code": "UNAUTHORIZED", "message": "Invalid API key"}

    listed = call(url, "auth", "getApplications", **admin).text
    regenerated = call(url, "auth", "regenerateApplicationSecret", {"id": app_id}, **admin)
    new_token = regenerated.json()["regenerateApplicationSecret"]["token"]
    secrets_seen += [new_token, new_token.split("_", 2)[2]]
    assert call(url, "hello", "getGreeting", **bearer).status_code == 401
    new_bearer = {"Authorization": f"Bearer {new_token}"}
    assert call(url, "hello", "getGreeting", **new_bearer).status_code == 200
    # Expiry: a past expiresAt refuses the key; lifting it admits the same key again, so the
    # 401 was the expiry's doing.
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = call(url, "auth", "updateApplication", {"id": app_id, "expiresAt": past}, **admin)
    assert expired.status_code == 200, expired.text
    refused = call(url, "hello", "getGreeting", **new_bearer)
    assert refused.status_code == 401
    assert refused.json() == {"code": "UNAUTHORIZED", "message": "Invalid API key"}
    lifted = call(url, "auth", "updateApplication", {"id": app_id, "expiresAt": None}, **admin)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["updateApplication"]["expiresAt"] is None
    assert call(url, "hello", "getGreeting", **new_bearer).status_code == 200
    # Deletion: a live, unexpired key is refused from the next request on.
    deleted = call(url, "auth", "deleteApplication", {"id": app_id}, **admin)
    assert deleted.status_code == 200, deleted.text
    gone = call(url, "hello", "getGreeting", **new_bearer)
    assert gone.status_code == 401
    assert gone.json() == {"code": "UNAUTHORIZED", "message": "Invalid API key"}
    # A failing request must not leak either (a bad key, a malformed body).
    call(url, "hello", "setGreeting", {"template": token}, **new_bearer)
    httpx.post(f"{url}/api/hello/", content=b"{" + token.encode(), headers=new_bearer)

    digester = Digester(SECRET_KEY)
    for secret in list(secrets_seen):
        secrets_seen.append(digester.digest(secret).split("$", 1)[1])
        secrets_seen.append(hashlib.sha256(secret.encode()).hexdigest())
    assert not any(s in listed for s in secrets_seen)
    logs = checkstack_server.logs()
    assert "DEBUG" in logs  # the strictest level was really on
    for secret in secrets_seen:
        assert secret not in logs
    assert "$argon2" not in logs and "hmac-sha256$" not in logs


@pytest.fixture
def postgresql_only(checkstack_database_base_url: str | None) -> None:
    if not checkstack_database_base_url or (
        make_url(checkstack_database_base_url).get_backend_name() != "postgresql"
    ):
        pytest.skip(
            "two processes share a database only on PostgreSQL "
            "(set CHECKSTACK_TEST_DATABASE_URL); SQLite is one machine's file"
        )


def test_a_key_deleted_through_one_process_fails_on_the_other(
    postgresql_only, checkstack_server, checkstack_database_url, checkstack_server_env, tmp_path
):
    first = checkstack_server
    second = RunningServer(checkstack_database_url, tmp_path, checkstack_server_env).start()
    try:
        _, admin = onboard(first.url)
        created = call(first.url, "auth", "createApplication", {"name": "ci"}, **admin)
        token = created.json()["createApplication"]["token"]
        app_id = token.split("_", 2)[1]
        bearer = {"Authorization": f"Bearer {token}"}
        assert call(second.url, "hello", "getGreeting", **bearer).status_code == 200

        regenerated = call(
            second.url, "auth", "regenerateApplicationSecret", {"id": app_id}, **admin
        )
        assert call(first.url, "hello", "getGreeting", **bearer).status_code == 401
        token = regenerated.json()["regenerateApplicationSecret"]["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert call(first.url, "hello", "getGreeting", **bearer).status_code == 200
        assert call(second.url, "hello", "getGreeting", **bearer).status_code == 200

        deleted = call(first.url, "auth", "deleteApplication", {"id": app_id}, **admin)
        assert deleted.status_code == 200
        rejected = call(second.url, "hello", "getGreeting", **bearer)
        assert rejected.status_code == 401
        assert rejected.json()["message"] == "Invalid API key"
        with CheckstackClient(second.url, token) as client, pytest.raises(Unauthorized):
            client.call("hello", "getGreeting")
    finally:
        second.close()
