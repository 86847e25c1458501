"""The patient area in a real browser: axe on every page in its main states, a keyboard-only
journey, the same journey without JavaScript, and (on request) screenshots for the docs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect

from portal.access import Actor
from portal.extensions import db
from portal.services import accounts
from tests.browser.conftest import assert_accessible, sign_in, sign_out
from tests.support import PASSWORD

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _open(page: Page, link: str, heading: str) -> None:
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()


def test_every_patient_page_is_accessible_with_data_and_with_errors(page: Page) -> None:
    sign_in(page, "alice@example.org")
    assert_accessible(page, "dashboard")

    _open(page, "Lab results", "Lab results")
    assert_accessible(page, "lab results")
    page.get_by_label("Test").select_option(label="Hemoglobin A1c")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name=re.compile("matching your filters"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"test=4548-4"))
    assert_accessible(page, "lab results filtered (htmx swap)")
    page.get_by_role("link", name="Hemoglobin A1c").first.click()
    expect(page.locator("svg[role=img]")).to_be_visible()
    assert_accessible(page, "lab result with trend")
    page.goto("/my/lab-results?from=nonsense")
    assert_accessible(page, "lab results with a date error")

    _open(page, "Treatment plans", "Treatment plans")
    assert_accessible(page, "treatment plans")
    page.get_by_role("link", name="Type 2 diabetes: metformin and diet").click()
    assert_accessible(page, "treatment plan")

    _open(page, "Messages", "Messages")
    assert_accessible(page, "messages")
    page.get_by_role("link", name="Question about my cholesterol results").click()
    assert_accessible(page, "conversation")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_text("Please correct the following:")).to_be_visible()
    assert_accessible(page, "conversation with an error")
    page.goto("/my/messages/new")
    assert_accessible(page, "new message")

    _open(page, "Appointments", "Appointments")
    assert_accessible(page, "appointments")
    page.get_by_role("link", name="Request an appointment").click()
    assert_accessible(page, "request an appointment")
    page.get_by_role("button", name="Request appointment").click()
    expect(page.get_by_text("Please correct the following:")).to_be_visible()
    assert_accessible(page, "request with an error")

    _open(page, "Profile", "Profile")
    assert_accessible(page, "profile")
    page.get_by_label("Contact email").fill("not an email")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_label("Contact email")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "profile with an error")


@pytest.fixture(scope="module")
def empty_patient(served_app: Flask) -> str:
    """A patient with an account and nothing else: the empty states."""
    email = "erin.empty@example.org"
    with served_app.app_context():
        s = db.session
        if accounts.find_user_by_email(s, email) is None:
            admin = Actor.of(accounts.find_user_by_email(s, "admin@example.org"))
            patient = accounts.register_patient(
                s,
                admin,
                medical_record_number="MRN-EMPTY-1",
                display_name="Erin Empty",
                contact_email=email,
            )
            code = accounts.issue_activation_code(
                s, admin, patient, portal_url=served_app.config["PORTAL_URL"]
            )
            accounts.activate_patient(
                s, code=code, email=email, password=PASSWORD, date_of_birth=None
            )
            s.commit()
    return email


def test_the_empty_states_are_accessible(page: Page, empty_patient: str) -> None:
    sign_in(page, empty_patient)
    expect(page.get_by_text("Nothing new since you last looked.")).to_be_visible()
    assert_accessible(page, "empty dashboard")
    for link in ("Lab results", "Treatment plans", "Messages", "Appointments"):
        _open(page, link, link)
        assert_accessible(page, f"empty {link.lower()}")


def _tab_to(page: Page, target: Locator, limit: int = 120) -> None:
    """Press Tab until `target` has the keyboard focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def test_a_keyboard_only_journey_from_sign_in_to_sign_out(page: Page) -> None:
    # Arrange: sign in with the keyboard
    page.goto("/login")
    _tab_to(page, page.get_by_label("Email"))
    page.keyboard.type("alice@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Hello, Alice Martin")).to_be_visible()

    # Act: open the corrected potassium result and read its history
    _tab_to(
        page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Lab results")
    )
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Lab results")).to_be_visible()
    _tab_to(page, page.get_by_label("Test"))
    page.get_by_label("Test").select_option(label="Potassium")  # a select takes arrow keys too
    _tab_to(page, page.get_by_role("button", name="Filter"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="1 result matching your filters")).to_be_focused()
    _tab_to(page, page.get_by_role("link", name="Potassium", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Potassium")).to_be_visible()
    history = page.get_by_role("heading", name="Version history")
    history.scroll_into_view_if_needed()
    expect(page.get_by_text("haemolysed").first).to_be_visible()

    # Act: send a message with an attachment
    _tab_to(
        page,
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name=re.compile("^Messages")
        ),
    )
    page.keyboard.press("Enter")
    _tab_to(page, page.get_by_role("link", name="Write a new message"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="New message")).to_be_visible()
    _tab_to(page, page.get_by_label("Subject"))
    page.keyboard.type("Keyboard journey")
    page.keyboard.press("Tab")
    page.keyboard.type("Sent without a mouse.\nSecond line.")
    page.get_by_label("Attach files").set_input_files(
        files=[{"name": "reading.png", "mimeType": "image/png", "buffer": PNG}]
    )
    _tab_to(page, page.get_by_role("button", name="Send message"))
    page.keyboard.press("Enter")

    # Assert
    expect(page.get_by_role("heading", level=1, name="Keyboard journey")).to_be_visible()
    expect(page.get_by_role("link", name="reading.png")).to_be_visible()
    expect(page.get_by_text("Message sent.")).to_be_visible()
    _tab_to(page, page.get_by_role("button", name="Sign out"), limit=200)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_reading_a_result_and_sending_a_message_work_without_javascript(
    browser: Browser, base_url: str
) -> None:
    context = browser.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, "alice@example.org")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Lab results").click()
        page.get_by_label("Test").select_option(label="Potassium")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"test=2823-3"))
        page.get_by_role("link", name="Potassium", exact=True).click()
        expect(page.get_by_text("Version 2: Corrected")).to_be_visible()

        page.goto("/my/messages")
        page.get_by_role("link", name="Question about my cholesterol results").click()
        page.get_by_label("Your message").fill("Sent with JavaScript turned off.")
        page.get_by_role("button", name="Send reply").click()
        expect(page.get_by_text("Message sent.")).to_be_visible()
        expect(page.get_by_text("Sent with JavaScript turned off.")).to_be_visible()
        sign_out(page)
    finally:
        context.close()


@pytest.mark.skipif(
    os.environ.get("PORTAL_SCREENSHOTS") != "1", reason="set PORTAL_SCREENSHOTS=1 to refresh"
)
def test_screenshots_of_the_patient_pages(page: Page) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, "bob@example.org")

    def shot(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"patient-{name}.png"), full_page=True)

    shot("dashboard")
    _open(page, "Lab results", "Lab results")
    shot("lab-results")
    page.get_by_label("Test").select_option(label="Potassium")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="Potassium", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Potassium")).to_be_visible()
    shot("lab-result")
    page.goto("/my/lab-results?test=4548-4")
    page.get_by_role("link", name="Hemoglobin A1c").first.click()
    expect(page.locator("svg[role=img]")).to_be_visible()
    shot("lab-result-trend")
    _open(page, "Treatment plans", "Treatment plans")
    page.get_by_role("link", name="Type 2 diabetes: metformin and diet").click()
    shot("treatment-plan")
    _open(page, "Messages", "Messages")
    shot("messages")
    page.get_by_role("link", name="Question about my cholesterol results").click()
    shot("conversation")
    _open(page, "Appointments", "Appointments")
    shot("appointments")
    _open(page, "Profile", "Profile")
    shot("profile")
