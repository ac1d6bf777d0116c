"""The rules the auth contract states in its schema for a new address and password admit only
what the service accepts (the schema may be stricter, never looser)."""

from __future__ import annotations

import re
from typing import get_args, get_type_hints

import pytest
from checkstack_auth import passwords
from checkstack_auth.contract import NewEmail, NewPassword

from checkstack_core.errors import RpcError


def _pattern(annotated: object) -> re.Pattern[str]:
    meta = get_args(annotated)[1]
    return re.compile(meta.extra_json_schema["pattern"])


def _limits(annotated: object) -> tuple[int, int]:
    meta = get_args(annotated)[1]
    extra = meta.extra_json_schema
    return extra.get("minLength", meta.min_length or 0), extra.get("maxLength", meta.max_length)


EMAILS = ["ann@example.com", " Ann@Example.COM ", "a@b", "x@y@z", "no-at", "a @b", "@b", "a@", ""]
PASSWORDS = ["Secret123", "secret123", "SECRET123", "Secretabc", "Sh0rt", "É" * 3 + "e1abcdef"]


@pytest.mark.parametrize("email", EMAILS)
def test_an_address_the_schema_admits_is_accepted(email):
    low, high = _limits(NewEmail)
    admitted = bool(_pattern(NewEmail).search(email)) and low <= len(email) <= high
    try:
        passwords.normalize_email(email)
        accepted = True
    except RpcError:
        accepted = False
    assert not admitted or accepted, email


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_the_schema_admits_is_accepted(password):
    low, high = _limits(NewPassword)
    admitted = bool(_pattern(NewPassword).search(password)) and low <= len(password) <= high
    accepted = not passwords.password_problems(password, email="ann@example.com")
    assert not admitted or accepted, password
    if password == "Secret123":
        assert admitted  # the schema is not so strict that it refuses an ordinary password


def test_the_types_are_used_where_the_service_checks_them():
    from checkstack_auth.contract import (
        ChangePasswordInput,
        CreateUserInput,
        OnboardingInput,
        SetUserPasswordInput,
    )

    for struct, field in [
        (OnboardingInput, "email"),
        (CreateUserInput, "email"),
    ]:
        assert get_type_hints(struct, include_extras=True)[field] == NewEmail
    for struct, field in [
        (OnboardingInput, "password"),
        (CreateUserInput, "password"),
        (SetUserPasswordInput, "password"),
        (ChangePasswordInput, "new_password"),
    ]:
        assert get_type_hints(struct, include_extras=True)[field] == NewPassword
