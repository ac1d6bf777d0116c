"""Users' passwords: the policy and argon2id hashing through passlib's API (``libpass``).

Hashing runs in a worker thread so a login never blocks the event loop. The parameters follow
OWASP's argon2id baseline (19 MiB, 2 iterations, 1 lane); hashes made with other parameters are
upgraded on the next successful login (``verify_and_update``).
"""

from __future__ import annotations

import asyncio
import functools
import re

from passlib.context import CryptContext

from checkstack_core.errors import validation_error

MIN_LENGTH = 8
MAX_LENGTH = 256

_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__rounds=2,
    argon2__parallelism=1,
)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a login takes as long either way."""
    return _context.hash("not a real password, only here to spend the same time")


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Every way ``password`` fails the policy, as messages (empty when it passes)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"Password must be at most {MAX_LENGTH} characters")
    if not any(c.isupper() for c in password):
        problems.append("Password must contain at least one uppercase letter")
    if not any(c.islower() for c in password):
        problems.append("Password must contain at least one lowercase letter")
    if not any(c.isdigit() for c in password):
        problems.append("Password must contain at least one number")
    if email and password.strip().lower() == email.strip().lower():
        problems.append("Password must not be the email address")
    return problems


def check_password(password: str, *, email: str | None = None, field: str = "password") -> None:
    """Raise BAD_REQUEST ``Input validation failed`` listing every policy problem."""
    problems = password_problems(password, email=email)
    if problems:
        raise validation_error([{"message": m, "path": [field]} for m in problems])


def normalize_email(email: str) -> str:
    """Lower-cased and trimmed; BAD_REQUEST when it is not an email address."""
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 254:
        raise validation_error([{"message": "Enter a valid email address", "path": ["email"]}])
    return value


async def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (in a worker thread)."""
    return await asyncio.to_thread(_context.hash, password)


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Check ``password`` against ``hashed`` (``None``: unknown user, same cost, always false).

    Returns (valid, new hash to store when the parameters changed, else ``None``).
    """
    if hashed is None:
        await asyncio.to_thread(_context.verify, password, await asyncio.to_thread(_dummy_hash))
        return False, None
    try:
        return await asyncio.to_thread(_context.verify_and_update, password, hashed)
    except ValueError:  # a malformed stored hash: treat as a failed login, never a 500
        return False, None
