"""Secrets in stored configuration: where they are, encrypted at rest, masked in outputs.

Shared by every plugin that stores credentials (health check strategy configs, notification
channels). A config type marks secret fields with :data:`Secret`; the paths are found from its
msgspec type info (a ``*`` step matches every key of a dict or every item of a list). Stored
configs hold ``enc:v1:<Fernet token>`` in those places; the key is derived with HKDF-SHA256 from
``CHECKSTACK_SECRET_KEY`` and a per-use ``purpose`` (one key per purpose), so no server key → no
secrets stored.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import msgspec.inspect as mi

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

Path = tuple[str, ...]
PREFIX = "enc:v1:"

#: What every output shows instead of a stored secret; sending it back keeps the secret.
MASK = "********"

#: A secret string field of a config type: encrypted at rest, masked as :data:`MASK` in outputs.
Secret = Annotated[str, msgspec.Meta(max_length=10_000, extra_json_schema={"x-secret": True})]


class NoKey(Exception):
    """A secret must be stored but ``CHECKSTACK_SECRET_KEY`` is not set."""


def _is_secret(info: mi.Type) -> bool:
    extra = getattr(info, "extra_json_schema", None) or {}
    return bool(extra.get("x-secret"))


def _walk(info: mi.Type, prefix: Path, out: list[Path], depth: int = 0) -> None:
    if depth > 8:
        return
    if isinstance(info, mi.Metadata):
        if _is_secret(info) and isinstance(info.type, mi.StrType):
            if prefix not in out:
                out.append(prefix)
            return
        _walk(info.type, prefix, out, depth + 1)
        return
    if isinstance(info, mi.UnionType):
        for member in info.types:
            _walk(member, prefix, out, depth + 1)
        return
    if isinstance(info, mi.StructType):
        for field in info.fields:
            _walk(field.type, (*prefix, field.encode_name), out, depth + 1)
        return
    if isinstance(info, mi.DictType):
        _walk(info.value_type, (*prefix, "*"), out, depth + 1)
        return
    if isinstance(info, (mi.ListType, mi.TupleType, mi.VarTupleType, mi.SetType)):
        item = getattr(info, "item_type", None)
        if item is not None:
            _walk(item, (*prefix, "*"), out, depth + 1)


@cache
def secret_paths(config_type: type) -> tuple[Path, ...]:
    """Every path (wire names) of a secret string inside ``config_type``."""
    out: list[Path] = []
    _walk(mi.type_info(config_type), (), out)
    return tuple(out)


def transform(
    value: Any, paths: tuple[Path, ...], fn: Callable[[Any, tuple[Any, ...]], Any]
) -> Any:
    """A copy of the JSON-like ``value`` with ``fn(old, concrete_path)`` applied to every
    non-null value at one of ``paths``."""
    value = msgspec.json.decode(msgspec.json.encode(value))
    for path in paths:
        _apply(value, path, (), fn)
    return value


def _apply(node: Any, path: Path, done: tuple[Any, ...], fn: Callable[..., Any]) -> None:
    if not path:
        return
    step, rest = path[0], path[1:]
    if step == "*":
        keys: list[Any] = (
            list(node)
            if isinstance(node, dict)
            else list(range(len(node)))
            if isinstance(node, list)
            else []
        )
    else:
        keys = [step] if isinstance(node, dict) and step in node else []
    for key in keys:
        if rest:
            _apply(node[key], rest, (*done, key), fn)
        elif node[key] is not None:
            node[key] = fn(node[key], (*done, key))


def lookup(value: Any, concrete: tuple[Any, ...]) -> Any:
    """The value at a concrete path, or ``None``."""
    for key in concrete:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


class Vault:
    """Encrypts and decrypts secret values with the server's key (``None``: no key set).

    ``purpose`` separates keys: each use derives its own from the server key, so a value
    encrypted for one plugin cannot be decrypted as another's. Never change a purpose once
    secrets are stored under it.
    """

    def __init__(self, secret_key: str | None, purpose: bytes) -> None:
        # cryptography is imported here, not with the module: config types import MASK and
        # Secret from this module, and a strategy plugin's import must stay light.
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        self._fernet: Fernet | None = None
        if secret_key:
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
                secret_key.encode()
            )
            self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    @property
    def has_key(self) -> bool:
        return self._fernet is not None

    def encrypt(self, plain: str) -> str:
        if plain.startswith(PREFIX):
            return plain  # already encrypted (kept from the stored config)
        if self._fernet is None:
            raise NoKey
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise NoKey
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise NoKey from None


def mask(config: Any, paths: tuple[Path, ...]) -> Any:
    """``config`` with every secret replaced by :data:`MASK` (outputs)."""
    if not paths:
        return config
    return transform(config, paths, lambda _old, _path: MASK)


def merge_masks(new: Any, stored: Any, paths: tuple[Path, ...]) -> Any:
    """``new`` with every secret that reads :data:`MASK` replaced by the stored (encrypted)
    value at the same place (an update that sends the mask back keeps the secret)."""
    if not paths:
        return new

    def keep(old: Any, path: tuple[Any, ...]) -> Any:
        if old == MASK:
            previous = lookup(stored, path)
            return previous if isinstance(previous, str) else old
        return old

    return transform(new, paths, keep)
