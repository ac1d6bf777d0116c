"""Secret digests (checkstack_auth.tokens.Digester): the server key present, absent and changed,
and digests made before a key was configured still verifying (docs/security.md)."""

from __future__ import annotations

import hashlib

import pytest
from checkstack_auth.tokens import Digester, new_secret

SECRET = new_secret()


def test_with_a_key_digests_are_keyed_and_verify():
    digester = Digester("server-key")
    stored = digester.digest(SECRET)
    assert stored.startswith("hmac-sha256$")
    assert SECRET not in stored
    assert digester.verify(SECRET, stored)
    assert not digester.verify(new_secret(), stored)
    # Keyed: not the plain SHA-256 of the secret.
    assert stored.partition("$")[2] != hashlib.sha256(SECRET.encode()).hexdigest()


def test_without_a_key_digests_are_plain_sha256_and_verify():
    digester = Digester(None)
    stored = digester.digest(SECRET)
    assert stored == f"sha256${hashlib.sha256(SECRET.encode()).hexdigest()}"
    assert digester.verify(SECRET, stored)
    assert not digester.verify(new_secret(), stored)


@pytest.mark.parametrize("absent", [None, ""])
def test_without_a_key_no_keyed_digest_verifies(absent):
    stored = Digester("server-key").digest(SECRET)
    digester = Digester(absent)
    # Neither the right secret nor any other: nothing can check a keyed digest without the key.
    assert not digester.verify(SECRET, stored)
    assert not digester.verify(new_secret(), stored)
    assert not digester.verify("", stored)


def test_a_changed_key_invalidates_keyed_digests():
    stored = Digester("old-key").digest(SECRET)
    assert not Digester("new-key").verify(SECRET, stored)
    assert Digester("old-key").verify(SECRET, stored)


def test_plain_digests_made_before_a_key_was_set_keep_verifying():
    stored = Digester(None).digest(SECRET)
    with_key = Digester("server-key")
    assert with_key.verify(SECRET, stored)
    assert not with_key.verify(new_secret(), stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "sha256",
        "sha256$",
        "md5$" + hashlib.md5(SECRET.encode()).hexdigest(),
        hashlib.sha256(SECRET.encode()).hexdigest(),  # no scheme
        "hmac-sha256$",
        "HMAC-SHA256$" + "0" * 64,
    ],
)
@pytest.mark.parametrize("key", [None, "server-key"])
def test_malformed_or_unknown_digests_never_verify(stored, key):
    assert not Digester(key).verify(SECRET, stored)
