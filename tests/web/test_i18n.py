"""The portal in English, Traditional Chinese and Spanish: every string in the catalogs, the
language chosen from the profile, the switcher or the browser, and the patient's pages, form
errors and mail in the language they chose."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.support import Translations
from flask_babel import force_locale
from sqlalchemy import delete, select

from portal.access import unscoped
from portal.audit.report import access_log_for_patient
from portal.i18n import EXTRACT_OPTIONS, TRANSLATIONS, compile_catalogs
from portal.models import AppointmentStatus, EventType, OutboxMail, PlanStatus, ResultStatus
from portal.services import mail
from portal.web.templating import status_text
from tests.conftest import DEMO_EMAILS, csrf_token, login, post
from tests.web.audit_support import a_result_of

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("zh_Hant", "es")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What `pybabel extract` finds in the code and templates today."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"]
        + [*EXTRACT_OPTIONS, "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as source:
        return read_po(source)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_string_in_the_code_and_templates_is_translated(
    extracted: Catalog, locale: str
) -> None:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    missing = []
    for message in extracted:
        if not message.id:
            continue
        entry = catalog.get(message.id, context=message.context)
        forms = () if entry is None else entry.string
        forms = (forms,) if isinstance(forms, str) else forms
        if entry is None or entry.fuzzy or not forms or not all(forms):
            missing.append((message.context, message.id))
    assert not missing, f"{len(missing)} strings not translated for {locale}: {missing[:10]}"
    # Placeholders (%(name)s) survive translation: Babel's own check of python-format entries.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check() if errors]
    assert not problems, problems


def test_a_clean_clone_compiles_its_catalogs_when_the_app_starts(tmp_path: Path) -> None:
    # Only the .po files are in the repository; `create_app` compiles them (compile_catalogs).
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        target = tmp_path / po.relative_to(TRANSLATIONS)
        target.parent.mkdir(parents=True)
        shutil.copyfile(po, target)
    compile_catalogs(tmp_path)
    assert Translations.load(str(tmp_path), ["zh_Hant"]).gettext("Sign in") == "登入"
    assert Translations.load(str(tmp_path), ["es"]).gettext("Sign in") == "Iniciar sesión"


def _lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found
    return found.group(1)


def _switch(client, language: str, back_to: str):  # type: ignore[no-untyped-def]
    """The switcher's plain form post (what a browser without JavaScript sends)."""
    token = csrf_token(client, back_to)
    return client.post(
        "/language", data={"language": language, "next": back_to, "csrf_token": token}
    )


def test_a_visitor_switches_to_spanish_and_back_without_javascript(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert _lang(page) == "en"
    switcher = re.search(r'<form class="language-form"[^>]*>', page)
    assert switcher
    assert 'action="/language"' in switcher.group(0)
    assert 'hx-boost="false"' in switcher.group(0)

    to_spanish = _switch(client, "es", "/login")
    assert to_spanish.status_code == 303
    assert to_spanish.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert _lang(page) == "es"
    assert "<h1>Iniciar sesión</h1>" in page
    assert '<option value="es" lang="es" selected>Español</option>' in page

    assert _switch(client, "en", "/login").status_code == 303
    page = client.get("/login").get_data(as_text=True)
    assert _lang(page) == "en"
    assert "<h1>Sign in</h1>" in page


def test_the_switcher_refuses_a_post_without_its_csrf_token(client) -> None:
    response = client.post("/language", data={"language": "es", "next": "/login"})
    assert response.status_code == 400
    assert _lang(client.get("/login").get_data(as_text=True)) == "en"


def test_the_switcher_only_returns_to_a_page_of_this_site(client) -> None:
    token = csrf_token(client)
    for target in (
        "https://evil.example/",
        "//evil.example/x",
        "javascript:alert(1)",
        "/\\evil.example/x",  # a browser reads /\ as //
        "/\t/evil.example",  # a tab browsers drop
    ):
        response = client.post(
            "/language", data={"language": "es", "next": target, "csrf_token": token}
        )
        assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("header", "lang"),
    [("zh-TW,zh;q=0.9", "zh-Hant"), ("es-MX", "es"), ("fr-FR, de;q=0.5", "en"), ("", "en")],
)
def test_a_visitor_reads_the_browsers_language(client, header: str, lang: str) -> None:
    page = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert _lang(page) == lang


def test_a_patients_choice_is_kept_in_their_profile_and_wins_over_the_browser(
    app, as_user, session, people
) -> None:
    assert _switch(as_user("alice"), "es", "/my/").status_code == 303
    session.expire_all()
    assert people.user("alice").patient.preferred_language == "es"
    # Another browser, whose session knows nothing of the switch and which asks for Chinese.
    elsewhere = app.test_client()
    login(elsewhere, DEMO_EMAILS["alice"])
    page = elsewhere.get("/my/", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert _lang(page) == "es"
    assert "Novedades" in page


@pytest.fixture
def alice_in_chinese(as_user):  # type: ignore[no-untyped-def]
    client = as_user("alice")
    assert _switch(client, "zh-Hant", "/my/").status_code == 303
    return client


def test_alice_reads_her_dashboard_in_traditional_chinese(alice_in_chinese) -> None:
    page = alice_in_chinese.get("/my/").get_data(as_text=True)
    assert _lang(page) == "zh-Hant"
    for words in ("最新消息", "您的治療計畫", "最近的檢驗結果", "病人入口網站", "登出"):
        assert words in page
    # Dates in the zh-Hant form (2026年12月5日 09:00 CET), never the English one.
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}", page)
    assert not re.search(r"\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}", page)
    # A notification's words in her language, the test's name as the clinic wrote it.
    assert "已更正的檢驗結果：Potassium" in page
    # Lab flags are words in her language.
    assert re.search(r'class="flag flag-(high|low|abnormal|critical)">(偏高|偏低|異常|危急)', page)
    # What the page's script says by itself (a failed request, no connection) too.
    assert 'data-said-error="出了點問題，請再試一次。"' in page


def test_alice_switches_from_chinese_to_spanish_and_back_without_javascript(
    alice_in_chinese,
) -> None:
    # The switcher's plain form post and its 303, as a browser without JavaScript sends it.
    assert _switch(alice_in_chinese, "es", "/my/lab-results").status_code == 303
    page = alice_in_chinese.get("/my/lab-results").get_data(as_text=True)
    assert _lang(page) == "es"
    assert "<h1>Resultados de laboratorio</h1>" in page
    assert _switch(alice_in_chinese, "zh-Hant", "/my/lab-results").status_code == 303
    page = alice_in_chinese.get("/my/lab-results").get_data(as_text=True)
    assert _lang(page) == "zh-Hant"
    assert "<h1>檢驗結果</h1>" in page


def test_alice_reads_form_errors_in_traditional_chinese(alice_in_chinese) -> None:
    # A field's own check, and a service's refusal shown on its field.
    bad_address = post(
        alice_in_chinese,
        "/my/profile",
        {"contact_email": "not an email", "preferred_language": "zh-Hant"},
    )
    assert bad_address.status_code == 422
    page = bad_address.get_data(as_text=True)
    assert "請修正以下項目：" in page  # the summary, from a shared macro (templates/_macros)
    assert "請輸入有效的電子郵件地址。" in page
    assert "請選擇新結果要何時顯示。" in page
    no_address = post(
        alice_in_chinese,
        "/my/profile",
        {"mail_plans": "y", "preferred_language": "zh-Hant", "release_preference": "after_review"},
    )
    assert no_address.status_code == 422
    assert "若要收到電子郵件通知，請輸入電子郵件地址。" in no_address.get_data(as_text=True)


def test_a_notice_is_written_in_each_recipients_language(
    app, alice_in_chinese, session, people
) -> None:
    alice, bob = people.user("alice"), people.user("bob")
    for user in (alice, bob):
        user.patient.mail_messages = True
        user.patient.contact_email = user.patient.contact_email or user.email
    session.execute(unscoped(delete(OutboxMail), "test: only this test's notices"))
    session.flush()
    # Staged by whoever makes the change, in whatever language they read: here, nobody's.
    mail.stage_notices(
        session, [alice.id, bob.id], kind=EventType.MESSAGE_CREATED, portal_url="https://p.test"
    )
    staged = {
        m.user_id: m
        for m in session.scalars(
            select(OutboxMail).where(
                OutboxMail.user_id.in_([alice.id, bob.id]), OutboxMail.sent_at.is_(None)
            )
        )
    }
    assert staged[alice.id].subject == "病人入口網站有新訊息"
    assert "請登入查看：https://p.test/" in staged[alice.id].body
    assert "為保護您的隱私" in staged[alice.id].body
    assert staged[bob.id].subject == "A new message in your patient portal"


def test_wtforms_own_messages_are_in_traditional_not_simplified_chinese(
    alice_in_chinese, people
) -> None:
    # A provider who is not on her care team: WTForms' own "Not a valid choice."
    okafor = people.user("dr_okafor")
    data = {"to": str(okafor.id), "subject": "Hi", "body": "Hello"}
    response = post(alice_in_chinese, "/my/messages/new", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "不是有效的選擇。" in page  # WTForms' Taiwan catalog, not 不是有效的选择 (Simplified)


def test_a_status_word_is_chosen_per_kind_of_record(app) -> None:
    # In Spanish a completed plan and a completed visit do not take the same word.
    with app.test_request_context(), force_locale("es"):
        assert status_text(PlanStatus.COMPLETED) == "Completado"
        assert status_text(AppointmentStatus.COMPLETED) == "Realizada"
        assert status_text(ResultStatus.CANCELLED) == "Anulado"
        assert status_text(AppointmentStatus.CANCELLED) == "Cancelada"


def test_the_printable_summary_is_in_her_language(alice_in_chinese) -> None:
    page = alice_in_chinese.get("/my/record").get_data(as_text=True)
    assert _lang(page) == "zh-Hant"
    assert "<h1>我的病歷</h1>" in page
    assert "已更正" in page  # a corrected result's status, the value as the clinic wrote it


def test_account_mails_are_in_the_recipients_language_whoever_sends_them(
    app, as_user, session, people
) -> None:
    # Arrange: alice chose Traditional Chinese, bob Spanish; the admin reads Traditional
    # Chinese, and someone asks for alice's reset link from an English browser.
    alice, bob = people.user("alice"), people.user("bob")
    alice.patient.preferred_language = "zh-Hant"
    bob.patient.preferred_language = "es"
    session.execute(unscoped(delete(OutboxMail), "test: only this test's mails"))
    session.flush()
    english = app.test_client()
    token = csrf_token(english, "/forgot-password")
    english.post(
        "/forgot-password",
        data={"email": alice.email, "csrf_token": token},
        headers={"Accept-Language": "en"},
    )
    admin = as_user("admin")
    assert _switch(admin, "zh-Hant", "/admin/users").status_code == 303
    # Act
    post(admin, f"/admin/users/{bob.id}/password-reset")
    reset = post(admin, f"/admin/patients/{alice.patient.id}/access-reset")
    post(admin, "/admin/users/new", {"email": "dr.new@example.org", "display_name": "Dr New"})
    # Assert: each mail in its recipient's language, the admin's own page still in hers.
    staged = session.execute(select(OutboxMail.to_address, OutboxMail.subject)).all()
    assert sorted(staged) == sorted(
        [
            (alice.email, "設定您病人入口網站的新密碼"),
            (bob.email, "Elija una contraseña nueva para su portal del paciente"),
            (alice.patient.contact_email, "您的病人入口網站啟用碼"),
            ("dr.new@example.org", "Your invitation to the patient portal"),
        ]
    )
    bodies = session.scalars(select(OutboxMail.body).order_by(OutboxMail.id)).all()
    assert "30 分鐘" in bodies[0] or "30分鐘" in bodies[0], bodies[0]
    assert "30 minutos" in bodies[1], bodies[1]
    assert _lang(admin.get(reset.location).get_data(as_text=True)) == "zh-Hant"


def test_her_access_log_says_what_staff_did_in_her_language(
    app, alice_in_chinese, session, people
) -> None:
    # Arrange: dr.chen opens one of alice's results.
    chen = app.test_client()
    login(chen, DEMO_EMAILS["dr_chen"])
    assert chen.get(f"/staff/results/{a_result_of(session, people, 'alice').id}").status_code == 200
    # Act
    page = alice_in_chinese.get("/my/profile").get_data(as_text=True)
    with app.test_request_context(), force_locale("es"):
        newest = access_log_for_patient(session, people.actor("alice")).rows[0]
    # Assert: one sentence in her language (the words joined as Chinese joins them).
    assert "<td>醫師</td>" in page
    assert "<td>查看了一項檢驗結果</td>" in page
    assert (newest.role, newest.action, newest.record) == (
        "Profesional",
        "Consultó",
        "un resultado de laboratorio",
    )


def test_the_audit_report_names_actions_and_outcomes_in_the_admins_language(as_user) -> None:
    admin = as_user("admin")
    assert _switch(admin, "es", "/admin/audit").status_code == 303
    page = admin.get("/admin/audit?action=view").get_data(as_text=True)
    assert '<option value="">Cualquier acción</option>' in page
    assert "<td>Consulta</td>" in page
    assert '<span class="status">Correcto</span>' in page


def test_a_patient_who_never_chose_reads_the_browsers_language_until_they_choose(
    client, session, people
) -> None:
    # New accounts (the demo's too) choose nothing: the browser's language applies.
    alice = people.user("alice").patient
    assert alice.preferred_language is None
    browser = client
    login(browser, DEMO_EMAILS["alice"])
    spanish = {"Accept-Language": "es-ES,es;q=0.9"}
    page = browser.get("/my/", headers=spanish).get_data(as_text=True)
    assert _lang(page) == "es"
    assert (
        '<option selected value="">Igual que mi navegador</option><option lang="en" value="en">'
        in browser.get("/my/profile", headers=spanish).get_data(as_text=True)
    )
    # A choice wins over the browser, and "Same as my browser" gives the browser back the word
    # (also over the switch this browser's session remembers).
    assert _switch(browser, "zh-Hant", "/my/").status_code == 303
    assert _lang(browser.get("/my/", headers=spanish).get_data(as_text=True)) == "zh-Hant"
    saved = post(
        browser, "/my/profile", {"preferred_language": "", "release_preference": "after_review"}
    )
    assert saved.status_code == 303
    session.expire_all()
    assert people.user("alice").patient.preferred_language is None
    assert _lang(browser.get("/my/", headers=spanish).get_data(as_text=True)) == "es"
