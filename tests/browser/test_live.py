"""Live updates in a real browser: a change made elsewhere reaches an open page without a
reload, is announced once, politely, and leaves focus and accessibility as they were."""

from __future__ import annotations

import requests
from playwright.sync_api import Browser, expect

from tests.browser.conftest import assert_accessible, sign_in
from tests.support import bearer, patient_id_of, publish


def test_a_result_published_elsewhere_updates_the_open_dashboard(
    browser: Browser, base_url: str
) -> None:
    context = browser.new_context(base_url=base_url)
    try:
        page = context.new_page()
        sign_in(page, "alice@example.org")
        expect(page.get_by_role("heading", level=1, name="Hello, Alice Martin")).to_be_visible()
        page.evaluate("window.notReloaded = true")
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Appointments").focus()
        page.wait_for_timeout(500)  # the socket connects after the page loads
        # Act: dr.chen publishes a result for Alice, through the API
        publish(
            base_url,
            bearer(base_url, "dr.chen@example.org"),
            patient_id_of(base_url, "alice@example.org"),
            testCode="4548-4",
            testName="Hemoglobin A1c",
            resultValue="6.1",
            units="%",
            referenceRange="4.0-5.6",
        )
        # Assert: announced once in the polite region, the dashboard's card updated in place
        expect(page.locator("#live-region")).to_have_text("New lab result: Hemoglobin A1c")
        expect(page.locator("#whats_new")).to_contain_text("Hemoglobin A1c")
        assert page.evaluate("window.notReloaded") is True
        expect(nav.get_by_role("link", name="Appointments")).to_be_focused()
        assert_accessible(page, "dashboard after a live update")
    finally:
        context.close()


def test_a_patients_message_appears_in_the_providers_open_thread_and_keeps_the_draft(
    browser: Browser, base_url: str
) -> None:
    alice = bearer(base_url, "alice@example.org")
    thread = requests.get(f"{base_url}/api/v1/conversations", headers=alice, timeout=30).json()
    conversation_id = thread["items"][0]["id"]
    context = browser.new_context(base_url=base_url)
    try:
        page = context.new_page()
        sign_in(page, "dr.chen@example.org")
        page.goto(f"/staff/messages/{conversation_id}")
        draft = page.get_by_role("textbox", name="Reply")
        draft.fill("Half-written answer")
        page.wait_for_timeout(500)  # the socket connects after the page loads
        sent = requests.post(
            f"{base_url}/api/v1/conversations/{conversation_id}/messages",
            json={"body": "A question that arrives while the thread is open"},
            headers=alice,
            timeout=30,
        )
        assert sent.status_code == 201, sent.text[:300]
        expect(page.locator("#thread-messages")).to_contain_text("while the thread is open")
        expect(page.locator("#live-region")).to_contain_text("New message")
        expect(draft).to_have_value("Half-written answer")
        expect(draft).to_be_focused()
        assert_accessible(page, "staff thread after a live update")
    finally:
        context.close()
