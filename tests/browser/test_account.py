"""One's own account, for every role: signed-in devices and the password, accessible and
usable with the keyboard, and a device signed out from here is signed out for real."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import assert_accessible, sign_in


@pytest.mark.parametrize(
    ("email", "nav"),
    [
        ("alice@example.org", None),
        ("dr.chen@example.org", "Profile"),
        ("admin@example.org", "Profile"),
    ],
)
def test_the_account_page_lists_devices_and_signs_one_out(
    browser: Browser, base_url: str, email: str, nav: str | None
) -> None:
    # Arrange: the same person on a phone and on this computer
    phone = browser.new_context(base_url=base_url, user_agent="Mozilla/5.0 (iPhone) Safari/605.1")
    laptop = browser.new_context(base_url=base_url)
    try:
        phone_page, page = phone.new_page(), laptop.new_page()
        sign_in(phone_page, email)
        sign_in(page, email)
        # Act: open the account page the way the person would
        if nav:
            page.get_by_role("navigation", name="Main").get_by_role("link", name=nav).click()
        else:
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
            page.get_by_role("link", name="See and sign out your devices").click()
        expect(page.get_by_role("heading", name="Signed-in devices")).to_be_visible()
        assert_accessible(page, f"account of {email}")
        expect(page.get_by_text("Safari on iPhone")).to_be_visible()
        # A wrong current password: the form says so, accessibly
        page.get_by_label("Current password").fill("not my password at all")
        page.get_by_label("New password", exact=True).fill("a long and brand new passphrase")
        page.get_by_label("Repeat the new password").fill("a long and brand new passphrase")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_text("That is not your current password.").first).to_be_visible()
        assert_accessible(page, f"account of {email} with an error")
        # Sign every other device out, with the keyboard
        page.get_by_role("button", name="Sign out everywhere else").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_text("Every other device is signed out.", exact=True)).to_be_visible()
        # Assert: the phone is back at the sign-in page on its next step
        phone_page.reload()
        expect(phone_page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        phone.close()
        laptop.close()
