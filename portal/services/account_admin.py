"""An administrator's account tools: find and page the users, edit an account and a patient's
demographics, see and clear a sign-in pause, see and end a user's sessions and API tokens.

Every verb needs `ACCOUNTS_MANAGE` (`portal.access`: admins, at the sign-in page, never with
a token). Every change is recorded with what it was before and after. A change of an address
that credentials are mailed to is recorded under its own entity type
(`Entity.USER_EMAIL`, `Entity.PATIENT_CONTACT_EMAIL`), so the administrator who made it is not
the one who then mails credentials there (`accounts.check_not_introduced_by`), and the old
address is told.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import Select, String, bindparam, func, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit
from portal.access import (
    MAX_ID,
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    scoped,
)
from portal.db import utcnow
from portal.models import (
    AuditAction,
    Entity,
    PatientProfile,
    ProviderProfile,
    Role,
    User,
    UserSession,
)
from portal.services import accounts, mail, paging, throttle
from portal.services.accounts import AccountError

PER_PAGE = 25


# --- The user list ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    email: str
    role: Role
    name: str | None
    is_active: bool
    #: False while a staff invitation or a patient's new activation code waits.
    has_password: bool

    @property
    def is_staff(self) -> bool:
        return self.role is not Role.PATIENT


_LIKE = bindparam("like", type_=String)


def _users(rs: RoleScope, searching: bool) -> tuple[paging.KeysetStatements, Select[Any]]:
    """Every account by email, with the name its profile gives it (optionally matching `like`
    in the email or the name)."""
    name = func.coalesce(ProviderProfile.display_name, PatientProfile.display_name)
    stmt = (
        select(
            User.id,
            User.email,
            User.role,
            name.label("name"),
            User.is_active,
            User.password_hash.is_not(None).label("has_password"),
        )
        .outerjoin(ProviderProfile, ProviderProfile.user_id == User.id)
        .outerjoin(PatientProfile, PatientProfile.user_id == User.id)
    )
    if searching:
        stmt = stmt.where(
            or_(
                User.email.like(_LIKE, escape="\\"),
                func.lower(name).like(_LIKE, escape="\\"),
            )
        )
    # An admin sees every patient's name (rs.patients adds no filter for them); the scope
    # marks the statement as read through the policy.
    stmt = rs.patients(stmt)
    keyset = paging.Keyset("users", ((User.email, False), (User.id, False)))
    return keyset.statements(stmt), stmt.with_only_columns(func.count(User.id))


def search_users(
    session: Session,
    actor: Actor,
    q: str | None = None,
    *,
    cursor: str | None = None,
    limit: int = PER_PAGE,
) -> paging.Page[UserRow]:
    """One page of the accounts, by email; `q` matches the email or the name."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    q = (q or "").strip()[:100]
    pages, count = scoped(_users, actor, bool(q))
    params = reader(actor, like=_like(q)) if q else reader(actor)
    page = pages.page(
        session, params, cursor=cursor, limit=paging.clamp(limit), key_of=lambda r: (r[1], r[0])
    )
    rows = [UserRow(*row) for row in page.rows]
    return replace(page, rows=rows, total=session.scalar(count, params) or 0)


def _like(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- One account --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountScreen:
    """The read model of the administrator's screen of one account."""

    user: User
    #: Sessions and API tokens that still sign this user in, most recently used first.
    sessions: list[UserSession]
    #: Seconds until the sign-in pause of the account's email address ends, or None.
    paused_for: int | None


def user_or_404(session: Session, actor: Actor, user_id: int) -> User:
    """The account `user_id` (404 for an id no row has)."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound()
    return user


def account_screen(
    session: Session, actor: Actor, user_id: int, *, idle: timedelta, absolute: timedelta
) -> AccountScreen:
    """The account, its live sessions and tokens (the same rule as `sessions.check`), and its
    sign-in pause."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    user = user_or_404(session, actor, user_id)
    now = utcnow()
    live = session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
            UserSession.last_seen_at >= now - idle,
            UserSession.created_at >= now - absolute,
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    paused = throttle.wait_seconds(session, [(throttle.account_key(user.email), 0)], now)
    return AccountScreen(user, list(live), paused)


def _record(
    session: Session,
    actor: Actor,
    user: User,
    action: AuditAction,
    entity_type: Entity,
    detail: dict[str, object],
) -> None:
    audit.record(
        session,
        actor,
        action,
        entity_type,
        user.id,
        patient_id=user.patient.id if user.patient else None,
        detail=detail,
    )


def clear_pause(session: Session, actor: Actor, user_id: int) -> None:
    """End the sign-in pause of the account's email address ("unlock"); recorded."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    user = user_or_404(session, actor, user_id)
    throttle.clear(session, user.email)
    _record(session, actor, user, AuditAction.UPDATE, Entity.SIGN_IN_THROTTLE, {"cleared": True})
    session.flush()


def end_sessions(session: Session, actor: Actor, user_id: int, session_id: int | None) -> int:
    """Sign the user out of one session or token (`session_id`), or of all; how many ended."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    user = user_or_404(session, actor, user_id)
    stmt = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if session_id is not None:
        stmt = stmt.where(UserSession.id == session_id)
    result = session.execute(
        stmt.values(revoked_at=utcnow(), revoked_reason="ended_by_admin"),
        execution_options={"synchronize_session": False},
    )
    ended = int(getattr(result, "rowcount", 0) or 0)
    if session_id is not None and not ended:
        raise AccountError(None, "That session has already ended.")
    _record(
        session,
        actor,
        user,
        # Not SIGN_OUT (one's own, left out of the access log): the patient should see this.
        AuditAction.UPDATE,
        Entity.USER_SESSION,
        {"session_id": session_id, "ended": ended},
    )
    session.flush()
    return ended


def edit_user(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    email: str,
    display_name: str | None = None,
    specialty: str | None = None,
    clinic: str | None = None,
) -> User:
    """Change an account's sign-in address, and a provider's name, specialty and clinic
    (a patient's name is part of their demographics: `edit_patient`). Recorded with before
    and after. A new address ends the invitations and reset links sent to the old one, which
    is told; it gets no "Forgot your password?" link until its holder signs in with it
    (`accounts.address_set_by_admin`)."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    user = user_or_404(session, actor, user_id)
    before: dict[str, object] = {"email": user.email}
    new_email = accounts.normalise_email(email)
    if new_email != user.email:
        user.email = accounts.check_new_email(session, new_email)
    provider = user.provider
    if provider is not None:
        before.update(
            display_name=provider.display_name, specialty=provider.specialty, clinic=provider.clinic
        )
        if not (display_name or "").strip():
            raise AccountError("display_name", "Enter the name shown in the portal.")
        provider.display_name = (display_name or "").strip()
        provider.specialty = (specialty or "").strip() or None
        provider.clinic = (clinic or "").strip() or None
    after: dict[str, object] = {"email": user.email}
    if provider is not None:
        after.update(
            display_name=provider.display_name, specialty=provider.specialty, clinic=provider.clinic
        )
    changed = {k: v for k, v in before.items() if after[k] != v}
    if not changed:
        return user
    moved = "email" in changed
    _record(
        session,
        actor,
        user,
        AuditAction.UPDATE,
        Entity.USER_EMAIL if moved else Entity.USER_ACCOUNT,
        {"before": changed, "after": {k: after[k] for k in changed}},
    )
    if moved:
        accounts.end_mailed_links(session, user.id)
        _tell_old_address(session, str(before["email"]), user)
    session.flush()
    return user


def _tell_old_address(session: Session, old: str, holder: User | PatientProfile) -> None:
    mail.stage_account_notice(
        session,
        holder,
        address=old,
        kind="account.email_changed",
        compose=lambda: (
            gettext("Your patient portal address was changed"),
            gettext(
                "A clinic administrator changed the email address of your patient portal "
                "account; mail about it no longer comes here."
            )
            + "\n\n"
            + gettext("If you did not ask for this, call the clinic at once.")
            + "\n",
        ),
    )


def edit_patient(
    session: Session,
    actor: Actor,
    patient_id: int,
    *,
    medical_record_number: str,
    display_name: str,
    date_of_birth: date | None,
    primary_clinic: str | None,
    contact_email: str | None,
    contact_phone: str | None,
) -> PatientProfile:
    """Change a patient's demographics; the MRN stays unique (refused on its field). Recorded
    with before and after, in the patient's access log; a changed contact address is told to
    the old one."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    mrn = medical_record_number.strip().upper()
    if not mrn or not display_name.strip():
        raise AccountError("medical_record_number" if not mrn else "display_name", "Enter it.")
    if mrn != patient.medical_record_number and accounts.mrn_taken(session, actor, mrn):
        raise AccountError("medical_record_number", "A patient with this MRN already exists.")
    fields = (
        "medical_record_number",
        "display_name",
        "date_of_birth",
        "primary_clinic",
        "contact_email",
        "contact_phone",
    )
    before = {f: getattr(patient, f) for f in fields}
    patient.medical_record_number = mrn
    patient.display_name = display_name.strip()
    patient.date_of_birth = date_of_birth
    patient.primary_clinic = (primary_clinic or "").strip() or None
    patient.contact_email = accounts.normalise_email(contact_email or "") or None
    patient.contact_phone = (contact_phone or "").strip() or None
    changed = [f for f in fields if getattr(patient, f) != before[f]]
    if not changed:
        return patient
    moved = "contact_email" in changed
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.PATIENT_CONTACT_EMAIL if moved else Entity.PATIENT_PROFILE,
        patient.id,
        patient_id=patient.id,
        detail={
            "before": {f: _plain(before[f]) for f in changed},
            "after": {f: _plain(getattr(patient, f)) for f in changed},
        },
    )
    if moved and before["contact_email"]:
        _tell_old_address(session, str(before["contact_email"]), patient)
    session.flush()
    return patient


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date | datetime) else value
