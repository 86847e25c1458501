"""Attachments (issue 12, point 2): the limits said up front and applied in the service, what
was typed kept when a file is refused (also past what the request keeps of a file), names in
any script downloaded with RFC 6266 `filename*`, and a blob moved to another row refused."""

from __future__ import annotations

import io
import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import Attachment
from portal.services import attachments
from tests.conftest import Demo, post
from tests.web.patient_records import records_of

PDF = b"%PDF-1.4\n" + b"0" * 1000
MB = 1024 * 1024
TYPED = "Here are my readings from the last two weeks."


@pytest.fixture
def small_limits(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits small enough for lean tests: 2 files, 1.5 MB in all, 1 MB each, 4 MB a request."""
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", MB)
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_FILES", 2)
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_TOTAL_BYTES", MB + MB // 2)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4 * MB)


def _reply(client: FlaskClient, conversation_id: int, *files: tuple[bytes, str]):  # type: ignore[no-untyped-def]
    data = {"body": TYPED, "attachment": [(io.BytesIO(b), name) for b, name in files]}
    return post(
        client,
        f"/my/messages/{conversation_id}/reply",
        data,
        content_type="multipart/form-data",
    )


def _refused_keeping_the_text(response, message: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'id="attachment-error"' in page
    assert TYPED in page  # the textarea still holds what was typed


def test_the_form_says_the_limits(as_user, session: Session, people: Demo) -> None:
    mine = records_of(session, people, "alice")
    page = as_user("alice").get(f"/my/messages/{mine.conversation_id}").get_data(as_text=True)
    assert "Up to 5 files and 20 MB in all per message, 10 MB each." in page


@pytest.mark.usefixtures("small_limits")
def test_files_within_the_limits_are_sent(as_user, session: Session, people: Demo) -> None:
    mine = records_of(session, people, "alice")
    response = _reply(as_user("alice"), mine.conversation_id, (PDF, "a.pdf"), (PDF, "b.pdf"))
    assert response.status_code == 303


@pytest.mark.usefixtures("small_limits")
def test_too_many_files_are_refused_on_the_field(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    files = [(PDF, f"{n}.pdf") for n in range(3)]
    response = _reply(as_user("alice"), mine.conversation_id, *files)
    _refused_keeping_the_text(response, "Attach at most 2 files to one message (3 chosen).")


@pytest.mark.usefixtures("small_limits")
def test_too_much_in_all_is_refused_on_the_field(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    part = PDF + b"0" * (MB * 8 // 10)
    response = _reply(as_user("alice"), mine.conversation_id, (part, "a.pdf"), (part, "b.pdf"))
    _refused_keeping_the_text(response, "one message can carry at most 1.5 MB")


@pytest.mark.usefixtures("small_limits")
def test_a_file_far_past_its_limit_is_a_form_error_not_a_413(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    huge = PDF + b"0" * (3 * MB)  # over the file limit, under what a request may carry
    response = _reply(as_user("alice"), mine.conversation_id, (huge, "scan.pdf"))
    _refused_keeping_the_text(response, "scan.pdf is 3 MB. Files can be at most 1 MB.")


@pytest.mark.usefixtures("small_limits")
def test_past_what_a_request_may_carry_the_page_says_how_to_get_the_text_back(
    as_user, session, people
) -> None:
    mine = records_of(session, people, "alice")
    response = _reply(as_user("alice"), mine.conversation_id, (PDF + b"0" * 5 * MB, "x.pdf"))
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Go back with your browser" in page
    assert "10 MB" not in page


def _download_link(client: FlaskClient, conversation_id: int, name: str) -> str:
    page = client.get(f"/my/messages/{conversation_id}").get_data(as_text=True)
    link = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(name)}</a>', page)
    assert link, name
    return link[1]


def test_a_name_in_any_script_downloads_with_filename_star(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    assert _reply(client, mine.conversation_id, (PDF, "検査 結果.pdf")).status_code == 303
    response = client.get(_download_link(client, mine.conversation_id, "検査 結果.pdf"))
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''%E6%A4%9C%E6%9F%BB%20%E7%B5%90%E6%9E%9C.pdf" in disposition
    assert 'filename="file.pdf"' in disposition
    assert response.data == PDF


def test_a_blob_swapped_between_two_rows_fails_to_decrypt(
    as_user, session: Session, people: Demo, caplog: pytest.LogCaptureFixture
) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    for name in ("first.pdf", "second.pdf"):
        assert _reply(client, mine.conversation_id, (PDF, name)).status_code == 303
    rows = {
        row.filename: row
        for row in session.scalars(
            unscoped(select(Attachment).where(Attachment.filename.like("%.pdf")), "test")
        )
    }
    first, second = rows["first.pdf"], rows["second.pdf"]
    # Same content, same patient: only the row binding tells the two blobs apart.
    assert first.sha256 == second.sha256
    session.execute(
        update(Attachment).where(Attachment.id == first.id).values(ciphertext=second.ciphertext)
    )
    session.commit()
    link = _download_link(client, mine.conversation_id, "first.pdf")
    with caplog.at_level(logging.ERROR, logger="portal.services.attachments"):
        response = client.get(link)
    assert response.status_code == 404
    assert f"attachment id={first.id} does not authenticate" in caplog.text
    assert "first.pdf" not in caplog.text


def test_rows_sealed_before_the_row_binding_still_open(app_ctx: Flask) -> None:
    row = attachments.build(attachments.Upload("old.pdf", PDF), patient_id=1, uploaded_by_id=1)
    row.seal_version, row.blob_id = 1, None
    row.ciphertext = attachments.seal(PDF, row.sha256.encode())  # as written before 0014
    assert attachments.decrypt(row) == PDF
    row.patient_id = 2  # the version-2 binding names the patient; version 1 did not
    assert attachments.decrypt(row) == PDF


def test_a_row_moved_to_another_patient_fails_to_decrypt(app_ctx: Flask) -> None:
    row = attachments.build(attachments.Upload("a.pdf", PDF), patient_id=1, uploaded_by_id=1)
    assert attachments.decrypt(row) == PDF
    row.patient_id = 2
    with pytest.raises(attachments.TamperedAttachment):
        attachments.decrypt(row)
