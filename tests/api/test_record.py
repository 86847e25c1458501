"""A patient's whole record as FHIR through the API (`GET /me/record`): a Bundle that validates
as FHIR R4 (with `fhir.resources`' R4B models: 8.x is R5 by default and has no R4 package; R4B
differs from R4 in none of the resources used here), holds every version of her results and
plans she may see, and nothing held, provider-only or draft; only patients export, each their
own, and every export is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.orm import Session

from portal.models import AuditAction
from tests.api.conftest import Api, problem
from tests.conftest import Demo
from tests.web.audit_support import entries_for
from tests.web.patient_records import held_result_id, records_of, visible_record_ids

People = Callable[[str], Api]


def exported(api: People, name: str) -> dict[str, Any]:
    response = api(name).get("/me/record")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def resources(bundle: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The bundle's resources of one type, by id."""
    return {
        e["resource"]["id"]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == kind
    }


def test_alices_record_validates_as_a_fhir_r4_collection(api: People) -> None:
    bundle = exported(api, "alice")

    parsed = Bundle.model_validate(bundle)

    assert parsed.type == "collection"
    kinds = {e.resource.get_resource_type() for e in parsed.entry}
    assert kinds == {
        "Patient",
        "CareTeam",
        "Practitioner",
        "Observation",
        "CarePlan",
        "Appointment",
    }
    # Every reference points at a resource in the file.
    ids = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    references = {ref for e in bundle["entry"] for ref in _references(e["resource"])}
    assert references <= ids


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def test_it_holds_every_version_she_may_see_and_nothing_else(
    session: Session, api: People, people: Demo
) -> None:
    # Arrange: what her own pages show her, read through the same scoped services.
    observations, care_plans = visible_record_ids(session, people.actor("alice"))
    mine = records_of(session, people, "alice")

    # Act
    bundle = exported(api, "alice")

    # Assert: exactly those versions, so none of the held, provider-only or draft records.
    assert set(resources(bundle, "Observation")) == observations
    assert set(resources(bundle, "CarePlan")) == care_plans
    text = str(bundle)
    for hidden in (mine.creatinine_id, held_result_id(session, people, "alice")):
        assert f"lab-result-{hidden}-" not in text
    assert f"treatment-plan-{mine.draft_plan_id}-" not in text
    assert "Draft: cholesterol follow-up" not in text


def test_a_corrected_result_keeps_both_versions_linked(
    api: People, session: Session, people: Demo
) -> None:
    potassium = records_of(session, people, "alice").potassium_id

    observations = resources(exported(api, "alice"), "Observation")

    first = observations[f"lab-result-{potassium}-1"]
    second = observations[f"lab-result-{potassium}-2"]
    assert (first["status"], second["status"]) == ("final", "corrected")
    assert first["identifier"] == second["identifier"]
    assert second["derivedFrom"] == [{"reference": f"Observation/lab-result-{potassium}-1"}]
    assert [t["code"] for t in first["meta"]["tag"]] == ["superseded"]
    assert "tag" not in second["meta"]
    assert first["effectiveDateTime"] == second["effectiveDateTime"]  # the one sample
    assert first["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "2823-3",
        "display": "Potassium",
    }
    assert second["valueQuantity"] == {
        "value": 4.2,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert second["referenceRange"][0]["low"]["value"] == 3.5
    flags = [o["interpretation"][0]["coding"][0]["code"] for o in (first, second)]
    assert flags == ["HH", "N"]


def test_units_stay_ucum_codes_with_the_written_form_beside(api: People) -> None:
    quantities = [
        o["valueQuantity"]
        for o in resources(exported(api, "alice"), "Observation").values()
        if o["code"]["text"] == "White blood cells"
    ]
    assert quantities
    assert {(q["code"], q["unit"]) for q in quantities} == {("10*3/uL", "10³/µL")}


def test_bob_exports_his_own_record_and_none_of_alices(api: People, people: Demo) -> None:
    bundle = exported(api, "bob")

    patient = next(iter(resources(bundle, "Patient").values()))
    assert patient["identifier"][0]["value"] == people.user("bob").patient.medical_record_number
    text = str(bundle)
    assert people.user("alice").patient.medical_record_number not in text
    assert people.user("alice").patient.display_name not in text
    assert {o["subject"]["reference"] for o in resources(bundle, "Observation").values()} == {
        f"Patient/{patient['id']}"
    }


@pytest.mark.parametrize("name", ["dr_chen", "admin"])
def test_only_patients_export_a_record(api: People, name: str) -> None:
    problem(api(name).get("/me/record"), 403)


def test_the_export_is_audited(session: Session, api: People, people: Demo) -> None:
    response = api("alice").get("/me/record")

    [entry] = entries_for(session, response)
    alice = people.user("alice")
    assert (entry.action, entry.entity_type, entry.actor_id) == (
        AuditAction.EXPORT,
        "patient_record",
        alice.id,
    )
    assert entry.patient_id == alice.patient.id
    assert '"channel":"api"' in entry.detail
