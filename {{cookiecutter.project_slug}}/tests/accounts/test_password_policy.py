"""Passwords: argon2id hashes, and a policy that names the rule a refused password breaks."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from app.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_password_policy,
    hash_password,
    needs_rehash,
    password_problem,
    verify_dummy,
    verify_password,
)
from tests.accounts.conftest import PASSWORD


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("a" * 3 + "bcd efgh ij", f"at least {MIN_PASSWORD_LENGTH}"),
        ("x" * (MIN_PASSWORD_LENGTH - 1), f"at least {MIN_PASSWORD_LENGTH}"),
        ("long enough phrase " * 7, f"at most {MAX_PASSWORD_LENGTH}"),
        ("Ann.Example.Longname@Example.com", "email"),
        ("ann.example.longname", "email"),
        ("PasswordPassword", "too common"),
        ("abababababababab", "too few characters"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(password: str, rule: str) -> None:
    """Too short, too long, the email or its local part, a common one, too few characters."""
    problem = password_problem(password, "ann.example.longname@example.com")
    assert problem is not None
    assert rule in problem


def test_a_long_phrase_passes_and_the_limits_are_inclusive() -> None:
    """Exactly the minimum and exactly the maximum length pass; no composition rules."""
    assert password_problem(PASSWORD, "someone@example.com") is None
    assert password_problem("abcd" + "e" * (MIN_PASSWORD_LENGTH - 4)) is None
    assert password_problem("abcd" + "e" * (MAX_PASSWORD_LENGTH - 4)) is None
    check_password_policy(PASSWORD)


def test_hashes_are_argon2id_salted_and_verify() -> None:
    """PHC strings starting with $argon2id$, a new salt each time, and a wrong password fails."""
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$argon2id$v=19$")
    assert first != second
    assert verify_password(first, PASSWORD)
    assert not verify_password(first, PASSWORD + "!")
    assert not verify_password("not-a-hash", PASSWORD)
    assert not verify_dummy(PASSWORD)


def test_a_hash_with_other_parameters_needs_a_rehash() -> None:
    """Changed parameters (or a malformed hash) ask for a rehash; the current ones do not."""
    older = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert needs_rehash(older)
    assert needs_rehash("garbage")
    assert not needs_rehash(hash_password(PASSWORD))
