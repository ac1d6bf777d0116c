"""API keys and session tokens: generation, parsing and digests.

Both are ``<prefix>_<uuid>_<secret>``: ``ck_`` for API keys (external applications, SPEC §5.2) and
``cs_`` for the session cookie. The id finds the row by primary key; the secret is 43 characters
of ``[A-Za-z0-9]`` drawn with :mod:`secrets` (about 256 bits), so it cannot be guessed and needs
no slow password hash: the row stores only its digest, compared in constant time.

The digest is HMAC-SHA-256 keyed with ``CHECKSTACK_SECRET_KEY`` when that is set (a stolen
database then cannot even be used to test guesses offline), otherwise plain SHA-256. The stored
value names its scheme (``hmac-sha256$...`` or ``sha256$...``), so keys created before a secret key
was configured keep working; changing the secret key invalidates every HMAC digest made with the
old one (regenerate the keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import uuid
from dataclasses import dataclass

API_KEY_PREFIX = "ck"
SESSION_PREFIX = "cs"
SECRET_LENGTH = 43
_ALPHABET = string.ascii_letters + string.digits
_SECRET = re.compile(r"^[A-Za-z0-9]{32,128}$")


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A syntactically valid token: which row it names and the secret to check against it."""

    id: str
    secret: str = ""

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"ParsedToken(id={self.id!r})"


def new_id() -> str:
    """A fresh row id (a UUID in canonical form)."""
    return str(uuid.uuid4())


def new_secret() -> str:
    """A random secret of :data:`SECRET_LENGTH` characters from ``[A-Za-z0-9]`` (unbiased)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


def format_token(prefix: str, row_id: str, secret: str) -> str:
    return f"{prefix}_{row_id}_{secret}"


def parse_token(token: str, prefix: str) -> ParsedToken | None:
    """Split ``<prefix>_<uuid>_<secret>``; ``None`` when it is not one (never raises)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != prefix:
        return None
    raw_id, secret = parts[1], parts[2]
    if len(raw_id) != 36 or not _SECRET.match(secret):
        return None
    try:
        canonical = str(uuid.UUID(raw_id))
    except ValueError:
        return None
    if canonical != raw_id.lower():
        return None
    return ParsedToken(canonical, secret)


class Digester:
    """Digests secrets with the server key as pepper when there is one (see module docs)."""

    def __init__(self, secret_key: str | None) -> None:
        self._key = secret_key.encode() if secret_key else None

    def digest(self, secret: str) -> str:
        """The value to store for ``secret``."""
        if self._key is not None:
            mac = hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()
            return f"hmac-sha256${mac}"
        return f"sha256${hashlib.sha256(secret.encode()).hexdigest()}"

    def verify(self, secret: str, stored: str) -> bool:
        """Whether ``secret`` matches the ``stored`` digest, in constant time."""
        scheme, _, _ = stored.partition("$")
        if scheme == "hmac-sha256":
            if self._key is None:
                return False
            expected = self.digest(secret)
        elif scheme == "sha256":
            expected = f"sha256${hashlib.sha256(secret.encode()).hexdigest()}"
        else:
            return False
        return hmac.compare_digest(expected.encode(), stored.encode())
