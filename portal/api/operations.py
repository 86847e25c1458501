"""Declaring an API operation once: its route, what it reads and answers, its audit.

`@operation(...)` registers a view on the API blueprint that parses the query and the JSON body
with the operation's pydantic models (422 with every refused field), hands the handler the
session and the actor, and writes the answer from the response model. A POST runs as one unit
of work; with an `Idempotency-Key` header its answer is stored in the same transaction, and a
retry gets that answer back. `portal.api.spec` builds the OpenAPI document from the same list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from portal.access import Actor
from portal.api.errors import invalid, problem
from portal.api.schemas import Problem, dump
from portal.audit import audit_exempt
from portal.audit.declare import audit_spec_of
from portal.db import utcnow
from portal.extensions import db
from portal.models import IdempotentRequest
from portal.transactions import unit_of_work
from portal.web.identity import actor_for_record, current_actor

#: Idempotency keys are the client's: any printable ASCII, bounded.
MAX_KEY = 255


@dataclass(frozen=True)
class Operation:
    method: str
    rule: str
    name: str
    summary: str
    tags: tuple[str, ...]
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: Any
    status: int
    idempotent: bool
    public: bool
    errors: tuple[int, ...]
    description: str = ""
    path_params: tuple[str, ...] = field(default=())


OPERATIONS: list[Operation] = []

#: What every operation may answer, besides its own errors.
COMMON_ERRORS = (400, 401, 404, 422)
#: POSTs that take no Idempotency-Key, and why. Every other POST takes one: a retry after a
#: lost answer (same key, same request) gets the first answer back and changes nothing again,
#: whether it creates something (a message, a booking, a result, a plan) or moves something
#: on (activate, complete, acknowledge, confirm, decline, propose, cancel, reschedule). The
#: pages get the same guarantee from the one-time key of their forms (a message's
#: `idempotency_key`) and from answering a repeated transition with the page as it now is.
NOT_IDEMPOTENT = {
    # Answers a new secret each time; storing the answer would keep a usable token.
    "issue_token": "answers a fresh token, which is never stored",
    # Marking read again changes nothing and answers the same.
    "mark_read": "idempotent by nature",
}

#: What an operation that reads a body may answer besides: a body over MAX_CONTENT_LENGTH, or
#: one that is not application/json.
BODY_ERRORS = (413, 415)


def operation(
    bp: Blueprint,
    method: str,
    rule: str,
    *,
    summary: str,
    tag: str,
    response: Any = None,
    status: int = 200,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    idempotent: bool = False,
    public: bool = False,
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Register `handler(session, actor, *path, query=, body=)` as `method rule` on `bp`.

    A handler whose answer shows a record is declared with `@audited(action, entity, id_arg)`
    beneath this, as a page is (one entry per response); one that shows none is exempt (its
    writes are recorded by their service). `public` operations need no credentials (getting a
    token, the document).
    """

    def register(handler: Callable[..., Any]) -> Callable[..., Response]:
        @wraps(handler)
        def view(**path: Any) -> Response:
            actor = None if public else current_actor()
            kwargs: dict[str, Any] = {}
            if query is not None:
                kwargs["query"] = _parse(query, request.args.to_dict(), "query")
            if body is not None:
                kwargs["body"] = _parse(body, _json_body(), "body")
            if actor is not None and "patient_id" in path:
                # A proxy calls the patient's routes with the patient's id, within the grant
                # (after the input is checked: a refused input reads nothing).
                actor = actor_for_record(path["patient_id"])
            if method == "GET":
                return _answer(status, handler(db.session, actor, **path, **kwargs))
            return _write(handler, actor, path, kwargs, status, idempotent)

        # `wraps` carried the handler's own `@audited` declaration over to the view.
        if audit_spec_of(view) is None:
            view = audit_exempt(view)
        bp.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method])
        OPERATIONS.append(
            Operation(
                method=method,
                rule=(bp.url_prefix or "") + rule,
                name=handler.__name__,
                summary=summary,
                description=(handler.__doc__ or "").strip(),
                tags=(tag,),
                query=query,
                body=body,
                response=response,
                status=status,
                idempotent=idempotent,
                public=public,
                errors=tuple(sorted({*COMMON_ERRORS, *(BODY_ERRORS if body else ()), *errors})),
            )
        )
        return view

    return register


def _parse(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, where) from exc


def _json_body() -> Any:
    """The request's JSON body: 415 for another type, 400 for JSON that does not parse."""
    if not request.get_data(cache=True):
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        return json.loads(request.get_data(cache=True))
    except ValueError as exc:
        raise BadRequest("The body is not valid JSON.") from exc


def _answer(status: int, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if status == 204:
        return current_app.response_class(status=204)
    return current_app.response_class(dump(result), status=status, mimetype="application/json")


def _write(
    handler: Callable[..., Any],
    actor: Actor | None,
    path: dict[str, Any],
    kwargs: dict[str, Any],
    status: int,
    idempotent: bool,
) -> Response:
    """One unit of work: the change, its audit entries, notifications and (with a key) the
    stored answer commit together."""
    key = request.headers.get("Idempotency-Key") if idempotent and actor else None
    if key is not None and not (0 < len(key) <= MAX_KEY and key.isascii() and key.isprintable()):
        return problem(
            422,
            "Idempotency-Key: 1 to 255 printable ASCII characters.",
            {"Idempotency-Key": ["1 to 255 printable ASCII characters."]},
        )
    fingerprint = hashlib.sha256(
        b"\n".join([request.method.encode(), request.path.encode(), request.get_data(cache=True)])
    ).hexdigest()
    with unit_of_work() as session:
        if key is not None and actor is not None:
            earlier = _earlier(session, actor.user_id, key)
            if earlier is not None:
                if earlier.request_hash != fingerprint:
                    return problem(
                        422,
                        "This Idempotency-Key was used for another request.",
                        {"Idempotency-Key": ["already used for another request"]},
                    )
                return current_app.response_class(
                    earlier.body,
                    status=earlier.status,
                    mimetype="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        result = handler(session, actor, **path, **kwargs)
        response = _answer(status, result)
        if key is not None and actor is not None and response.status_code < 300:
            session.add(
                IdempotentRequest(
                    user_id=actor.user_id,
                    key=key,
                    request_hash=fingerprint,
                    status=response.status_code,
                    body=response.get_data(as_text=True),
                    created_at=utcnow(),
                )
            )
    return response


def _earlier(session: Session, user_id: int, key: str) -> IdempotentRequest | None:
    stmt = select(IdempotentRequest).where(
        IdempotentRequest.user_id == user_id, IdempotentRequest.key == key
    )
    return session.scalar(stmt)


__all__ = ["OPERATIONS", "Operation", "Problem", "operation"]
