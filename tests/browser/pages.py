"""Every page of each role in its main states, for the checks that go over all of them
(tests/browser/test_a11y_modes.py and the untranslated-text test). A new page belongs here:
it is then checked in each mode and language.

The paths name the pinned demo's records by key (`{result}`: see `Pinned.ids`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from playwright.sync_api import Browser, BrowserContext, StorageState, expect

from tests.browser.conftest import EMPTY_PATIENT, Pinned
from tests.support import PASSWORD

#: The languages every page is checked in, with the browser locale that asks for each.
LANGUAGES = {"en": "en-GB", "zh-Hant": "zh-TW", "es": "es-ES"}

#: Who reads the pages: the demo's accounts (None: a visitor, signed out).
READERS = {
    "visitor": None,
    "patient": "alice@example.org",
    "empty": EMPTY_PATIENT,
    "provider": "dr.chen@example.org",
    "admin": "admin@example.org",
    # Alice in a session of her own, reading her son Sam's record under her parent's grant.
    "proxy": "alice@example.org",
    # Each of these reads only in the tests named: what they open changes what is "new".
    "snapshots": "bob@example.org",  # test_a11y_aria.py
    "unstyled": "carol@example.org",  # test_a11y_unstyled.py (sends replies)
    "live": "dan@example.org",  # test_a11y_announcements.py (gets results published)
}


#: Readers who open someone else's record (the record switcher) once signed in.
ACTING_FOR = {"proxy": "Sam Martin"}


@dataclass(frozen=True)
class PageSpec:
    reader: str
    name: str
    path: str

    def url(self, pinned: Pinned) -> str:
        return self.path.format(**pinned.ids)


def _pages(reader: str, *pairs: tuple[str, str]) -> list[PageSpec]:
    return [PageSpec(reader, name, path) for name, path in pairs]


PAGES: list[PageSpec] = [
    *_pages(
        "visitor",
        ("sign-in", "/login"),
        ("forgot-password", "/forgot-password"),
        ("activate", "/activate"),
    ),
    *_pages(
        "patient",
        ("dashboard", "/my/"),
        ("lab-results", "/my/lab-results"),
        ("lab-results-filtered", "/my/lab-results?test=2823-3"),
        ("lab-results-date-error", "/my/lab-results?from=nonsense"),
        ("lab-result-corrected", "/my/lab-results/{result}"),
        ("lab-result-with-trend", "/my/lab-results/{trend}"),
        ("treatment-plans", "/my/treatment-plans"),
        ("treatment-plan", "/my/treatment-plans/{plan}"),
        ("treatment-plan-compare", "/my/treatment-plans/{plan}/compare"),
        ("messages", "/my/messages"),
        ("conversation", "/my/messages/{conversation}"),
        ("new-message", "/my/messages/new"),
        ("appointments", "/my/appointments"),
        ("request-appointment", "/my/appointments/new"),
        ("reschedule-appointment", "/my/appointments/{appointment}/reschedule"),
        ("profile", "/my/profile"),
        ("record", "/my/record"),
        ("account", "/account"),
        ("two-factor", "/account/two-factor"),
    ),
    *_pages(
        "empty",
        ("dashboard", "/my/"),
        ("lab-results", "/my/lab-results"),
        ("treatment-plans", "/my/treatment-plans"),
        ("messages", "/my/messages"),
        ("appointments", "/my/appointments"),
    ),
    *_pages(
        "proxy",
        ("dashboard", "/my/"),
        ("lab-results", "/my/lab-results"),
        ("treatment-plans", "/my/treatment-plans"),
        ("appointments", "/my/appointments"),
    ),
    *_pages(
        "provider",
        ("patients", "/staff/patients"),
        ("chart", "/staff/patients/{alice}"),
        ("patient-results", "/staff/patients/{alice}/results"),
        ("result", "/staff/results/{result}"),
        ("result-with-trend", "/staff/results/{trend}"),
        ("correct-result", "/staff/results/{result}/correct"),
        ("new-result", "/staff/patients/{alice}/results/new"),
        ("plan", "/staff/plans/{plan}"),
        ("plan-compare", "/staff/plans/{plan}/compare"),
        ("edit-plan", "/staff/plans/{plan}/edit"),
        ("new-plan", "/staff/patients/{alice}/plans/new"),
        ("messages", "/staff/messages"),
        ("conversation", "/staff/messages/{conversation}"),
        ("new-conversation", "/staff/patients/{alice}/messages/new"),
        ("appointments", "/staff/appointments"),
        ("appointment-requests", "/staff/appointments/requests"),
        ("notifications", "/staff/notifications"),
        ("account", "/account"),
    ),
    *_pages(
        "admin",
        ("patients", "/admin/patients"),
        ("new-patient", "/admin/patients/new"),
        ("edit-patient", "/admin/patients/{alice}/edit"),
        ("care-team", "/admin/patients/{alice}/care-team"),
        ("users", "/admin/users"),
        ("new-user", "/admin/users/new"),
        ("user", "/admin/users/{chen}"),
        ("audit-log", "/admin/audit"),
        ("release-policy", "/admin/release-policy"),
        ("settings", "/admin/settings"),
        ("account", "/account"),
    ),
]


class Readers:
    """Browser contexts signed in as each reader, in each language: one sign-in per reader
    (its cookies are reused for the other languages), one context open at a time."""

    def __init__(self, browser: Browser, pinned: Pinned) -> None:
        self.browser = browser
        self.pinned = pinned
        self.states: dict[str, StorageState] = {}
        self.open: tuple[tuple[str, str], BrowserContext] | None = None

    def context(self, reader: str, language: str) -> BrowserContext:
        key = (reader, language)
        if self.open and self.open[0] == key:
            return self.open[1]
        self.close()
        context = self.browser.new_context(
            base_url=self.pinned.url,
            locale=LANGUAGES[language],
            storage_state=self._state(reader),
            viewport={"width": 1280, "height": 800},
        )
        self.open = (key, context)
        return context

    def _state(self, reader: str) -> StorageState | None:
        email = READERS[reader]
        if email is None:
            return None
        if reader not in self.states:
            context = self.browser.new_context(base_url=self.pinned.url, locale="en-GB")
            page = context.new_page()
            page.goto("/login")
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            if reader in ACTING_FOR:
                page.get_by_label("Whose record").select_option(label=ACTING_FOR[reader])
                page.get_by_role("button", name="Open record").click()
                chosen = page.locator("#record-choice option:checked")
                expect(chosen).to_have_text(ACTING_FOR[reader])
            self.states[reader] = context.storage_state()
            context.close()
        return self.states[reader]

    def close(self) -> None:
        if self.open:
            self.open[1].close()
            self.open = None


@contextmanager
def readers(browser: Browser, pinned: Pinned) -> Iterator[Readers]:
    made = Readers(browser, pinned)
    try:
        yield made
    finally:
        made.close()
