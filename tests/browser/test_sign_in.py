"""Signing in and out in a real browser, with axe on each state."""

import re
from pathlib import Path

from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import assert_accessible, sign_in, sign_out
from tests.support import PASSWORD, mails_in


def test_sign_in_page_is_accessible(page: Page) -> None:
    page.goto("/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page, "sign-in page")


def test_failed_sign_in_says_so_without_naming_the_account(page: Page) -> None:
    # Arrange
    page.goto("/login")
    # Act
    page.get_by_label("Email").fill("alice@example.org")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    # Assert
    expect(
        page.get_by_text("That email and password do not match an active account.")
    ).to_be_visible()
    assert_accessible(page, "failed sign-in")


def test_alice_signs_in_to_her_dashboard_and_out(page: Page) -> None:
    sign_in(page, "alice@example.org")
    expect(page.get_by_role("heading", name="Hello, Alice Martin")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for name in (
        "Dashboard",
        "Lab results",
        "Treatment plans",
        "Messages",
        "Appointments",
        "Profile",
    ):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    assert_accessible(page, "patient dashboard")
    sign_out(page)
    assert_accessible(page, "signed out")


def test_dr_chen_signs_in_to_the_staff_area(page: Page) -> None:
    sign_in(page, "dr.chen@example.org")
    expect(page.get_by_role("heading", name="Patients", exact=True)).to_be_visible()
    assert_accessible(page, "staff patients")
    sign_out(page)


def test_a_forgotten_password_is_set_again_with_the_keyboard(page: Page, served_app: Flask) -> None:
    from portal import jobs

    page.goto("/login")
    page.get_by_role("link", name="Set a new one").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill("not an address")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_text("Enter a valid email address.").first).to_be_visible()
    assert_accessible(page, "forgot password with an error")
    page.get_by_label("Email").fill("carol@example.org")
    page.get_by_label("Email").press("Enter")
    expect(page.get_by_text("If an account uses that address")).to_be_visible()
    with served_app.app_context():
        jobs.run_once()
    link = next(m for m in mails_in(Path(served_app.config["MAIL_DIR"])) if "reset" in m.body)
    path = re.findall(r"/reset-password/[A-Za-z0-9_-]+", link.body)[0]
    page.goto(path)
    expect(page.get_by_role("heading", name="Set a new password")).to_be_visible()
    assert_accessible(page, "reset password")
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the new password").fill(PASSWORD)
    page.get_by_label("Repeat the new password").press("Enter")
    expect(page.get_by_text("Your new password is set")).to_be_visible()
    sign_in(page, "carol@example.org")
