"""Two-step sign-in: a code from an authenticator app (TOTP, RFC 6238) after the password, or
one of ten single-use recovery codes.

The shared secret is sealed with `TOTP_KEY` (AES-GCM, the account's id as associated data, so a
secret copied onto another row does not open). A code is accepted for the time steps either
side of now, and only for a step later than the last one accepted: one UPDATE claims it, so a
code seen over a shoulder or sent twice at once opens nothing the second time. Turning it on or
off, regenerating recovery codes and signing in with a recovery code end the account's other
sessions and tokens, are audited and mailed to the account's own address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from flask_babel import LazyString, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require
from portal.db import utcnow
from portal.models import AuditAction, AuditOutcome, Entity, RecoveryCode, Role, User
from portal.services import mail, sessions, throttle
from portal.services.errors import N_, ServiceError

STEP_SECONDS = 30
DIGITS = 6
#: Steps either side of now a code is still good for: clocks on phones drift.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
#: Roles that must use two-step sign-in when TWO_FACTOR_REQUIRED is on: they see many patients.
REQUIRED_ROLES = frozenset({Role.PROVIDER, Role.ADMIN})
ISSUER = "Patient portal"
WRONG_CODE = N_("That code is not right. Use the newest code from your app, or a recovery code.")
# Recovery codes: 16 characters (80 bits) from an alphabet without look-alikes (0/O, 1/I).
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class TwoFactorError(ServiceError):
    """A code that does not open, or a step taken out of order."""


# --- TOTP (RFC 6238 over RFC 4226) ----------------------------------------------------------------


def new_secret() -> str:
    """A 160-bit secret, base32 as authenticator apps take it."""
    return base64.b32encode(secrets.token_bytes(20)).decode()


def _step(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code for time step `step` (HOTP with HMAC-SHA1, dynamic truncation, six digits)."""
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def current_code(secret: str, moment: datetime | None = None) -> str:
    return code_at(secret, _step(moment or utcnow()))


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    here = _step(now)
    found = None
    for step in range(here - DRIFT_STEPS, here + DRIFT_STEPS + 1):
        # Every candidate is compared, in constant time, whichever matches.
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def _normalise(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


# --- The secret at rest ------------------------------------------------------------------------


def _aead() -> AESGCM:
    return AESGCM(hashlib.sha256(current_app.config["TOTP_KEY"].encode()).digest())


def _seal(secret: str, user_id: int) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead().encrypt(nonce, secret.encode(), str(user_id).encode())


def _unseal(blob: bytes, user_id: int) -> str:
    try:
        return _aead().decrypt(blob[:12], blob[12:], str(user_id).encode()).decode()
    except InvalidTag as exc:  # a wrong key or a secret moved between rows: fail closed
        raise TwoFactorError(
            "code", N_("Two-step sign-in cannot be checked. Call your clinic.")
        ) from exc


def _secret_of(session: Session, user_id: int) -> str | None:
    blob = session.scalar(select(User.totp_secret).where(User.id == user_id))
    return _unseal(blob, user_id) if blob else None


# --- Who must use it ---------------------------------------------------------------------------


def is_on(user: User) -> bool:
    return user.totp_enabled_at is not None


def must_enrol(user: User) -> bool:
    """A provider or admin without two-step sign-in while the clinic requires it."""
    return (
        bool(current_app.config["TWO_FACTOR_REQUIRED"])
        and user.role in REQUIRED_ROLES
        and not is_on(user)
    )


# --- Enrolment ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the person needs to add the account to their app: the secret as text and as a QR
    code (SVG drawn here: the secret never goes to another site)."""

    secret: str
    uri: str
    qr_svg: str

    @property
    def grouped(self) -> str:
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def _enrolment(secret: str, email: str) -> Enrolment:
    label = quote(f"{ISSUER}:{email}")
    uri = f"otpauth://totp/{label}?secret={secret}&issuer={quote(ISSUER)}&digits={DIGITS}"
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=4, border=4, dark="#000", light="#fff", omitsize=False)
    return Enrolment(secret, uri, svg)


def start(session: Session, actor: Actor) -> Enrolment:
    """A fresh secret to confirm with a first code; nothing changes until it is confirmed."""
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    if is_on(user):
        raise TwoFactorError(None, N_("Two-step sign-in is already on."))
    secret = new_secret()
    user.totp_secret = _seal(secret, user.id)
    user.totp_last_step = None
    # A new key was issued (not yet on): recorded, as every change to how an account signs in.
    audit.record(
        session, actor, AuditAction.CREATE, Entity.TWO_FACTOR, user.id, patient_id=actor.patient_id
    )
    session.flush()
    return _enrolment(secret, user.email)


def pending(session: Session, user: User) -> Enrolment | None:
    """The enrolment started and not yet confirmed (the page shown again after a wrong code)."""
    if is_on(user):
        return None
    secret = _secret_of(session, user.id)
    return _enrolment(secret, user.email) if secret else None


def confirm(session: Session, actor: Actor, code: str) -> list[str]:
    """Turn two-step sign-in on with a first code from the app; returns the recovery codes,
    shown once."""
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    secret = _secret_of(session, user.id)
    if secret is None or is_on(user):
        raise TwoFactorError(None, N_("Start setting up two-step sign-in again."))
    step = _matching_step(secret, _normalise(code), utcnow())
    if step is None or not _claim_step(session, user.id, step):
        raise TwoFactorError("code", WRONG_CODE)
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(session, user.id)
    _changed(
        session,
        actor,
        user,
        AuditAction.ACTIVATE,
        (
            _l("Two-step sign-in was turned on for your patient portal account"),
            _l(
                "Two-step sign-in was turned on for your patient portal account; other devices "
                "were signed out."
            ),
        ),
    )
    return codes


def regenerate(
    session: Session,
    actor: Actor,
    code: str,
    *,
    limits: throttle.Limits,
    client_address: str | None = None,
) -> list[str]:
    """Ten new recovery codes in place of the old ones, after a code from the app."""
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    _check(session, actor, user, code, limits, client_address, recovery=False)
    codes = _new_recovery_codes(session, user.id)
    _changed(
        session,
        actor,
        user,
        AuditAction.UPDATE,
        (
            _l("New recovery codes were made for your patient portal account"),
            _l(
                "New recovery codes were made for your patient portal account; other devices were "
                "signed out."
            ),
        ),
    )
    return codes


def turn_off(
    session: Session,
    actor: Actor,
    code: str,
    *,
    limits: throttle.Limits,
    client_address: str | None = None,
) -> None:
    """Two-step sign-in off, after a code from the app or a recovery code; refused to the roles
    that must keep it."""
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    if current_app.config["TWO_FACTOR_REQUIRED"] and user.role in REQUIRED_ROLES:
        raise TwoFactorError(None, N_("Your clinic requires two-step sign-in for your account."))
    _check(session, actor, user, code, limits, client_address, recovery=True)
    clear(session, user)
    _changed(
        session,
        actor,
        user,
        AuditAction.DEACTIVATE,
        (
            _l("Two-step sign-in was turned off for your patient portal account"),
            _l(
                "Two-step sign-in was turned off for your patient portal account; other devices "
                "were signed out."
            ),
        ),
    )


def _check(
    session: Session,
    actor: Actor,
    user: User,
    code: str,
    limits: throttle.Limits,
    client_address: str | None,
    *,
    recovery: bool,
) -> None:
    """Pass when `code` opens (a recovery code too, if `recovery`); else refuse, with the
    failure counted toward the sign-in pause and recorded even though the change rolls back:
    an open session cannot be used to guess codes at leisure."""
    if not is_on(user):
        raise TwoFactorError(None, N_("Two-step sign-in is not on."))
    now = utcnow()
    keys = throttle.keys_for(user.email, client_address, limits)
    wait = throttle.wait_seconds(session, keys, now)
    if wait is None and (
        _app_code_ok(session, user, code)
        or (recovery and _use_recovery_code(session, user.id, code))
    ):
        return

    def record(s: Session) -> None:
        if wait is None:
            throttle.count_failure(s, keys, limits, utcnow())
        audit.record(
            s,
            actor,
            AuditAction.UPDATE,
            Entity.TWO_FACTOR,
            user.id,
            patient_id=actor.patient_id,
            outcome=AuditOutcome.DENIED,
            detail={"reason": "paused" if wait is not None else "code"},
        )

    message = throttle.paused_message(wait) if wait is not None else WRONG_CODE
    raise TwoFactorError("code", message, record=record)


def clear(session: Session, user: User) -> None:
    """Two-step sign-in off for `user`, its secret and unused recovery codes gone (turned off
    by its owner, or the clinic resetting the access of someone who lost phone and codes);
    the caller records why."""
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


# --- Signing in --------------------------------------------------------------------------------


class Factor:
    APP = "app"
    RECOVERY_CODE = "recovery_code"


def check_sign_in_code(session: Session, user: User, code: str) -> str | None:
    """Which factor `code` is for `user` (a code from the app, or an unused recovery code,
    which is used up and ends the account's other sessions), or None when it opens nothing."""
    if _app_code_ok(session, user, code):
        return Factor.APP
    if _use_recovery_code(session, user.id, code):
        sessions.end_all(session, user.id, "recovery_code")
        mail.stage_account_notice(
            session,
            user,
            kind="two_factor",
            compose=lambda: (
                gettext("A recovery code was used to sign in to your patient portal"),
                _notice(
                    gettext(
                        "A recovery code was just used to sign in to your patient portal account, "
                        "and every other device was signed out."
                    )
                ),
            ),
        )
        return Factor.RECOVERY_CODE
    return None


def _app_code_ok(session: Session, user: User, code: str) -> bool:
    secret = _secret_of(session, user.id) if is_on(user) else None
    if secret is None:
        return False
    step = _matching_step(secret, _normalise(code), utcnow())
    return step is not None and _claim_step(session, user.id, step)


def _claim_step(session: Session, user_id: int, step: int) -> bool:
    """Record `step` as used; False when it (or a later one) already was: a replay."""
    claimed = session.execute(
        update(User)
        .where(
            User.id == user_id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(claimed, "rowcount", 0))


# --- Recovery codes ----------------------------------------------------------------------------


def _new_recovery_codes(session: Session, user_id: int) -> list[str]:
    now = utcnow()
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
    )
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(16)) for _ in range(RECOVERY_CODES)]
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=sessions.token_hash(c), created_at=now)
        for c in codes
    )
    session.flush()
    return ["-".join(c[i : i + 4] for i in range(0, 16, 4)) for c in codes]


def _use_recovery_code(session: Session, user_id: int, code: str) -> bool:
    normal = _normalise(code)
    if len(normal) != 16:
        return False
    used = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == sessions.token_hash(normal),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return bool(getattr(used, "rowcount", 0))


# --- Records -------------------------------------------------------------------------------------


def _notice(line: str) -> str:
    advice = gettext(
        'If this was not you, set a new password with "Forgot your password?" on the sign-in '
        "page and call your clinic."
    )
    return f"{line}\n\n{advice}\n"


def _changed(
    session: Session,
    actor: Actor,
    user: User,
    action: AuditAction,
    words: tuple[LazyString, LazyString],
) -> None:
    """Audit a change to the account's factors, end its other sessions and tell its owner."""
    sessions.end_all(session, user.id, "two_factor_change", keep=actor.session_id)
    audit.record(
        session,
        actor,
        action,
        Entity.TWO_FACTOR,
        user.id,
        patient_id=actor.patient_id,
        outcome=AuditOutcome.SUCCESS,
    )
    mail.stage_account_notice(
        session,
        user,
        kind="two_factor",
        # (subject, first line): whole sentences for the translators, lazy so that they are
        # written in the account holder's language.
        compose=lambda: (str(words[0]), _notice(str(words[1]))),
    )
    session.flush()
