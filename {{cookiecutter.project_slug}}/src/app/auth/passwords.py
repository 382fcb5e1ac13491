"""Password hashing (argon2id, via argon2-cffi) and the weak-password policy.

Hashes use RFC 9106's second recommended profile (argon2id, t=3, 64 MiB, p=4), argon2-cffi's
default. Raising the parameters later needs no migration: a stored hash made with other
parameters still verifies, and login stores a new hash (`needs_rehash`).

Hashing is CPU-bound for ~0.1 s, so callers on the event loop run these functions in a thread
(argon2-cffi releases the GIL while it hashes).

The policy (docs/tenancy.md), in NIST SP 800-63B-4 terms for a password that is the only factor:
- at least 15 characters (§3.1.1.2), no composition rules (upper/digit/symbol) and no expiry;
- at most 128 characters, which bounds what one login attempt can make the service process;
- not the account's email nor its local part, not one of a short list of common passwords, and
  not a run of fewer than 4 distinct characters ("aaaaaaaaaaaaaaa", "abababab...").
A blocklist check against a breach corpus (e.g. Have I Been Pwned's k-anonymity range API) would
be the next step; it needs an outbound dependency, so it is left to the team that adopts this.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from app.http.errors import UnprocessableError

MIN_PASSWORD_LENGTH = 15
MAX_PASSWORD_LENGTH = 128
MIN_DISTINCT_CHARACTERS = 4
# Common passwords long enough to pass the length rule (from public breach top lists).
COMMON_PASSWORDS = frozenset(
    {
        "123456789012345",
        "1234567890123456",
        "1q2w3e4r5t6y7u8i",
        "iloveyouiloveyou",
        "passwordpassword",
        "password12345678",
        "password123456789",
        "qwertyuiopasdfgh",
        "qwertyuiopasdfghjkl",
        "qwertyuiop123456",
        "correcthorsebatterystaple",
        "correct horse battery staple",
    }
)

HASHER = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


class WeakPasswordError(UnprocessableError):
    slug = "weak-password"
    title = "Password too weak"


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why `password` is refused (one sentence), or None when the policy accepts it."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    folded = password.casefold()
    if email is not None:
        address = email.strip().casefold()
        if folded in {address, address.partition("@")[0]}:
            return "The password must not be the email address."
    if folded in COMMON_PASSWORDS:
        return "The password is too common; choose a longer phrase of unrelated words."
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        return "The password repeats too few characters; choose a phrase of unrelated words."
    return None


def check_password_policy(password: str, email: str | None = None) -> None:
    """Raise `WeakPasswordError` (422, naming the rule) when the policy refuses `password`."""
    problem = password_problem(password, email)
    if problem is not None:
        raise WeakPasswordError(problem)


def hash_password(password: str, hasher: PasswordHasher = HASHER) -> str:
    """An argon2id hash in PHC string form (`$argon2id$v=19$m=...`), salted at random."""
    return hasher.hash(password)


def verify_password(stored_hash: str, password: str, hasher: PasswordHasher = HASHER) -> bool:
    """Whether `password` matches `stored_hash`; False also for a malformed stored hash."""
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, hasher: PasswordHasher = HASHER) -> bool:
    """Whether `stored_hash` was made with other parameters than `hasher`'s (login rehashes)."""
    try:
        return hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("an unknown account's stand-in password")


def verify_dummy(password: str, hasher: PasswordHasher = HASHER) -> bool:
    """Spend what one verification costs, for an unknown email (so its answer takes as long as
    a wrong password's). Always False."""
    verify_password(_dummy_hash(hasher), password, hasher)
    return False
