"""The accessibility tree of the five core pages, compared exactly with the snapshots kept in
tests/browser/aria/<language>/ (issue 27): a lost heading, landmark, label or name fails, and so
does an extra one. Not a subset match (`to_match_aria_snapshot` would accept additions).

After a deliberate change, write the snapshots again and review the diff:
    UPDATE_ARIA_SNAPSHOTS=1 .venv/bin/python -m pytest tests/browser/test_a11y_aria.py
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Pinned
from tests.browser.pages import LANGUAGES, Readers, readers

SNAPSHOTS = Path(__file__).parent / "aria"
UPDATE = os.environ.get("UPDATE_ARIA_SNAPSHOTS") == "1"
PAGES = {
    "dashboard": "/my/",
    "lab-results": "/my/lab-results",
    "lab-result": "/my/lab-results/{bob_trend}",
    "thread": "/my/messages/{bob_conversation}",
    "booking": "/my/appointments/new",
}
#: Opening a result, a thread or the appointments marks their notices read, which changes the
#: dashboard and the badges: opened first, so every run snapshots the same state.
SETTLE = ["/my/lab-results/{bob_trend}", "/my/messages/{bob_conversation}", "/my/appointments"]


@pytest.fixture(scope="module")
def signed_in(browser: Browser, pinned: Pinned) -> Iterator[Readers]:
    with readers(browser, pinned) as made:
        yield made


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_core_pages_keep_their_accessibility_tree(
    signed_in: Readers, pinned_clock: Pinned, language: str
) -> None:
    context = signed_in.context("snapshots", language)
    page = context.new_page()
    for path in SETTLE:
        page.goto(path.format(**pinned_clock.ids))
    differences = []
    for name, path in PAGES.items():
        page.goto(path.format(**pinned_clock.ids))
        expect(page.locator("html")).to_have_attribute("lang", language)
        tree = page.locator("body").aria_snapshot() + "\n"
        kept = SNAPSHOTS / language / f"{name}.yml"
        if UPDATE or not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(tree, encoding="utf-8")
            continue
        expected = kept.read_text(encoding="utf-8")
        if tree != expected:
            diff = difflib.unified_diff(
                expected.splitlines(), tree.splitlines(), str(kept), "this run", lineterm=""
            )
            differences.append("\n".join(diff))
    assert not differences, "\n\n".join(differences)
