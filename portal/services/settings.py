"""Clinic-wide settings an admin changes: message retention and the results' release policy.

`flask --app wsgi messages purge` (portal.services.retention) enforces the retention period.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require
from portal.models import AuditAction, ClinicSetting, Entity, ReleaseMode, ReleasePolicy
from portal.services import labs
from portal.services.catalog import CATALOG
from portal.services.errors import ServiceError

MESSAGE_RETENTION_DAYS = "message_retention_days"
#: Medical correspondence is usually kept for years; below a month it would lose live threads.
RETENTION_MIN_DAYS = 30
#: The operator's floor unless MESSAGE_RETENTION_MIN_DAYS says otherwise: six years, about
#: what medical correspondence is kept for.
RETENTION_DEFAULT_FLOOR_DAYS = 6 * 365
RETENTION_MAX_DAYS = 36_500
MAX_DELAY_HOURS = 24 * 30


class SettingError(ServiceError):
    """A clinic setting that cannot be saved."""


def _get(session: Session, key: str) -> str | None:
    row = session.get(ClinicSetting, key)
    return row.value if row is not None else None


def message_retention_days(session: Session) -> int | None:
    """Days messages are kept, or None when they are kept for good (the default)."""
    value = _get(session, MESSAGE_RETENTION_DAYS)
    return int(value) if value else None


def retention_floor() -> int:
    """The shortest retention an admin may set: the operator's (MESSAGE_RETENTION_MIN_DAYS,
    six years by default), never below RETENTION_MIN_DAYS. L9 (docs/security.md): one admin
    alone cannot set a period that deletes every thread; only the operator, who runs the
    portal, can lower the floor."""
    configured = current_app.config.get("MESSAGE_RETENTION_MIN_DAYS") if current_app else None
    return max(RETENTION_MIN_DAYS, int(configured or RETENTION_DEFAULT_FLOOR_DAYS))


def set_message_retention_days(session: Session, actor: Actor, days: int | None) -> None:
    """Set (or clear, with None) the retention period, within sane bounds; audited."""
    require(actor, Permission.SETTINGS_MANAGE)
    floor = retention_floor()
    if days is not None and not floor <= days <= RETENTION_MAX_DAYS:
        raise SettingError(
            "retention_days",
            f"Enter a number of days from {floor} to {RETENTION_MAX_DAYS}, "
            "or leave it empty to keep messages for good.",
        )
    row = session.get(ClinicSetting, MESSAGE_RETENTION_DAYS)
    value = "" if days is None else str(days)
    if row is None:
        session.add(ClinicSetting(key=MESSAGE_RETENTION_DAYS, value=value))
    else:
        row.value = value
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.CLINIC_SETTING,
        MESSAGE_RETENTION_DAYS,
        detail={"value": value},
    )
    session.flush()


def category_rules_on(session: Session) -> bool:
    """Whether the category rules below apply (off by default: every result is released when
    published, unless the patient or a clinician's hold on that one result says otherwise)."""
    return labs.category_rules_on(session)


def set_category_rules(session: Session, actor: Actor, on: bool) -> int:
    """Turn the category rules on or off; every result waiting for release gets the time the
    rules give it now (off: released at the timer's next run). Audited; returns how many
    waiting results changed."""
    require(actor, Permission.SETTINGS_MANAGE)
    value = "on" if on else "off"
    row = session.get(ClinicSetting, labs.CATEGORY_RULES)
    if row is None:
        session.add(ClinicSetting(key=labs.CATEGORY_RULES, value=value))
    else:
        row.value = value
    session.flush()
    rescheduled = labs.reschedule_held(session, None)
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.CLINIC_SETTING,
        labs.CATEGORY_RULES,
        detail={"value": value, "held_results_rescheduled": rescheduled},
    )
    return rescheduled


def categories() -> list[str]:
    """Every test category the pick-list knows, in a stable order."""
    return sorted({t.category for t in CATALOG} | {"general"})


@dataclass(frozen=True, slots=True)
class PolicyRow:
    category: str
    mode: ReleaseMode
    delay_hours: int | None
    never_auto_release: bool

    @property
    def releases_on_publish(self) -> bool:
        return self.mode is ReleaseMode.ON_PUBLISH

    @property
    def holds_for_review(self) -> bool:
        return self.mode is ReleaseMode.HOLD_FOR_REVIEW


def release_policies(session: Session) -> list[PolicyRow]:
    """The policy of each known category (categories without a row release on publish)."""
    rows = {p.category: p for p in session.scalars(select(ReleasePolicy))}
    names = sorted(set(categories()) | set(rows))
    found = []
    for name in names:
        p = rows.get(name)
        found.append(
            PolicyRow(name, p.mode, p.delay_hours, p.never_auto_release)
            if p
            else PolicyRow(name, ReleaseMode.ON_PUBLISH, None, False)
        )
    return found


def set_release_policy(
    session: Session,
    actor: Actor,
    *,
    category: str,
    mode: ReleaseMode,
    delay_hours: int | None,
    never_auto_release: bool,
) -> ReleasePolicy:
    """Change when one category's published results reach patients; audited."""
    require(actor, Permission.SETTINGS_MANAGE)
    category = category.strip().lower()
    if not category:
        raise SettingError("category", "Choose a category.")
    if mode is ReleaseMode.AUTO_AFTER_DELAY:
        if delay_hours is None or not 1 <= delay_hours <= MAX_DELAY_HOURS:
            raise SettingError("delay_hours", f"Enter a delay from 1 to {MAX_DELAY_HOURS} hours.")
    else:
        delay_hours = None
    row = session.scalar(select(ReleasePolicy).where(ReleasePolicy.category == category))
    if row is None:
        row = ReleasePolicy(category=category)
        session.add(row)
    row.mode = mode
    row.delay_hours = delay_hours
    row.never_auto_release = never_auto_release
    session.flush()
    rescheduled = labs.reschedule_held(session, category)
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.RELEASE_POLICY,
        row.id,
        detail={
            "category": category,
            "mode": str(mode),
            "delay_hours": delay_hours,
            "never_auto_release": never_auto_release,
            "held_results_rescheduled": rescheduled,
        },
    )
    return row
