"""A provider made to set up two-step sign-in, then signing in with a code: keyboard only,
axe on each state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import update

from portal.db import get_clock, set_clock
from portal.extensions import db
from portal.models import User
from portal.services import two_factor
from tests.browser.conftest import assert_accessible, sign_out
from tests.support import PASSWORD

OKAFOR = "dr.okafor@example.org"


@pytest.fixture
def required(served_app: Flask) -> Iterator[list[int]]:
    """The clinic requires two-step sign-in; the clock can be moved on by whole time steps.
    Afterwards dr.okafor signs in with the password alone again, for the other tests."""
    served_app.config["TWO_FACTOR_REQUIRED"] = True
    clock, steps = get_clock(), [0]
    set_clock(lambda: clock() + timedelta(seconds=two_factor.STEP_SECONDS * steps[0]))
    yield steps
    served_app.config["TWO_FACTOR_REQUIRED"] = False
    with served_app.app_context():
        db.session.execute(
            update(User)
            .where(User.email == OKAFOR)
            .values(totp_secret=None, totp_enabled_at=None, totp_last_step=None)
        )
        db.session.commit()


def _type_and_enter(page: Page, label: str, text: str) -> None:
    field = page.get_by_label(label)
    field.fill(text)
    field.press("Enter")


def test_a_provider_enrols_at_sign_in_and_then_signs_in_with_a_code(
    page: Page, required: list[int]
) -> None:
    page.goto("/login")
    page.get_by_label("Email").focus()
    page.keyboard.type(OKAFOR)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Two-step sign-in", exact=True)).to_be_visible()
    expect(page.get_by_text("Your clinic requires two-step sign-in")).to_be_visible()
    assert_accessible(page, "two-step sign-in required")
    page.get_by_role("button", name="Set up two-step sign-in").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name="QR code")).to_be_visible()
    assert_accessible(page, "two-step sign-in setup")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    _type_and_enter(page, "Code from your app", "000000")
    expect(page.get_by_text(two_factor.WRONG_CODE).first).to_be_visible()
    assert_accessible(page, "two-step sign-in setup with a wrong code")
    _type_and_enter(page, "Code from your app", two_factor.current_code(secret))
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_focused()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    assert_accessible(page, "recovery codes")

    sign_out(page)
    required[0] += 1  # the next 30 s step: the code used to enrol is spent
    page.get_by_label("Email").focus()
    page.keyboard.type(OKAFOR)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert_accessible(page, "code at sign-in")
    _type_and_enter(page, "Code", two_factor.current_code(secret))
    expect(page.get_by_role("heading", name="Patients", exact=True)).to_be_visible()
    sign_out(page)
