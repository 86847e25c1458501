"""Uploaded files as the services take them, without ever holding more of one than may be kept.

The request's form parser writes each file into a `CappedSpool`, which keeps at most one byte
more than `ATTACHMENT_MAX_BYTES` and counts the rest. So a file that is too large reaches the
service, which refuses it on the form's field, and the rest of the form (what was typed) is
parsed and shown again, instead of a 413 page that drops it.
"""

from __future__ import annotations

from tempfile import SpooledTemporaryFile
from typing import IO, Any

from flask import Request, current_app
from werkzeug.datastructures import FileStorage

from portal.services import attachments

#: Files up to this size stay in memory; larger ones (up to the cap) go to a temporary file.
_IN_MEMORY = 512 * 1024


class CappedSpool(SpooledTemporaryFile[bytes]):
    """A spool that stores the first `cap` bytes written and counts all of them (`received`)."""

    def __init__(self, cap: int) -> None:
        super().__init__(max_size=_IN_MEMORY, mode="w+b")
        self.cap = cap
        self.received = 0

    def write(self, data: Any) -> int:
        size = len(data)
        room = max(self.cap - self.received, 0)
        self.received += size
        if room:
            super().write(bytes(data[:room]))
        return size  # the parser goes on; what is past the cap is dropped


class PortalRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        # One byte past the limit: enough to know the file is too large.
        return CappedSpool(current_app.config["ATTACHMENT_MAX_BYTES"] + 1)


def upload_of(file: FileStorage) -> attachments.Upload:
    """The service's view of one posted file, with its true size when it was cut short."""
    data = file.read()
    received = getattr(file.stream, "received", None)
    return attachments.Upload(file.filename or "file", data, received)
