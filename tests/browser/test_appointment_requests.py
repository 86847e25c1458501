"""Issue 12 in a real browser: alice (reading times in New York) requests a visit; dr.chen
answers it from the "Appointment requests" queue with the keyboard, proposing another time;
alice's dashboard shows the new time on her clocks. axe on the queue, the proposal page and
the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.access import Actor
from portal.extensions import db
from portal.models import User
from portal.services import profiles
from portal.transactions import unit_of_work
from portal.zones import clinic_zone
from tests.browser.conftest import assert_accessible, sign_in, sign_out
from tests.browser.test_patient_journeys import _tab_to

NEW_YORK = ZoneInfo("America/New_York")


def _shown(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as the pages write it (`web.templating.format_datetime`)."""
    return moment.astimezone(zone).strftime("%-d %b %Y, %H:%M %Z")


@pytest.fixture
def alice_back_in_the_clinics_zone(served_app: Flask) -> Iterator[None]:
    yield  # the served app is shared by the browser tests: put her choice back
    with served_app.app_context():
        alice = db.session.scalar(select(User).where(User.email == "alice@example.org"))
        assert alice is not None
        with unit_of_work() as s:
            profiles.set_time_zone(s, Actor.of(alice), None)


@pytest.mark.usefixtures("alice_back_in_the_clinics_zone")
def test_a_request_answered_from_the_queue_reaches_alice_in_her_zone(
    page: Page, served_app: Flask
) -> None:
    # Arrange: alice reads times in New York and asks for the first free time.
    sign_in(page, "alice@example.org")
    page.goto("/my/profile")
    page.get_by_label("Show times in").select_option("America/New_York")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_text("Your time zone is saved.")).to_be_visible()
    page.goto("/my/appointments/new")
    first = page.locator("#start_at option:not([value=''])").first.get_attribute("value")
    assert first is not None
    page.get_by_label("Time", exact=True).select_option(first)
    page.get_by_role("button", name="Request appointment").click()
    expect(page.get_by_text("Your request was sent.")).to_be_visible()
    sign_out(page)
    with served_app.app_context():
        clinic = clinic_zone()
    asked = datetime.fromisoformat(first)

    # Act: dr.chen, keyboard only, proposes the next free time.
    sign_in(page, "dr.chen@example.org")
    nav = page.get_by_role("navigation", name="Main")
    _tab_to(page, nav.get_by_role("link", name="Appointments"))
    page.keyboard.press("Enter")
    _tab_to(page, page.get_by_role("link", name="Appointment requests"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Appointment requests")).to_be_visible()
    assert_accessible(page, "appointment requests")
    # The hidden words of the link's name tell this request from any other.
    name = rf"^Propose another time\s*: Alice Martin, {re.escape(_shown(asked, clinic))}$"
    propose = page.get_by_role("link", name=re.compile(name))
    _tab_to(page, propose, limit=300)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Propose another time")).to_be_visible()
    assert_accessible(page, "propose another time")
    choice = page.get_by_label("Another time")
    new_time = page.locator("#start_at option:not([value=''])").first.get_attribute("value")
    assert new_time is not None
    _tab_to(page, choice)
    choice.select_option(new_time)  # a select takes arrow keys too
    _tab_to(page, page.get_by_role("button", name="Propose this time"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("The new time is proposed")).to_be_visible()
    sign_out(page)

    # Assert: alice accepts the proposed time from her list, keyboard only ...
    sign_in(page, "alice@example.org")
    page.goto("/my/appointments")
    expect(page.get_by_text("Your provider proposed this time instead")).to_be_visible()
    assert_accessible(page, "a proposed time to accept")
    _tab_to(page, page.get_by_role("button", name=re.compile(r"^Accept")))
    page.keyboard.press("Enter")
    expect(page.get_by_text("is booked.")).to_be_visible()
    # ... and her dashboard has the new time on New York's clocks.
    page.goto("/")
    moved = datetime.fromisoformat(new_time)
    assert moved != asked
    visits = page.get_by_role("region", name="Next appointments")
    expect(visits.get_by_text(_shown(moved, NEW_YORK))).to_be_visible()
    assert_accessible(page, "dashboard in New York time")
