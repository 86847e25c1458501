"""Record ids in URLs: ASCII digits naming a row that can exist, or the route does not match."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from portal.access import MAX_ID


def up_to(limit: int) -> str:
    """A regular expression for the numbers 1..`limit` in ASCII digits, no leading zero."""
    s = str(limit)
    parts = [f"[1-9][0-9]{{0,{len(s) - 2}}}"] if len(s) > 1 else []
    for i, digit in enumerate(s):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(s) - i - 1
            parts.append(f"{s[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    parts.append(s)
    return "(?:" + "|".join(parts) + ")"


class RecordId(IntegerConverter):
    """`<int:...>` for the whole app: 1..MAX_ID in ASCII digits; anything else is a 404.

    Werkzeug's own accepts any number of digits, in any script (`\\d` matches "٣"), and an
    id no key column can hold makes the database fail (a 500) before any 404. The range is in
    the pattern itself, not only checked after matching: otherwise a POST to an out-of-range
    id would match a GET route's pattern and be told 405 rather than 404.
    """

    regex = up_to(MAX_ID)

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = RecordId
