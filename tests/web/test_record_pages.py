"""The patient's whole record in the patient area: the download from the profile (a FHIR file,
audited) and the printable summary, which shows the same results as the file."""

from __future__ import annotations

import json
import re

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.orm import Session

from portal.models import AuditAction
from tests.conftest import Demo
from tests.web.audit_support import entries_for
from tests.web.patient_records import records_of


def test_the_profile_links_to_the_summary_and_the_download(as_user) -> None:
    page = as_user("alice").get("/my/profile").get_data(as_text=True)
    assert 'href="/my/record"' in page
    assert 'href="/my/record.json"' in page


def test_the_download_is_a_fhir_file_and_is_audited(
    session: Session, as_user, people: Demo
) -> None:
    response = as_user("alice").get("/my/record.json")

    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(
        r"attachment; filename=\"health-record-\d{4}-\d\d-\d\d\.json\"; "
        r"filename\*=UTF-8''health-record-\d{4}-\d\d-\d\d\.json",
        disposition,
    )
    assert response.headers["Cache-Control"] == "no-store"
    Bundle.model_validate(json.loads(response.get_data()))
    [entry] = entries_for(session, response)
    assert (entry.action, entry.entity_type, entry.patient_id) == (
        AuditAction.EXPORT,
        "patient_record",
        people.user("alice").patient.id,
    )
    assert '"channel":"page"' in entry.detail


def test_the_summary_shows_the_same_results_as_the_file(
    session: Session, as_user, people: Demo
) -> None:
    client = as_user("alice")
    bundle = json.loads(client.get("/my/record.json").get_data())

    response = client.get("/my/record")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    table = page[page.index('id="record-results-caption"') : page.index("</table>")]
    rows = re.findall(r'<th scope="row">([^<]+).*?</th>\s*<td>([^<]*)</td>', table, re.S)
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    # One row per version, as one Observation per version: the same tests and values.
    assert sorted((name.strip(), value.split()[0]) for name, value in rows) == sorted(
        (o["code"]["text"], _value(o)) for o in observations
    )
    # The correction reads as one: the earlier value stays, marked as replaced.
    assert 'Potassium <span class="muted">(earlier version 1)</span>' in page
    assert "replaced by the version above" in page
    assert "Corrected" in page
    assert "10³/µL" in page  # units as people write them
    assert "Critically high" in page  # flags in words
    mine = records_of(session, people, "alice")
    assert "Creatinine" not in page  # provider-only
    assert "BRCA1" not in page  # held for review
    assert "Draft: cholesterol follow-up" not in page
    assert f"/my/lab-results/{mine.creatinine_id}" not in page
    [entry] = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "patient_record")


def _value(observation: dict[str, object]) -> str:
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, dict):
        return f"{quantity.get('comparator', '')}{quantity['value']}"
    return str(observation["valueString"]).split()[0]


def test_the_summary_tables_have_captions_and_headers(as_user) -> None:
    page = as_user("alice").get("/my/record").get_data(as_text=True)
    assert page.count("<caption") == 2
    assert page.count('<thead><tr><th scope="col">') == 2
