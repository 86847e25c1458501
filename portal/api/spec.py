"""The OpenAPI 3.1 document, made from the registered operations and their pydantic models: the
classes that validate requests and shape answers are the document's only source."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from portal.access import MAX_ID
from portal.api.operations import OPERATIONS, Operation
from portal.api.schemas import Problem, example_of
from portal.web.problems import TITLES

REF = "#/components/schemas/{model}"
_PATH_ARG = re.compile(r"<(?:(\w+):)?(\w+)>")


def _openapi_path(rule: str) -> str:
    return _PATH_ARG.sub(lambda m: "{" + m[2] + "}", rule)


def _path_params(rule: str) -> list[dict[str, Any]]:
    return [
        {
            "name": m[2],
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}
            if m[1] == "int"
            else {"type": "string"},
        }
        for m in _PATH_ARG.finditer(rule)
    ]


def _query_params(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        description = prop.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        param["schema"] = prop
        if description:
            param["description"] = description
        params.append(param)
    return params


def _models() -> list[Any]:
    found: list[Any] = [Problem]
    for op in OPERATIONS:
        for model in (op.body, op.response):
            if model is not None and model not in found:
                found.append(model)
    return found


#: How each response model is named among the components: pydantic's own `$ref`, which for a
#: generic model (`PageOut[LabResultOut]`) is not its class name (`PageOut_LabResultOut_`).
Refs = dict[Any, dict[str, Any]]  # (model, mode) -> {"$ref": ...}


def _response_schema(response: Any, refs: Refs) -> dict[str, Any]:
    if isinstance(response, type) and issubclass(response, BaseModel):
        return dict(refs[(response, "serialization")])
    return TypeAdapter(response).json_schema(by_alias=True, ref_template=REF, mode="serialization")


def _operation(op: Operation, refs: Refs) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": _path_params(op.rule) + _query_params(op.query),
    }
    if op.description:
        doc["description"] = op.description
    if op.idempotent:
        doc["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Send the same key to retry safely: the first answer comes back "
                "and nothing more is created. The same key with another body is a 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if op.body is not None:
        body_schema = {"$ref": REF.format(model=op.body.__name__)}
        content: dict[str, Any] = {"schema": body_schema}
        if (body_example := example_of(op.body)) is not None:
            content["example"] = body_example
        doc["requestBody"] = {"required": True, "content": {"application/json": content}}
    responses: dict[str, Any] = {}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
    elif op.response is None:
        # A file: its bytes, in the type it was stored with.
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[str(op.status)] = {
            "description": "The file",
            "content": {t: binary for t in ("application/pdf", "image/png", "image/jpeg")},
        }
    else:
        answer: dict[str, Any] = {"schema": _response_schema(op.response, refs)}
        if (answer_example := example_of(op.response)) is not None:
            answer["example"] = answer_example
        responses[str(op.status)] = {
            "description": "OK" if op.status == 200 else "Created",
            "content": {"application/json": answer},
        }
    problem = {"$ref": REF.format(model="Problem")}
    for status in op.errors:
        if op.public and status == 401 and op.method == "GET":
            continue
        responses[str(status)] = {
            "description": TITLES.get(status, "Error"),
            "content": {"application/problem+json": {"schema": problem}},
        }
    doc["responses"] = responses
    doc["security"] = [] if op.public else [{"bearerAuth": []}, {"cookieSession": []}]
    return doc


@cache
def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (built once: the operations do not change at run time)."""
    refs, schemas = models_json_schema(
        [(m, "serialization") for m in _models() if isinstance(m, type)],
        by_alias=True,
        ref_template=REF,
    )
    for op in OPERATIONS:
        if op.body is not None:
            schemas.setdefault("$defs", {}).update(
                {op.body.__name__: op.body.model_json_schema(by_alias=True, ref_template=REF)}
            )
    components = dict(schemas.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(_openapi_path(op.rule), {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Patient portal API",
            "version": "1",
            "description": "Lab results, treatment plans, messages and appointments, scoped to "
            "the signed-in person. Get a token with POST /api/v1/auth/token and send it as "
            "`Authorization: Bearer <token>`. Errors are application/problem+json.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "cookieSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "portal_session",
                    "description": "A browser session; state-changing calls also need the "
                    "X-CSRFToken header.",
                },
            },
        },
    }
