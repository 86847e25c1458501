"""The patient's main pages in Traditional Chinese pass axe too (lang, names and labels in the
language they are written in), reached with the switcher in the footer."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import assert_accessible, sign_in


def _choose(page: Page, tag: str) -> None:
    # By id: the label is written in the language the page is in now.
    page.locator("#language-choice").select_option(tag)
    page.locator(".language-form button").click()
    expect(page.locator("html")).to_have_attribute("lang", tag)


def test_the_main_patient_pages_pass_axe_in_traditional_chinese(page: Page) -> None:
    sign_in(page, "alice@example.org")
    try:
        _choose(page, "zh-Hant")
        expect(page.get_by_role("heading", level=1, name="Alice Martin，您好")).to_be_visible()
        assert_accessible(page, "dashboard (zh-Hant)")

        nav = page.get_by_role("navigation", name="主選單")
        nav.get_by_role("link", name="檢驗結果").click()
        expect(page.get_by_role("heading", level=1, name="檢驗結果")).to_be_visible()
        assert_accessible(page, "lab results (zh-Hant)")

        page.get_by_role("region", name="檢驗結果").get_by_role("link").first.click()
        expect(page.get_by_role("heading", name="目前結果")).to_be_visible()
        assert_accessible(page, "a lab result (zh-Hant)")

        nav.get_by_role("link", name="訊息").click()
        expect(page.get_by_role("heading", level=1, name="訊息")).to_be_visible()
        assert_accessible(page, "messages (zh-Hant)")
    finally:
        # The served app is shared: alice reads English again for the other browser tests.
        _choose(page, "en")
