"""The staff and admin areas in a real browser: axe on every page and main state, a
keyboard-only publishing journey, and (with PORTAL_SCREENSHOTS=1) the docs' screenshots."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from portal.db import utcnow
from tests.browser.conftest import assert_accessible, sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _open_alice(page: Page) -> str:
    page.goto("/staff/patients")
    page.get_by_role("link", name="Alice Martin").click()
    expect(page.get_by_role("heading", name="Alice Martin", level=1)).to_be_visible()
    return page.url


def test_every_staff_page_is_accessible_in_its_main_states(page: Page) -> None:
    sign_in(page, "dr.chen@example.org")
    assert_accessible(page, "staff patients")
    page.get_by_label("Search by name or MRN").fill("MRN-100002")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name=re.compile("matching"))).to_be_visible()
    assert_accessible(page, "staff patients searched")

    chart = _open_alice(page)
    assert_accessible(page, "chart")

    page.get_by_role("link", name="Enter a lab result").click()
    page.get_by_label("Test", exact=True).select_option("2823-3")
    page.get_by_role("button", name="Use this test").click()
    expect(page.get_by_label("Units")).to_have_value("mmol/L")
    assert_accessible(page, "new result form")

    page.goto(chart)
    page.get_by_role("link", name="Potassium").first.click()
    expect(page.get_by_role("heading", name="Versions")).to_be_visible()
    assert_accessible(page, "result with versions")
    page.get_by_role("link", name=re.compile("Correct or amend")).click()
    assert_accessible(page, "correction form")
    page.get_by_role("button", name="Save the new version").click()
    expect(page.get_by_text("Please correct the following:")).to_be_visible()
    assert_accessible(page, "correction form with an error")

    page.goto(chart)
    page.get_by_role("link", name="Type 2 diabetes: metformin and diet").click()
    assert_accessible(page, "treatment plan")
    page.goto(chart)
    page.get_by_role("link", name="Draft a treatment plan").click()
    assert_accessible(page, "plan form")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Messages", level=1)).to_be_visible()
    assert_accessible(page, "inbox")
    page.get_by_role("link", name="Question about my cholesterol results").first.click()
    assert_accessible(page, "thread")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Appointments").click()
    assert_accessible(page, "schedule, day")
    page.get_by_role("link", name="Week", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("^Week of"))).to_be_focused()
    assert_accessible(page, "schedule, week")


def test_every_admin_page_is_accessible_in_its_main_states(page: Page) -> None:
    sign_in(page, "admin@example.org")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Patients").click()
    assert_accessible(page, "admin patients")
    page.get_by_role("link", name="Alice Martin").click()
    expect(page.get_by_role("heading", name="Care team")).to_be_visible()
    assert_accessible(page, "care team")
    page.get_by_role("link", name="Back to patients").click()
    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("Medical record number (MRN)").fill("MRN-100001")
    page.get_by_label("Full name").fill("Someone Else")
    page.get_by_role("button", name="Register and issue a code").click()
    expect(page.get_by_text("Please correct the following:")).to_be_visible()
    assert_accessible(page, "register patient with an error")

    nav.get_by_role("link", name="Users").click()
    assert_accessible(page, "users")
    page.get_by_role("link", name="Add a staff account").click()
    assert_accessible(page, "new staff account")
    page.get_by_role("link", name="Back to users").click()
    page.get_by_role("link", name="Release policy").click()
    assert_accessible(page, "release policy")
    page.get_by_role("link", name="Back to users").click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Keep messages for (days)").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Please correct the following:")).to_be_visible()
    assert_accessible(page, "settings with an error")


def test_a_result_published_by_keyboard_reaches_the_patient_as_new(
    page: Page, browser: Browser, base_url: str
) -> None:
    # Arrange: dr.chen signs in with the keyboard only
    page.goto("/login")
    page.get_by_label("Email").focus()
    page.keyboard.type("dr.chen@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("Demo-Portal-2026!")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # Act: open alice, choose a test, enter a value, publish
    page.get_by_role("link", name="Alice Martin").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Alice Martin", level=1)).to_be_visible()
    page.get_by_role("link", name="Enter a lab result").focus()
    page.keyboard.press("Enter")
    # A boosted navigation swaps the page in, then htmx wires up the new content when it
    # settles: only then does choosing a test fetch its defaults.
    expect(page.get_by_role("heading", name="Enter a lab result for Alice Martin")).to_be_visible()
    expect(page.locator("body")).not_to_have_class(re.compile(r"htmx-(settling|swapping|request)"))
    page.get_by_label("Test", exact=True).focus()
    # Typing on the list picks the test; its change fills the form in (htmx).
    page.keyboard.type("Thyroid")
    expect(page.get_by_label("Units")).to_have_value("m[IU]/L")
    page.get_by_label("Value").focus()
    page.keyboard.type("5.2")
    page.get_by_role("button", name="Publish as final").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Versions")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thyroid stimulating hormone")
    expect(page.locator(".flag").first).to_have_text("High")

    # Assert: alice sees it flagged as new on her dashboard
    context = browser.new_context(base_url=base_url)
    try:
        alice = context.new_page()
        sign_in(alice, "alice@example.org")
        new = alice.get_by_role("region", name="What is new")
        expect(new).to_contain_text("Thyroid stimulating hormone")
    finally:
        context.close()


@pytest.mark.skipif(
    os.environ.get("PORTAL_SCREENSHOTS") != "1", reason="set PORTAL_SCREENSHOTS=1 to refresh them"
)
def test_screenshots_of_the_staff_and_admin_areas(page: Page) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, "dr.chen@example.org")
    page.screenshot(path=SCREENSHOTS / "staff-patients.png", full_page=True)
    chart = _open_alice(page)
    page.screenshot(path=SCREENSHOTS / "staff-chart.png", full_page=True)
    page.get_by_role("link", name="Enter a lab result").click()
    page.get_by_label("Test", exact=True).select_option("718-7")
    page.get_by_role("button", name="Use this test").click()
    expect(page.get_by_label("Units")).to_have_value("g/dL")
    page.screenshot(path=SCREENSHOTS / "staff-new-result.png", full_page=True)
    page.goto(chart)
    page.get_by_role("link", name="Potassium").first.click()
    page.screenshot(path=SCREENSHOTS / "staff-result.png", full_page=True)
    page.goto("/staff/messages")
    page.screenshot(path=SCREENSHOTS / "staff-messages.png", full_page=True)
    visits_week = (utcnow().date() + timedelta(days=9)).isoformat()  # the demo's next visits
    page.goto(f"/staff/appointments?view=week&date={visits_week}")
    page.screenshot(path=SCREENSHOTS / "staff-appointments.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "admin@example.org")
    page.goto("/admin/users")
    page.screenshot(path=SCREENSHOTS / "admin-users.png", full_page=True)
    page.goto("/admin/patients")
    page.screenshot(path=SCREENSHOTS / "admin-patients.png", full_page=True)
    page.goto("/admin/release-policy")
    page.screenshot(path=SCREENSHOTS / "admin-release-policy.png", full_page=True)
