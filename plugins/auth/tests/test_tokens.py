"""Secret digests (checkstack_auth.tokens.Digester): the server key present, absent and changed,
and digests made before a key was configured still verifying (docs/security.md)."""

from __future__ import annotations

import hashlib

import pytest
from checkstack_auth.tokens import Digester, new_secret

# Fixed, not new_secret(): parametrised ids are built from it, and pytest-xdist requires every
# worker to collect the same ids.
SECRET = "3z28wsGGizcqPAy82PlT57HG139ycE9BbFINXNEaPq1"
assert len(SECRET) == len(new_secret())


def test_with_a_key_digests_are_keyed_and_verify():
    digester = Digester("server-key")
    stored = digester.digest(SECRET)
    assert stored.startswith("hmac-sha256$")
    assert SECRET not in stored
    assert digester.verify(SECRET, stored)
    assert digester.verify(new_secret(), stored) is False  # a bool, never merely falsy
    # Keyed: not the plain SHA-256 of the secret.
    assert stored.partition("$")[2] != hashlib.sha256(SECRET.encode()).hexdigest()


def test_without_a_key_digests_are_plain_sha256_and_verify():
    digester = Digester(None)
    stored = digester.digest(SECRET)
    assert stored == f"sha256${hashlib.sha256(SECRET.encode()).hexdigest()}"
    assert digester.verify(SECRET, stored)
    assert digester.verify(new_secret(), stored) is False  # a bool, never merely falsy


@pytest.mark.parametrize("absent", [None, ""])
def test_without_a_key_no_keyed_digest_verifies(absent):
    stored = Digester("server-key").digest(SECRET)
    digester = Digester(absent)
    # Neither the right secret nor any other: nothing can check a keyed digest without the key.
    assert digester.verify(SECRET, stored) is False  # a bool, never merely falsy
    assert digester.verify(new_secret(), stored) is False  # a bool, never merely falsy
    assert digester.verify("", stored) is False  # a bool, never merely falsy


def test_a_changed_key_invalidates_keyed_digests():
    stored = Digester("old-key").digest(SECRET)
    assert Digester("new-key").verify(SECRET, stored) is False  # a bool, never merely falsy
    assert Digester("old-key").verify(SECRET, stored)


def test_plain_digests_made_before_a_key_was_set_keep_verifying():
    stored = Digester(None).digest(SECRET)
    with_key = Digester("server-key")
    assert with_key.verify(SECRET, stored)
    assert with_key.verify(new_secret(), stored) is False  # a bool, never merely falsy


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
    assert Digester(key).verify(SECRET, stored) is False  # a bool, never merely falsy


def test_a_parsed_token_never_shows_its_secret():
    from checkstack_auth.tokens import format_token, new_id, parse_token

    row_id = new_id()
    parsed = parse_token(format_token("ck", row_id, SECRET), "ck")
    assert parsed is not None and parsed.secret == SECRET
    assert repr(parsed) == f"ParsedToken(id={row_id!r})"
    assert SECRET not in repr(parsed) and SECRET not in f"{[parsed]}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ck",
        "ck_",
        "cs_00000000-0000-4000-8000-000000000000_" + SECRET,  # another prefix
        "ck_00000000-0000-4000-8000-000000000000_short",  # secret too short
        "ck_00000000-0000-4000-8000-000000000000_" + "a" * 129,  # secret too long
        "ck_00000000-0000-4000-8000-000000000000_" + "a" * 31 + "!",  # outside [A-Za-z0-9]
        "ck_00000000-0000-4000-8000-00000000000_" + SECRET,  # id of 35 characters
        "ck_00000000000000004000800000000000000000_" + SECRET[:38],  # not a UUID's shape
        "ck_0000000g-0000-4000-8000-000000000000_" + SECRET,  # not hexadecimal
        "ck_{00000000-0000-4000-8000-0000000000}_" + SECRET,  # parses as a UUID, not canonical
    ],
)
def test_malformed_tokens_do_not_parse(token):
    from checkstack_auth.tokens import parse_token

    assert parse_token(token, "ck") is None


def test_a_well_formed_token_parses_to_its_canonical_id():
    from checkstack_auth.tokens import parse_token

    upper = "ck_0000000A-0000-4000-8000-00000000000B_" + SECRET
    parsed = parse_token(upper, "ck")
    assert parsed is not None
    assert parsed.id == "0000000a-0000-4000-8000-00000000000b"
