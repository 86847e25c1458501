"""The printable summary of a patient's record in a real browser: axe-clean on screen, and on
paper (print media, A4 and Letter) no navigation and no table wider than the page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import assert_accessible, sign_in

#: The printable width of each paper in CSS pixels (96 per inch), less the 12 mm side margins
#: of the print stylesheet's `@page`.
MM = 96 / 25.4
PAPER_WIDTHS = {"A4": round((210 - 24) * MM), "Letter": round(8.5 * 96 - 24 * MM)}

#: Tables wider than the page, or with a cell whose words run out of it (over the next one or
#: past the page's edge), by caption.
TOO_WIDE = """() => [...document.querySelectorAll('main table')]
    .filter(t => t.scrollWidth > t.parentElement.clientWidth + 1
              || t.getBoundingClientRect().right > document.documentElement.clientWidth + 1
              || [...t.querySelectorAll('th, td')].some(c => c.scrollWidth > c.clientWidth + 1))
    .map(t => t.querySelector('caption').textContent)"""


def test_the_summary_is_accessible_and_prints_without_cut_off_tables(page: Page) -> None:
    sign_in(page, "alice@example.org")
    page.goto("/my/profile")
    page.get_by_role("link", name="Printable summary of my record").click()
    expect(page.get_by_role("heading", level=1, name="My health record")).to_be_visible()
    assert_accessible(page, "record summary")

    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_role("table")).to_have_count(2)
    for paper, width in PAPER_WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 1000})
        assert page.evaluate(TOO_WIDE) == [], f"cut off on {paper}"
        assert page.pdf(format=paper)[:4] == b"%PDF"
