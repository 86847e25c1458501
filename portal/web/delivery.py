"""Delivery receipts on the pages: a message sent to someone is `delivered` once they open any
page of their area (the socket marks it when it carries the event, `realtime.ws`)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from portal.extensions import db
from portal.services import messaging
from portal.transactions import unit_of_work
from portal.web.identity import signed_in_actor


def mark_delivered_on_pages(bp: Blueprint) -> None:
    """Before each page of `bp` (GET, after the area's gate): the reader's messages that had
    not reached them are delivered now. An index read first, so a page with nothing to mark
    takes no write lock."""

    @bp.before_request
    def _deliver() -> Response | None:
        actor = signed_in_actor()
        if actor is None or request.method != "GET":
            return None
        if messaging.has_undelivered(db.session, actor.user_id):
            with unit_of_work() as s:
                messaging.mark_delivered(s, actor.user_id)
        return None
