"""Every operation's example: the OpenAPI document shows one for each success answer and each
request body, made from the examples declared on the schema classes (`schemas.with_example`),
and each is an answer or body its own class accepts and the API would write as it stands."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter

from portal.api.operations import OPERATIONS, Operation
from portal.api.schemas import dump, example_of


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    """The served document (what a client reads, not only what `spec` builds)."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json  # type: ignore[assignment]
    return served


@pytest.fixture
def operations(app: Flask) -> list[Operation]:
    """Every registered operation (the app registers them)."""
    assert len(OPERATIONS) >= 20
    return OPERATIONS


def _content(
    document: dict[str, Any], op: Operation
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The operation's success content and request-body content in the served document."""
    path = op.rule.replace("<int:", "{").replace(">", "}")
    doc = document["paths"][path][op.method.lower()]
    answer = doc["responses"][str(op.status)].get("content", {}).get("application/json")
    body = doc.get("requestBody", {}).get("content", {}).get("application/json")
    return answer, body


def test_every_operation_shows_an_example_of_its_answer_and_body(
    document: dict[str, Any], operations: list[Operation]
) -> None:
    missing = []
    for op in operations:
        answer, body = _content(document, op)
        where = f"{op.method} {op.rule}"
        if op.response is None and op.status != 204:
            continue  # a file (GET /attachments/{id}): bytes, no JSON to show
        if op.status != 204 and (answer is None or "example" not in answer):
            missing.append(f"{where}: its {op.status} answer")
        if op.body is not None and (body is None or "example" not in body):
            missing.append(f"{where}: its request body")
    assert missing == [], "operations without an example: " + "; ".join(missing)


def _conforms(document: dict[str, Any], schema: dict[str, Any], example: Any) -> list[str]:
    """How `example` departs from `schema` (refs into the document's components)."""
    validator = Draft202012Validator({**schema, "components": document["components"]})
    return [error.message for error in validator.iter_errors(example)]


def test_each_example_is_one_its_own_class_accepts_and_writes_as_is(
    document: dict[str, Any], operations: list[Operation]
) -> None:
    for op in operations:
        answer, body = _content(document, op)
        where = f"{op.method} {op.rule}"
        if answer is not None:
            example = example_of(op.response)
            assert answer["example"] == example, where
            # Validated by the class the API answers with, and written back unchanged: the
            # example is what the API itself would send (every field, times with a Z).
            parsed = TypeAdapter(op.response).validate_python(example)
            assert json.loads(dump(parsed)) == example, where
            assert _conforms(document, answer["schema"], example) == [], where
        if body is not None and op.body is not None:
            example = example_of(op.body)
            assert body["example"] == example, where
            op.body.model_validate(example)
            assert _conforms(document, body["schema"], example) == [], where


def test_the_reference_page_shows_the_examples(client: FlaskClient) -> None:
    text = client.get("/api/docs").get_data(as_text=True)
    assert "Hemoglobin A1c" in text  # the correction's answer
    assert '"testCode": "2345-7"' in text  # a request body
