"""Clinic settings: message retention and the results' release policy."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import ReleaseMode, ReleasePolicy
from portal.services import settings
from tests.conftest import post


def test_the_retention_period_is_validated_and_saved(session: Session, as_user) -> None:
    client = as_user("admin")
    too_short = post(client, "/admin/settings", {"retention_days": "3"})
    assert too_short.status_code == 422
    assert 'aria-describedby="retention_days-hint retention_days-error"' in too_short.get_data(
        as_text=True
    )
    assert post(client, "/admin/settings", {"retention_days": "3650"}).status_code == 303
    assert settings.message_retention_days(session) == 3650
    assert post(client, "/admin/settings", {"retention_days": ""}).status_code == 303
    assert settings.message_retention_days(session) is None


def test_an_admin_changes_a_categorys_release_policy(session: Session, as_user) -> None:
    client = as_user("admin")
    no_delay = post(
        client, "/admin/release-policy", {"category": "chemistry", "mode": "auto_after_delay"}
    )
    assert no_delay.status_code == 422
    saved = post(
        client,
        "/admin/release-policy",
        {"category": "chemistry", "mode": "auto_after_delay", "delay_hours": "72"},
    )
    assert saved.status_code == 303
    policy = session.scalar(select(ReleasePolicy).where(ReleasePolicy.category == "chemistry"))
    assert policy is not None
    assert (policy.mode, policy.delay_hours) == (ReleaseMode.AUTO_AFTER_DELAY, 72)
    assert "72 hours after publishing" in client.get("/admin/release-policy").get_data(as_text=True)


@pytest.mark.usefixtures("category_rules")
def test_providers_see_the_policy_on_the_result_form(as_user, people) -> None:
    page = as_user("dr_chen").get(
        f"/staff/patients/{people.user('alice').patient.id}/results/new?test_code=21636-6"
    )
    assert "Held until a provider has reviewed it" in page.get_data(as_text=True)
