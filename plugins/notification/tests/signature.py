"""The Python verification snippet of docs/notifications.md, loaded from the page itself, so the
tests check the code readers copy against real deliveries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"


def _snippet() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- verify-python -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/notifications.md lost its Python verification snippet"
    return match.group(1)


_namespace: dict[str, Any] = {}
exec(compile(_snippet(), str(DOC), "exec"), _namespace)
verify_signature = _namespace["verify_signature"]


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """The snippet applied to a request as the test receiver recorded it (lower-case headers)."""
    return bool(
        verify_signature(
            secret,
            headers.get("x-checkstack-timestamp", ""),
            headers.get("x-checkstack-signature", ""),
            body,
        )
    )
