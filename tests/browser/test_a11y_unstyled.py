"""The core journey when the stylesheet does not load (issue 27; GOV.UK's "CSS fails" case),
with and without JavaScript: sign in, open a result, reply to a message. Everything must be
reachable by its role and name in the plain document, in a sensible order, and pass axe.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import WCAG_TAGS, Pinned, _axe
from tests.browser.pages import LANGUAGES, READERS
from tests.support import PASSWORD


def _no_stylesheets(route: Route) -> None:
    route.abort()


def _assert_accessible(page: Page, label: str, javascript: bool) -> None:
    if not javascript:
        return  # axe is a script: it cannot run where scripts are off (the markup is the same)
    # Target size (2.5.8) excepts targets whose size the browser decides, as it does here.
    options = {
        "runOnly": {"type": "tag", "values": WCAG_TAGS},
        "rules": {"target-size": {"enabled": False}},
    }
    results = _axe.run(page, options=options)
    assert results.violations_count == 0, f"{label}\n{results.generate_report()}"


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_sign_in_read_a_result_and_reply_without_the_stylesheet(
    browser: Browser, pinned_clock: Pinned, javascript: bool
) -> None:
    context = browser.new_context(
        base_url=pinned_clock.url, java_script_enabled=javascript, locale=LANGUAGES["en"]
    )
    try:
        context.route(re.compile(r"\.css(\?.*)?$"), _no_stylesheets)
        page = context.new_page()
        page.goto("/login")
        # The browser's own margin on <body> (portal.css sets none): nothing styled the page.
        margin = page.evaluate("() => getComputedStyle(document.body).marginTop")
        assert margin == "8px", "the stylesheet loaded"
        # The skip link comes first and is plain, visible text when nothing styles it.
        expect(page.get_by_role("link").first).to_have_text("Skip to main content")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_visible()
        page.get_by_label("Email").fill(READERS["unstyled"] or "")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1, name="Hello, Carol Jensen")).to_be_visible()

        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Lab results").click()
        expect(page.get_by_role("heading", level=1, name="Lab results")).to_be_visible()
        page.get_by_role("region", name="Lab results").get_by_role("link").first.click()
        expect(page.get_by_role("heading", name="Current result")).to_be_visible()
        _assert_accessible(
            page, f"a result without the stylesheet (JavaScript: {javascript})", javascript
        )

        nav.get_by_role("link", name="Messages").click()
        expect(page.get_by_role("heading", level=1, name="Messages")).to_be_visible()
        page.get_by_role("link", name="Question about my cholesterol results").click()
        said = f"Sent without the stylesheet (JavaScript: {javascript})"
        page.get_by_role("textbox", name="Your message").fill(said)
        page.get_by_role("button", name="Send reply").click()
        thread = page.get_by_role("list", name="Messages, oldest first")
        expect(thread.get_by_role("listitem").last).to_contain_text(said)
        # In the plain document, the page reads in order: menu, the thread, the reply box.
        order = page.evaluate(
            """() => ['nav', '#thread-messages', '#reply-heading', 'footer'].map(
                 s => document.querySelector(s)).every((el, i, all) => i === 0
                 || (all[i - 1].compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING))"""
        )
        assert order, "the thread page does not read menu, thread, reply box, footer in order"
        _assert_accessible(
            page, f"a thread without the stylesheet (JavaScript: {javascript})", javascript
        )
    finally:
        context.close()
