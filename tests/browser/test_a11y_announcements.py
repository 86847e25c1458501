"""After each htmx swap and each live event: exactly one polite announcement, and focus where
the pattern puts it (issue 27): on the new page's heading after a navigation, on the updated
region's heading after a swap a person asked for, unmoved by a live event.

A recorder (an init script) notes each text #live-region takes, with its politeness; each
step clears it, acts, waits for the first announcement and a moment more for a second one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Pinned
from tests.browser.pages import LANGUAGES, READERS
from tests.support import PASSWORD, bearer, patient_id_of, publish

RECORDER = """
window.__said = [];
let heard = '';  // the region's text as last seen: only a change is an announcement
new MutationObserver(() => {
  const region = document.getElementById('live-region');
  const text = region ? region.textContent.trim() : '';
  if (text !== heard && text) {
    window.__said.push({text, polite: region.getAttribute('aria-live')});
  }
  heard = text;
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
def page(browser: Browser, pinned_clock: Pinned) -> Iterator[Page]:
    context = browser.new_context(base_url=pinned_clock.url, locale=LANGUAGES["en"])
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(READERS["live"] or "")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Hello, Dan Haddad")).to_be_visible()
    try:
        yield page
    finally:
        context.close()


def _said_once(page: Page, act, expected: str) -> None:  # type: ignore[no-untyped-def]
    """`act` leads to exactly one polite announcement, `expected`."""
    page.evaluate("() => { window.__said = []; }")
    act()
    page.wait_for_function("() => window.__said.length > 0", timeout=10_000)
    page.wait_for_timeout(400)  # long enough for a second announcement to come
    said = page.evaluate("() => window.__said")
    assert [(s["text"], s["polite"]) for s in said] == [(expected, "polite")], said


def _focused(page: Page) -> str:
    return str(page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)"))


def test_each_swap_and_live_event_says_one_thing_and_puts_focus_where_it_belongs(
    page: Page, pinned_clock: Pinned
) -> None:
    nav = page.get_by_role("navigation", name="Main")

    # The filters' form swaps the results region; the "Clear filters" link in it is a whole
    # new page. A navigation (boosted link): the new page's title is said, focus is on its heading.
    _said_once(
        page, nav.get_by_role("link", name="Lab results").click, "Lab results · Patient portal"
    )
    expect(page.get_by_role("heading", level=1, name="Lab results")).to_be_focused()

    # A swap a person asked for (the filter): the region's new heading is said and focused.
    page.get_by_label("Test").select_option(label="Potassium")
    filter_button = page.get_by_role("button", name="Filter")
    _said_once(page, filter_button.click, "1 result matching your filters")
    heading = page.get_by_role("heading", level=2, name="1 result matching your filters")
    expect(heading).to_be_focused()

    # The pager swaps the list the same way.
    clear = page.get_by_role("link", name="Clear filters")
    _said_once(page, clear.click, "Lab results · Patient portal")
    # A whole new page, not one nested in the results region (the form's hx-target).
    expect(page.locator("h1")).to_have_count(1)
    count = page.locator("#results-heading").inner_text()  # "27 results": the next page's too
    pages = page.get_by_role("navigation", name="Pages of results")
    _said_once(page, pages.get_by_role("link", name="Older").click, count)
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(page.get_by_role("heading", level=2, name=count)).to_be_focused()

    # A live event: the news is said once, focus stays where the person had it.
    _said_once(page, nav.get_by_role("link", name="Dashboard").click, "Dashboard · Patient portal")
    page.wait_for_timeout(500)  # the socket connects after the page loads
    nav.get_by_role("link", name="Appointments").focus()
    before = _focused(page)
    okafor = bearer(pinned_clock.url, "dr.okafor@example.org")
    dan = patient_id_of(pinned_clock.url, READERS["live"] or "")

    def published() -> None:
        publish(
            pinned_clock.url,
            okafor,
            dan,
            testName="Ferritin",
            testCode="2276-4",
            resultValue="80",
            units="ng/mL",
            referenceRange="30-400",
        )

    _said_once(page, published, "New lab result: Ferritin")
    expect(page.locator("#whats_new")).to_contain_text("Ferritin")
    assert _focused(page) == before
