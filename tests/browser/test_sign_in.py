"""Signing in and out in a real browser, with axe on each state."""

from playwright.sync_api import Page, expect

from tests.browser.conftest import assert_accessible, sign_in, sign_out


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
