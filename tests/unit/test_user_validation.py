from __future__ import annotations

import pytest

from ecomctl.errors import ValidationFailed
from ecomctl.services.user import (
    MAX_EMAIL_CHARS,
    check_full_name,
    check_password,
    default_hasher,
    normalize_email,
    seeding_hasher,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith+Shop@Example.CO.uk ", "alice.smith+shop@example.co.uk"),
        ("o'brien@mail.example", "o'brien@mail.example"),
        ("jürgen@bücher.example", "jürgen@bücher.example"),
    ],
)
def test_valid_emails_are_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",  # no dot in the domain
        "alice@example.",
        "alice@.example.com",
        "alice@example..com",
        "al ice@example.com",
        "alice@exa mple.com",
        "alice@@example.com",
        "alice@bob@example.com",
        "alice\x00@example.com",
        "alice@example.com\nBcc: x@y.z",
        "a" * 65 + "@example.com",  # local part over 64
    ],
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        normalize_email(raw)


def test_email_length_limit_is_254_characters() -> None:
    domain_part = "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + "."
    local = "a" * 64
    tld_len = MAX_EMAIL_CHARS - len(local) - len(domain_part)
    at_limit = local + domain_part + "g" * tld_len
    assert len(at_limit) == MAX_EMAIL_CHARS
    assert normalize_email(at_limit) == at_limit
    with pytest.raises(ValidationFailed, match="254"):
        normalize_email(at_limit + "g")


@pytest.mark.parametrize("value", [None, 42, b"alice@example.com"])
def test_non_string_email_is_refused(value: object) -> None:
    with pytest.raises(ValidationFailed):
        normalize_email(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("password", ["12345678", "x" * 128, "  spaces  ", "pässwörd🔑🔑"])
def test_passwords_of_8_to_128_characters_are_kept_verbatim(password: str) -> None:
    assert check_password(password) == password


@pytest.mark.parametrize("password", ["", "1234567", "x" * 129, None, 12345678])
def test_passwords_outside_8_to_128_characters_are_refused(password: object) -> None:
    with pytest.raises(ValidationFailed):
        check_password(password)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Ada Lovelace", "Ada Lovelace"), ("  Zoë  ", "Zoë"), ("X", "X"), ("n" * 200, "n" * 200)],
)
def test_full_names_are_trimmed(raw: str, expected: str) -> None:
    assert check_full_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "n" * 201, "Ada\nLovelace", "Ada\x00", None, 7])
def test_bad_full_names_are_refused(raw: object) -> None:
    with pytest.raises(ValidationFailed):
        check_full_name(raw)  # type: ignore[arg-type]


def test_default_hasher_parameters_are_pinned() -> None:
    hasher = default_hasher()
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (3, 65536, 4)
    assert (hasher.hash_len, hasher.salt_len) == (32, 16)
    assert hasher.type.name == "ID"


def test_seeding_hasher_is_cheaper_argon2id() -> None:
    cheap, default = seeding_hasher(), default_hasher()
    assert cheap.type.name == "ID"
    assert cheap.memory_cost < default.memory_cost and cheap.time_cost < default.time_cost
