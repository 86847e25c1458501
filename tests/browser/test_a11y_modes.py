"""Every page of each role, in each of its main states and in each language, as people who
change how pages look read it (issue 27): reduced motion, forced colours (with axe again and a
Tab walk), 400 % zoom, 200 % text with WCAG 1.4.12's spacing.

One page load serves every check: the media, viewport and spacing change in place. The probes
and the rule each one guards are in tests/browser/a11y.py; the pages in tests/browser/pages.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import a11y
from tests.browser.conftest import Pinned, _axe
from tests.browser.pages import LANGUAGES, PAGES, PageSpec, Readers, readers
from tests.untranslated import PAGE_TEXTS, english_left

#: How many Tab presses a walk takes at most: the header, the filters and the first rows.
TAB_LIMIT = 30
#: How many focusable elements are focused at 400 % (all of them on most pages).
FOCUS_LIMIT = 120
#: axe's rules that forced colours can change the outcome of (the others read the markup,
#: which the mode does not change, and run in normal colours in the journeys' tests).
AXE_COLOUR_RULES = ["color-contrast", "link-in-text-block"]
CASES = [(language, spec) for language in LANGUAGES for spec in PAGES]


@pytest.fixture(scope="module")
def signed_in(browser: Browser, pinned: Pinned) -> Iterator[Readers]:
    with readers(browser, pinned) as made:
        yield made


def _page(signed_in: Readers, spec: PageSpec, language: str) -> Page:
    context = signed_in.context(spec.reader, language)
    return context.pages[0] if context.pages else context.new_page()


@pytest.mark.parametrize(
    ("language", "spec"), CASES, ids=[f"{lang}-{spec.reader}-{spec.name}" for lang, spec in CASES]
)
def test_each_page_in_each_mode(
    signed_in: Readers, pinned_clock: Pinned, language: str, spec: PageSpec
) -> None:
    page = _page(signed_in, spec, language)
    page.emulate_media(reduced_motion="no-preference", forced_colors="none")
    page.set_viewport_size({"width": 1280, "height": 800})
    response = page.goto(spec.url(pinned_clock))
    # A page in an error state answers 422, as the form it shows would.
    assert response is not None, spec.path
    assert response.status in (200, 422), f"{spec.path}: {response.status}"
    expect(page.locator("html")).to_have_attribute("lang", language)
    found: dict[str, list[str]] = {}
    if language != "en":
        found["English left on the page"] = english_left(page.evaluate(PAGE_TEXTS), language)

    page.emulate_media(reduced_motion="reduce")
    found["reduced motion"] = page.evaluate(a11y.REDUCED_MOTION)

    page.emulate_media(forced_colors="active")
    found["forced colours"] = page.evaluate(a11y.FORCED_COLOURS)
    if language == "en":  # the system colours, not the words, decide these rules' outcome
        results = _axe.run(page, options={"runOnly": {"type": "rule", "values": AXE_COLOUR_RULES}})
        if results.violations_count:
            found["axe in forced colours"] = [results.generate_report()]
    found["Tab walk in forced colours"] = a11y.tab_walk(page, TAB_LIMIT)[1]
    page.emulate_media(forced_colors="none")

    page.set_viewport_size({"width": 320, "height": 256})
    found["400 % zoom (320 x 256)"] = page.evaluate(a11y.REFLOW_AND_FOCUS, FOCUS_LIMIT)

    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate(a11y.APPLY_TEXT_SPACING, a11y.TEXT_SPACING_CSS)
    found["200 % text with WCAG 1.4.12 spacing"] = page.evaluate(a11y.TEXT_FITS)

    wrong = {check: problems for check, problems in found.items() if problems}
    assert not wrong, f"{spec.path} in {language}:\n" + "\n".join(
        f"- {check}:\n    " + "\n    ".join(problems) for check, problems in wrong.items()
    )
