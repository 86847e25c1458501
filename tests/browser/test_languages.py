"""The patient's main pages in Traditional Chinese and in Spanish pass axe too (lang, names
and labels in the language they are written in), reached with the switcher in the footer."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import assert_accessible, sign_in

#: Per language: the dashboard's heading, then the names of the main menu, the lab results
#: (link, heading and region), a result's current version, and the messages.
NAMES = {
    "zh-Hant": ("Alice Martin，您好", "主選單", "檢驗結果", "目前結果", "訊息"),
    "es": (
        "Hola, Alice Martin",
        "Principal",
        "Resultados de laboratorio",
        "Resultado actual",
        "Mensajes",
    ),
}


def _choose(page: Page, tag: str) -> None:
    # By id: the label is written in the language the page is in now.
    page.locator("#language-choice").select_option(tag)
    page.locator(".language-form button").click()
    expect(page.locator("html")).to_have_attribute("lang", tag)


def test_the_main_patient_pages_pass_axe_in_each_language(page: Page) -> None:
    sign_in(page, "alice@example.org")
    try:
        for tag, (hello, menu, results, current, messages) in NAMES.items():
            _choose(page, tag)
            page.goto("/my/")
            expect(page.get_by_role("heading", level=1, name=hello)).to_be_visible()
            assert_accessible(page, f"dashboard ({tag})")

            nav = page.get_by_role("navigation", name=menu)
            nav.get_by_role("link", name=results).click()
            expect(page.get_by_role("heading", level=1, name=results)).to_be_visible()
            assert_accessible(page, f"lab results ({tag})")

            page.get_by_role("region", name=results).get_by_role("link").first.click()
            expect(page.get_by_role("heading", name=current)).to_be_visible()
            assert_accessible(page, f"a lab result ({tag})")

            nav.get_by_role("link", name=messages).click()
            expect(page.get_by_role("heading", level=1, name=messages)).to_be_visible()
            assert_accessible(page, f"messages ({tag})")
    finally:
        # The served app is shared: alice reads English again for the other browser tests.
        _choose(page, "en")
