"""The keys that sign the audit chain (HMAC-SHA256), kept outside the database.

Each entry stores the id of the key that signed it (`audit_event.key_id`), so the key can be
rotated: the new key signs from now on, and a retired key listed in AUDIT_OLD_KEYS still
verifies the entries it signed. An entry without a key id was written before the chain was
keyed (a plain SHA-256 link); no such entry may follow a keyed one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import current_app


@dataclass(frozen=True, slots=True)
class AuditKey:
    id: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class Keyring:
    """The key that signs new entries, and every key (current and retired) by id."""

    current: AuditKey
    by_id: Mapping[str, AuditKey]


def key_id(secret: str) -> str:
    """A short public name for a key: derived from it, so nobody has to name keys by hand, and
    a one-way hash of a random secret reveals nothing usable about it."""
    return hashlib.sha256(b"portal-audit-key-id\n" + secret.encode()).hexdigest()[:12]


@lru_cache(maxsize=8)
def keyring(current: str, old: str = "") -> Keyring:
    """The keyring for the AUDIT_KEY `current` and the comma-separated AUDIT_OLD_KEYS `old`."""
    if not current:
        raise ValueError("AUDIT_KEY is empty")
    secrets = [s.strip() for s in (current, *old.split(",")) if s.strip()]
    keys = [AuditKey(key_id(s), s.encode()) for s in secrets]
    return Keyring(current=keys[0], by_id={k.id: k for k in keys})


def configured(config: Mapping[str, Any] | None = None) -> Keyring:
    """The app's keyring (AUDIT_KEY and AUDIT_OLD_KEYS)."""
    config = current_app.config if config is None else config
    return keyring(str(config["AUDIT_KEY"]), str(config.get("AUDIT_OLD_KEYS") or ""))
