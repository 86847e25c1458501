"""Record ids in URLs: ASCII digits naming a row that can exist, or the route does not match."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from portal.access import MAX_ID


class RecordId(IntegerConverter):
    """`<int:...>` for the whole app: 1..2⁶³−1 in ASCII digits; anything else is a 404.

    Werkzeug's own accepts any number of digits, in any script (`\\d` matches "٣"), and an
    id no 64-bit key can hold makes the database driver fail (a 500) before any 404.
    """

    regex = r"[0-9]{1,19}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = RecordId
