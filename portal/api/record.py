"""The caller's own record as FHIR: `GET /me/record` (docs/api.md).

The answer is a FHIR R4 Bundle made by `services.record_export` (the same content as the
printable summary page and the profile's download), not one of this API's own objects: it
follows FHIR's names and rules (no `createdAt`; `resourceType`, `meta.versionId`), so its
model checks only the Bundle's frame and leaves the resources as FHIR wrote them.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import current_app
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.api import bp
from portal.api.operations import operation
from portal.api.schemas import Instant, Schema, with_example
from portal.audit import audited
from portal.models import AuditAction
from portal.services import record_export
from portal.web.audit_reads import shows

_BASE = "https://portal.example.org/fhir"

#: A short Bundle: the patient and one result, as `to_fhir` writes them.
EXAMPLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "collection",
    "timestamp": "2026-11-30T16:10:00Z",
    "entry": [
        {
            "fullUrl": f"{_BASE}/Patient/patient-5",
            "resource": {
                "resourceType": "Patient",
                "id": "patient-5",
                "identifier": [
                    {
                        "use": "usual",
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MR",
                                }
                            ]
                        },
                        "system": f"{_BASE}/sid/mrn",
                        "value": "EX-000042",
                    }
                ],
                "active": True,
                "name": [{"text": "Sam Example"}],
                "birthDate": "1980-01-01",
            },
        },
        {
            "fullUrl": f"{_BASE}/Observation/lab-result-4815-1",
            "resource": {
                "resourceType": "Observation",
                "id": "lab-result-4815-1",
                "meta": {"versionId": "1", "lastUpdated": "2026-11-02T09:40:00Z"},
                "identifier": [{"system": f"{_BASE}/sid/lab-result", "value": "4815"}],
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": record_export.OBSERVATION_CATEGORY,
                                "code": "laboratory",
                                "display": "Laboratory",
                            }
                        ]
                    }
                ],
                "code": {
                    "text": "Hemoglobin A1c",
                    "coding": [
                        {
                            "system": record_export.LOINC,
                            "code": "4548-4",
                            "display": "Hemoglobin A1c",
                        }
                    ],
                },
                "subject": {"reference": "Patient/patient-5"},
                "effectiveDateTime": "2026-11-02T07:40:00Z",
                "issued": "2026-11-02T09:40:00Z",
                "valueQuantity": {
                    "value": 6.1,
                    "unit": "%",
                    "system": record_export.UCUM,
                    "code": "%",
                },
                "interpretation": [
                    {
                        "coding": [
                            {
                                "system": record_export.INTERPRETATION,
                                "code": "H",
                                "display": "High",
                            }
                        ]
                    }
                ],
                "referenceRange": [
                    {
                        "low": {
                            "value": 4.0,
                            "unit": "%",
                            "system": record_export.UCUM,
                            "code": "%",
                        },
                        "high": {
                            "value": 5.6,
                            "unit": "%",
                            "system": record_export.UCUM,
                            "code": "%",
                        },
                        "text": "4.0-5.6 %",
                    }
                ],
            },
        },
    ],
}


class RecordBundleOut(Schema):
    """A FHIR R4 Bundle of type `collection`: the Patient, the CareTeam and its Practitioners,
    an Observation for every version of each lab result the caller may see, a CarePlan for
    every version of each plan they may see (never a draft) and their Appointments."""

    model_config = with_example(EXAMPLE)

    resource_type: Literal["Bundle"]
    type: Literal["collection"]
    timestamp: Instant
    #: `{fullUrl, resource}` per resource, as FHIR R4 defines them.
    entry: list[dict[str, Any]]


@operation(
    bp,
    "GET",
    "/me/record",
    summary="My record as a FHIR R4 Bundle",
    tag="Record",
    response=RecordBundleOut,
    errors=(403,),
)
@audited(AuditAction.EXPORT, record_export.ENTITY)
def my_record(session: Session, actor: Actor) -> RecordBundleOut:
    """Everything the caller may see of their own record, to take elsewhere: results with
    every visible version (LOINC codes, UCUM units, reference ranges, interpretation flags),
    treatment plans, visits and the care team. Held, unreleased and provider-only results and
    draft plans are never in it. Patients only."""
    record = record_export.gather(session, actor)
    shows(record.subject)
    bundle = record_export.to_fhir(record, str(current_app.config["PORTAL_URL"]))
    return RecordBundleOut.model_validate(bundle)
