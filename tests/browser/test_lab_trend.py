"""Issue 12 in a real browser: dr.chen corrects one of alice's older HbA1c results with the
keyboard; in alice's trend the corrected value keeps its place in time, marked as corrected.
axe on the correction form and on alice's result."""

from __future__ import annotations

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.access import unscoped
from portal.extensions import db
from portal.models import LabResult, PatientProfile, User
from tests.browser.conftest import assert_accessible, sign_in, sign_out

HBA1C = "4548-4"


def _alices_hba1c(app: Flask) -> list[int]:
    """alice's HbA1c results, oldest sample first."""
    with app.app_context():
        stmt = (
            select(LabResult.id)
            .join(PatientProfile, PatientProfile.id == LabResult.patient_id)
            .join(User, User.id == PatientProfile.user_id)
            .where(User.email == "alice@example.org", LabResult.test_code == HBA1C)
            .order_by(LabResult.collected_at)
        )
        return list(db.session.scalars(unscoped(stmt, "test: which results")))


def test_a_corrected_older_result_keeps_its_place_in_the_trend(
    page: Page, served_app: Flask
) -> None:
    *_, older, newest = _alices_hba1c(served_app)
    sign_in(page, "dr.chen@example.org")
    page.goto(f"/staff/results/{older}/correct")
    expect(page.get_by_role("heading", name="Change Hemoglobin A1c")).to_be_visible()
    page.get_by_label("Value").fill("6.9")
    page.get_by_label("Status of the new version").select_option("corrected")
    page.get_by_label("Reason for the change").fill("Transcription error")
    assert_accessible(page, "correct a result")
    page.get_by_role("button", name="Save the new version").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Transcription error").first).to_be_visible()
    sign_out(page)

    sign_in(page, "alice@example.org")
    page.goto(f"/my/lab-results/{newest}")
    table = page.locator("table", has=page.locator("caption", has_text="oldest first"))
    rows = table.locator("tbody tr")
    corrected = rows.filter(has_text="6.9")
    expect(corrected).to_have_count(1)
    expect(corrected).to_contain_text("Corrected")
    # Oldest first: the corrected one sits just before the newest, where its sample was taken.
    links = [
        int(href.rsplit("/", 1)[1])
        for href in table.locator("tbody th a").evaluate_all("(as) => as.map(a => a.href)")
    ]
    assert links[-1] == older, links
    expect(rows.last).to_contain_text("(this result)")
    assert_accessible(page, "a result whose older value was corrected")
    sign_out(page)
