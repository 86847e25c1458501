"""The dashboard and the lab list run a fixed number of queries, whether a patient has a handful
of results or hundreds."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from portal.models import ResultStatus
from portal.services import labs
from tests.conftest import count_queries


def _add_results(session, people, n: int) -> None:  # type: ignore[no-untyped-def]
    chen = people.actor("dr_chen")
    pid = people.user("alice").patient.id
    for i in range(n):
        labs.create_result(
            session,
            chen,
            pid,
            test_code="2823-3",
            test_name="Potassium",
            data=labs.ResultInput(
                f"{3.6 + (i % 10) / 10:.1f}", "mmol/L", "3.5-5.1", ResultStatus.FINAL
            ),
        )
    session.commit()


def _queries(app, client, path: str) -> int:  # type: ignore[no-untyped-def]
    client.get(path)  # warm: the first request of a client may load more
    with count_queries(app) as statements:
        response = client.get(path)
    assert response.status_code == 200
    return len(statements)


# Each bound is the page's count today, on both databases (the session and its account, the
# page's data, the nav's badges and socket position in one statement, the audit entry's
# insert, and whether a message waits to be marked delivered, `web.delivery`): a regression
# guard, lowered when a page needs fewer.
@pytest.mark.parametrize(
    ("path", "bound"),
    [
        ("/my/", 10),  # 9, and the records the patient may open for someone else (switcher)
        ("/my/lab-results", 8),
        ("/my/lab-results?test=2823-3", 8),
        ("/my/messages", 8),
    ],
)
def test_a_page_runs_as_many_queries_with_500_results_as_with_5(
    app, as_user, session, people, path, bound
) -> None:
    client = as_user("alice")
    _add_results(session, people, 5)
    few = _queries(app, client, path)
    _add_results(session, people, 495)
    many = _queries(app, client, path)
    assert many == few, (few, many)
    assert few <= bound, few


def test_a_result_with_a_long_trend_runs_a_bounded_number_of_queries(
    app, as_user, session, people
) -> None:
    import re

    client = as_user("alice")
    _add_results(session, people, 40)
    page = client.get("/my/lab-results?test=2823-3").get_data(as_text=True)
    result_id = re.search(r'href="/my/lab-results/(\d+)"', page).group(1)
    assert _queries(app, client, f"/my/lab-results/{result_id}") <= 20


@pytest.mark.parametrize("path", ["/my/", "/my/lab-results", "/my/lab-results?test=2823-3"])
def test_the_hot_pages_build_no_statement_per_request(app, as_user, path) -> None:
    # Building a scoped SELECT costs more than running it: these pages run statements built
    # once per role (`access.scoped`) or at import, the same objects on every request.
    client = as_user("alice")
    client.get(path)  # warm: the first request builds what later ones reuse
    runs: list[list[object]] = []

    def seen(state: ORMExecuteState) -> None:
        runs[-1].append(state.statement)

    event.listen(Session, "do_orm_execute", seen)
    try:
        for _ in range(2):
            runs.append([])
            assert client.get(path).status_code == 200
    finally:
        event.remove(Session, "do_orm_execute", seen)
    first, second = runs
    assert first
    assert len(first) == len(second)
    rebuilt = [str(b) for a, b in zip(first, second, strict=True) if a is not b]
    assert rebuilt == []
