"""argon2id hashing with rehash on parameter change, and the password rules."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from flask_babel import gettext

MIN_LENGTH = 12
MAX_LENGTH = 256
#: Verified against when the email is unknown, so failures take the same time either way.
_DUMMY_PASSWORD = "not-a-real-password-0000"  # noqa: S105  (a decoy, not a credential)


def hasher() -> PasswordHasher:
    params = current_app.config.get("ARGON2_PARAMS", {}) if has_app_context() else {}
    return _hasher(tuple(sorted(params.items())))


@cache
def _hasher(params: tuple[tuple[str, int], ...]) -> PasswordHasher:
    return PasswordHasher(**dict(params))  # type: ignore[arg-type]


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """Whether `password` matches; and a new hash when the stored one uses old parameters.

    With no stored hash (unknown email) a dummy hash is verified, so timing tells nothing.
    """
    ph = hasher()
    try:
        ph.verify(stored or _dummy_hash(ph), password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, ph.hash(password) if ph.check_needs_rehash(stored) else None


_dummy_hashes: dict[int, str] = {}


def _dummy_hash(ph: PasswordHasher) -> str:
    if id(ph) not in _dummy_hashes:
        _dummy_hashes[id(ph)] = ph.hash(_DUMMY_PASSWORD)
    return _dummy_hashes[id(ph)]


@cache
def _common_passwords() -> frozenset[str]:
    text = files("portal.services").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """What is wrong with a new password, as messages for the form (empty when it is fine)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(gettext("Use at least %(count)d characters.", count=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        problems.append(gettext("Use at most %(count)d characters.", count=MAX_LENGTH))
    lowered = password.lower()
    stripped = lowered.rstrip("0123456789!@#$%^&*?.")
    if lowered in _common_passwords() or stripped in _common_passwords():
        problems.append(gettext("This password is too common; choose one that is hard to guess."))
    elif len(set(password)) < 4:
        problems.append(gettext("Use more than a few different characters."))
    if email and len(email.split("@")[0]) >= 4 and email.split("@")[0].lower() in lowered:
        problems.append(gettext("Do not include your email address in your password."))
    return problems
