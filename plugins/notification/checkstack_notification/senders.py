"""Sending one message: to an Apprise URL, or as a signed webhook.

A webhook is a ``POST`` of a JSON body with

- ``X-Checkstack-Timestamp``: Unix seconds when it was sent;
- ``X-Checkstack-Signature``: ``sha256=<hex HMAC-SHA-256 of "<timestamp>.<body>" with the
  channel's secret>``;
- ``X-Checkstack-Delivery`` (the delivery id, the same on every retry: receivers de-duplicate on
  it) and ``X-Checkstack-Event``.

A receiver recomputes the signature over the raw body and rejects old timestamps, so a captured
request cannot be replayed later (docs/notifications.md has the verification code).

Errors are reported as short texts that never contain a secret: the Apprise URL (credentials)
and the webhook's secret are replaced before anything is stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx  # imported by the first delivery: a server start does not pay for it

SIGNATURE_HEADER = "X-Checkstack-Signature"
TIMESTAMP_HEADER = "X-Checkstack-Timestamp"
DELIVERY_HEADER = "X-Checkstack-Delivery"
EVENT_HEADER = "X-Checkstack-Event"
#: Headers a channel or integration may not set itself (they carry the signature).
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        DELIVERY_HEADER,
        EVENT_HEADER,
        "content-type",
        "content-length",
        "host",
    )
)
MAX_ERROR = 500


class SendError(Exception):
    """A message could not be delivered; the text is safe to store and show."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What one attempt sends: a title and body (Apprise) or the JSON body (webhooks)."""

    delivery_id: str
    event: str
    title: str
    body: str
    importance: str
    json_body: bytes


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA-256 with ``secret`` over ``b"<timestamp>." + body``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    text = " ".join(text.split())
    return text[:MAX_ERROR]


def _url_secrets(url: str) -> list[str]:
    """The URL and the parts of it that may be credentials (user, password, path, query)."""
    parts = urlsplit(url)
    found = [url, parts.netloc, parts.path.strip("/"), parts.query]
    if parts.password:
        found.append(parts.password)
    # Longest first, so a part inside a longer one is replaced as a whole.
    return sorted({p for p in found if p and len(p) >= 4}, key=len, reverse=True)


async def send_webhook(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    headers: dict[str, str],
    outgoing: Outgoing,
) -> None:
    """POST ``outgoing.json_body`` signed with ``secret``; ``SendError`` unless 2xx."""
    import httpx

    timestamp = int(time.time())
    sent = {
        **{k: v for k, v in headers.items() if k.lower() not in RESERVED_HEADERS},
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, outgoing.json_body),
        DELIVERY_HEADER: outgoing.delivery_id,
        EVENT_HEADER: outgoing.event,
    }
    try:
        response = await client.post(url, content=outgoing.json_body, headers=sent)
    except httpx.TimeoutException:
        raise SendError("Timed out") from None
    except httpx.HTTPError as exc:
        reason = _scrub(str(exc) or type(exc).__name__, [secret, *_url_secrets(url)])
        raise SendError(f"{type(exc).__name__}: {reason}") from None
    if not 200 <= response.status_code < 300:
        raise SendError(f"HTTP {response.status_code}")


def check_apprise_url(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (``None``: it can). Never echoes the URL."""
    import apprise

    try:
        instance = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # an Apprise plugin may raise on odd input despite suppress_exceptions
        instance = None
    if instance is None:
        return "Not a URL any Apprise service accepts (see https://appriseit.com/services/)"
    return None


_NOTIFY_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}


async def send_apprise(url: str, outgoing: Outgoing, timeout: float) -> None:  # noqa: ASYNC109
    """Notify through Apprise; ``SendError`` with Apprise's own (scrubbed) reason on failure."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise SendError("Not a URL any Apprise service accepts")
    # Apprise reports why a notification failed only through its logger: capture it per call.
    with apprise.LogCapture(level=logging.WARNING) as captured:
        try:
            async with asyncio.timeout(timeout):
                ok = await notifier.async_notify(
                    body=outgoing.body or outgoing.title,
                    title=outgoing.title,
                    notify_type=_NOTIFY_TYPES.get(outgoing.importance, "info"),
                )
        except TimeoutError:
            raise SendError("Timed out") from None
        log = captured.getvalue() if hasattr(captured, "getvalue") else ""
    if not ok:
        lines = [line.split(" - ", 2)[-1] for line in str(log).splitlines() if line.strip()]
        reason = _scrub("; ".join(lines[-3:]) or "Apprise reported a failure", _url_secrets(url))
        raise SendError(reason)


def message_json(**fields: Any) -> bytes:
    """The JSON body of a webhook (compact, keys in the order given)."""
    import msgspec

    return msgspec.json.encode(fields)
