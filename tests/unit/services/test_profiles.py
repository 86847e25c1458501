"""Changing one's own contact details, language, time zone or mail choice is audited: one
entry naming the fields that changed, never their values; saving nothing new writes none."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import AuditEvent, ReleasePreference
from portal.services import profiles
from tests.conftest import Demo


def _fields(session: Session, entity_type: str) -> list[list[str]]:
    stmt = select(AuditEvent.detail).where(AuditEvent.entity_type == entity_type)
    rows = session.scalars(unscoped(stmt.order_by(AuditEvent.id), "test: the entries"))
    details = [json.loads(d) if isinstance(d, str) else d for d in rows if d]
    return [d["fields"] for d in details if "fields" in d]


def _count(session: Session) -> int:
    return session.scalar(unscoped(select(func.count(AuditEvent.id)), "test: how many")) or 0


def test_each_own_change_is_audited_by_field_name_and_no_change_writes_nothing(
    session: Session, people: Demo
) -> None:
    alice, chen = people.actor("alice"), people.actor("dr_chen")
    before = len(_fields(session, "patient_profile"))
    profiles.set_language(session, alice, "es")
    data = profiles.Preferences(
        contact_phone="+1 555 0100",
        contact_email="alice.new@example.org",
        mail=profiles.MailChoices(True, False, False, False),
        preferred_language="es",
        release_preference=ReleasePreference.AFTER_REVIEW,
    )
    profiles.update_preferences(session, alice, data)
    entries = _fields(session, "patient_profile")[before:]
    assert entries[0] == ["preferred_language"]
    assert "contact_email" in entries[1]
    assert "preferred_language" not in entries[1]
    assert "alice.new@example.org" not in str(entries)

    profiles.set_time_zone(session, chen, "Asia/Taipei")
    assert _fields(session, "user_account")[-1] == ["time_zone"]
    profiles.set_provider_mail(session, chen, messages=True)
    profiles.set_provider_mail(session, chen, messages=False)
    assert _fields(session, "provider_profile")[-2:] == [["mail_messages"], ["mail_messages"]]

    written = _count(session)
    profiles.set_language(session, alice, "es")
    profiles.update_preferences(session, alice, data)
    profiles.set_time_zone(session, chen, "Asia/Taipei")
    profiles.set_provider_mail(session, chen, messages=False)
    assert _count(session) == written
