"""Readable on a small phone (320 px) and at 200 % zoom (a 1280 px screen shows 640 CSS px):
no page scrolls sideways; wide tables scroll inside their own region instead."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in

PAGES = {
    "alice@example.org": [
        "/my/",
        "/my/lab-results",
        "/my/treatment-plans",
        "/my/messages",
        "/my/appointments",
        "/my/profile",
        "/my/record",
        "/account",
    ],
    "dr.chen@example.org": [
        "/staff/patients",
        "/staff/messages",
        "/staff/appointments",
        "/account",
    ],
    "admin@example.org": ["/admin/patients", "/admin/users", "/admin/audit", "/account"],
}


@pytest.mark.parametrize("width", [320, 640])
@pytest.mark.parametrize("email", list(PAGES))
def test_no_page_scrolls_sideways(browser: Browser, base_url: str, email: str, width: int) -> None:
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        sign_in(page, email)
        for path in PAGES[email]:
            page.goto(path)
            expect(page.locator("main h1").first).to_be_visible()
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} at {width}px is {overflow}px wider than the screen"
    finally:
        context.close()
