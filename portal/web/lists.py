"""Lists on pages: the page a request's `cursor` names, or the first page and why, and the
status that goes with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import request
from flask_babel import gettext

from portal.services import paging

T = TypeVar("T")


def page_of(
    read: Callable[[str | None], paging.Page[T]], param: str = "cursor"
) -> tuple[paging.Page[T], str | None]:
    """`read` the page the request's cursor (`param`) names; for a cursor the list did not
    hand out (edited or cut short), the first page and the message to show with status 422."""
    try:
        return read(request.args.get(param) or None), None
    except paging.InvalidCursor as exc:
        return read(None), gettext(exc.message)


def answer(body: str, *refusals: str | None, status: int = 200) -> str | tuple[str, int]:
    """`body` with its status: 422 when any of the page's lists refused its cursor (`page_of`
    showed the first page and said why), else `status`."""
    if any(refusals):
        status = 422
    return body if status == 200 else (body, status)
