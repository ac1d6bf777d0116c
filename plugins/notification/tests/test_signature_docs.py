"""The verification snippets of docs/notifications.md, run against a real signed delivery: the
Python one (loaded from the page by ``signature.py``) and the JavaScript one under Node.js."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import webhook_channel
from .signature import DOC, verify

SECRET = "whsec-documented-0123456789"


async def signed_request(admin: Any, receiver: Any) -> Any:
    channel = await webhook_channel(admin, receiver.url, SECRET)
    assert (await admin.call("notification", "testChannel", {"id": channel["id"]}))["ok"]
    return receiver.requests[-1]


async def test_the_python_snippet_accepts_a_delivery_and_refuses_forgeries(
    admin: Any, receiver: Any
) -> None:
    request = await signed_request(admin, receiver)
    assert verify(SECRET, request.headers, request.body)
    tampered = request.body.replace(b"test", b"TEST")
    assert not verify(SECRET, request.headers, tampered)
    old = {
        **request.headers,
        "x-checkstack-timestamp": str(int(request.headers["x-checkstack-timestamp"]) - 3600),
    }
    assert not verify(SECRET, old, request.body)  # a replay an hour later
    assert not verify(SECRET, {**request.headers, "x-checkstack-timestamp": "soon"}, request.body)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_the_javascript_snippet_accepts_a_delivery_and_refuses_forgeries(
    admin: Any, receiver: Any, tmp_path: Path
) -> None:
    match = re.search(
        r"<!-- verify-javascript -->\s*```javascript\n(.*?)```", DOC.read_text(), re.S
    )
    assert match, "docs/notifications.md lost its JavaScript verification snippet"
    (tmp_path / "verify.js").write_text(match.group(1))
    request = await signed_request(admin, receiver)
    cases = {
        "genuine": (request.headers["x-checkstack-timestamp"], request.body.decode()),
        "tampered": (request.headers["x-checkstack-timestamp"], request.body.decode() + " "),
        "replayed": (
            str(int(request.headers["x-checkstack-timestamp"]) - 3600),
            request.body.decode(),
        ),
    }
    script = (
        "const { verifySignature } = require('./verify.js');\n"
        f"const cases = {json.dumps(cases)};\n"
        f"const out = {{}}; for (const [k, [ts, body]] of Object.entries(cases)) "
        f"out[k] = verifySignature({json.dumps(SECRET)}, ts, "
        f"{json.dumps(request.headers['x-checkstack-signature'])}, Buffer.from(body));\n"
        "console.log(JSON.stringify(out));\n"
    )
    (tmp_path / "run.js").write_text(script)
    node = await asyncio.create_subprocess_exec(
        "node", "run.js", cwd=tmp_path, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await node.communicate()
    assert json.loads(out) == {"genuine": True, "tampered": False, "replayed": False}
