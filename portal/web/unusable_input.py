"""Input no handler can use, refused at the door with 400 (L5, docs/security.md).

A NUL character cannot be stored in PostgreSQL text (psycopg refuses the statement, which
was a 500, the sign-in form included) and means nothing in any field here; JSON nested
deeper than any request of the API (50 000 levels) exhausts the parser's recursion (a 500 on
both databases). Both are answered before any view or database sees them. Uploaded files
are not looked at: a PDF holds NUL bytes by nature.
"""

from __future__ import annotations

from flask import Flask, abort, request

#: Deeper than any body the API takes (its deepest is a few levels).
MAX_JSON_DEPTH = 64


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `body` nests arrays and objects deeper than `limit`, scanned
    without parsing (the parser is what would fail), strings and their escapes skipped."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _has_nul() -> bool:
    if "\x00" in request.path:
        return True
    if any("\x00" in value for _name, values in request.args.lists() for value in values):
        return True
    if request.is_json:
        body = request.get_data(cache=True)
        return b"\x00" in body or b"\\u0000" in body.lower()
    if request.mimetype == "application/x-www-form-urlencoded":
        # The raw body, cached (the form is still parsed from it later, and an API view that
        # refuses a form body still sees it): a NUL is `%00` there, or itself.
        body = request.get_data(cache=True)
        return b"%00" in body or b"\x00" in body
    if request.mimetype == "multipart/form-data":
        return any("\x00" in value for _name, values in request.form.lists() for value in values)
    return False


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_unusable_input() -> None:
        if _has_nul():
            abort(400)
        if request.is_json and json_too_deep(request.get_data(cache=True)):
            abort(400)
