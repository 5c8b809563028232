"""The console in-process: every page for every role (allowed or 403), CSRF, session expiry,
lock-out, the reception flow, bad input (clear error, nothing stored)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.auth.roles import ROLES, allowed_actions
from gateway.commands import model as m
from gateway.core import Submission
from gateway.web.app import PAGES
from gateway.web.console import RECEPTION_ACTIONS
from tests.gateway.web.conftest import ADMIN, PASSWORD, Site, csrf_of, role_operator
from tests.sample import MAIN, VISITOR_CARD

GET_ROUTES = [(path, action) for path, _, action in PAGES] + [
    ("/credentials/4000001", "read_log"),
    ("/review?format=csv", "read_log"),
    ("/exposure?format=csv", "read_log"),
    ("/reception?format=csv", RECEPTION_ACTIONS),
    ("/credentials?q=anna&format=csv", "read_log"),
    ("/audit?format=csv", "read_log"),
]


def _may(role: str, action: str | tuple[str, ...]) -> bool:
    actions = (action,) if isinstance(action, str) else action
    return bool(allowed_actions(role) & set(actions))


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_page_for_every_role(site: Site, role: str) -> None:
    c, _ = await site.signed_in(role)
    for path, action in GET_ROUTES:
        r = await c.get(path)
        expected = 200 if _may(role, action) else 403
        assert r.status_code == expected, (role, path, r.status_code, r.text[:300])


async def test_signed_out_pages_redirect_and_posts_are_refused(site: Site) -> None:
    c = site.client()
    for path, _ in GET_ROUTES:
        r = await c.get(path)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path.split('?')[0]}"
    r = await c.post(f"/reception/{VISITOR_CARD}/return", data={"csrf_token": "x"})
    assert r.status_code == 401


async def test_state_changes_need_the_csrf_token(site: Site) -> None:
    c, csrf = await site.signed_in("reception")
    r = await c.post(f"/reception/{VISITOR_CARD}/return", data={})
    assert r.status_code == 403 and "CSRF" in r.text
    r = await c.post(f"/reception/{VISITOR_CARD}/return", data={"csrf_token": "forged"})
    assert r.status_code == 403
    cards = await c.get("/reception")
    assert f'id="card-{VISITOR_CARD}"' in cards.text, "a refused request changed nothing"
    r = await c.post(f"/reception/{VISITOR_CARD}/return", data={"csrf_token": csrf})
    assert r.status_code == 200, r.text
    assert "personal data erased: yes" in r.text
    assert f'id="card-{VISITOR_CARD}"' not in r.text


async def test_sessions_end_when_idle_and_at_their_age_and_at_sign_out(site: Site) -> None:
    c, csrf = await site.signed_in("auditor")
    site.clock.now += 899
    assert (await c.get("/")).status_code == 200
    site.clock.now += 901
    assert (await c.get("/")).status_code == 303, "idle expiry"
    c, csrf = await site.signed_in("auditor")
    for _ in range(49):
        site.clock.now += 880
        assert (await c.get("/")).status_code == 200
    site.clock.now += 880
    assert (await c.get("/")).status_code == 303, "absolute expiry after 12 hours"
    c, csrf = await site.signed_in("auditor")
    r = await c.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert (await c.get("/")).status_code == 303


async def test_repeated_failures_lock_the_name_out(site: Site) -> None:
    c = site.client()
    name = role_operator("hr")
    for _ in range(5):
        r = await c.post("/login", data={"operator": name, "password": "wrong password!"})
        assert r.status_code == 401 and "sign-in failed" in r.text
    # Locked now: even the right password is refused until the wait is over.
    r = await c.post("/login", data={"operator": name, "password": PASSWORD})
    assert r.status_code == 429 and "try again in 30 seconds" in r.text
    site.clock.now += 31
    r = await c.post("/login", data={"operator": name, "password": "wrong again!!"})
    assert r.status_code == 401
    r = await c.post("/login", data={"operator": name, "password": PASSWORD})
    assert r.status_code == 429 and "60 seconds" in r.text, "the wait doubles"
    site.clock.now += 61
    r = await c.post("/login", data={"operator": name, "password": PASSWORD})
    assert r.status_code == 303


def _issue_form(csrf: str, **over: str) -> dict[str, str | list[str]]:
    until = (datetime.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    form: dict[str, str | list[str]] = {
        "csrf_token": csrf,
        "number": "5000123",
        "holder_name": "Vera Besök",
        "company": "Besök AB",
        "mobile": "+46701234567",
        "sponsor": "emp-anna",
        "reason": "supplier",
        "spaces": ["sp-office"],
        "valid_until": until,
        "confirmed_in_person": "on",
        "return_duty_acknowledged": "on",
    }
    form.update(over)
    return form


async def test_reception_issues_lists_and_reports_a_card_lost(site: Site) -> None:
    c, csrf = await site.signed_in("issuer")
    r = await c.post("/reception/issue", data=_issue_form(csrf))
    assert r.status_code == 200, r.text
    assert "visitor card 5000123 issued" in r.text
    assert 'id="card-5000123"' in r.text and "Vera Besök" in r.text
    r = await c.post("/reception/5000123/lost", data={"csrf_token": csrf})
    assert r.status_code == 200
    assert "reported lost" in r.text and "fee recorded: NOK 0" in r.text
    audit = await c.get("/audit?actor=op-issuer&format=csv")
    assert "visitor_card_issue" in audit.text and "visitor_card_return" in audit.text


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"number": "abc"}, "number"),
        ({"mobile": "12"}, "mobile"),
        ({"valid_until": "tomorrow"}, "valid_until"),
        ({"confirmed_in_person": ""}, "confirmed_in_person"),
        ({"sponsor": "emp-nobody"}, "sponsor_employment_id"),
    ],
)
async def test_bad_visitor_card_input_names_the_field_and_stores_nothing(
    site: Site, override: dict[str, str], field: str
) -> None:
    c, csrf = await site.signed_in("issuer")
    before = (await c.get("/audit?format=csv")).text.count("\n")
    r = await c.post("/reception/issue", data=_issue_form(csrf, **override))
    assert r.status_code == 422, r.text
    assert "Nothing was changed" in r.text and field in r.text
    assert 'id="card-5000123"' not in r.text
    listing = await c.get("/credentials?q=5000123")
    assert "Nothing found" in listing.text
    after = (await c.get("/audit?format=csv")).text.count("\n")
    assert after - before <= 1, "at most the refusal is logged"


async def test_reception_role_may_return_but_not_issue(site: Site) -> None:
    c, csrf = await site.signed_in("reception")
    r = await c.post("/reception/issue", data=_issue_form(csrf))
    assert r.status_code == 403


async def test_credential_page_explains_a_lock(site: Site) -> None:
    c, _ = await site.signed_in("auditor")
    r = await c.get("/credentials/4000001?lock=door:ctrl-office/1")
    assert r.status_code == 200
    assert 'id="explain"' in r.text and 'id="can-open"' in r.text
    r = await c.get("/credentials/4000001?lock=nonsense")
    assert r.status_code == 200 and "lock:" in r.text
    r = await c.get("/credentials/999")
    assert r.status_code == 404


async def test_lists_are_paginated_searchable_and_download_as_csv(site: Site) -> None:
    c, _ = await site.signed_in("auditor")
    r = await c.get("/credentials?q=key")
    assert r.status_code == 200 and "100000001" in r.text and "4000001" not in r.text
    r = await c.get("/credentials?q=bj%C3%B6rn")
    assert 'id="people"' in r.text and "emp-bjorn-main" in r.text and "emp-bjorn-sub" in r.text
    assert "ID06BK0002 (active)" in r.text
    csv_text = (await c.get("/credentials?format=csv")).text
    assert csv_text.splitlines()[0] == "number,kind,state,holder,active,until,reasons"
    r = await c.get("/audit?page=2")
    assert r.status_code == 200 and "page 2" in r.text
    verify = await c.post("/audit/verify", headers={"X-CSRF-Token": csrf_of(r.text)})
    assert verify.status_code == 200 and "The chain is intact" in verify.text


async def test_delivery_manifest_with_errors_stores_nothing(site: Site) -> None:
    c, csrf = await site.signed_in("issuer")
    bad = "key_number\n123\n300000001\n300000001\n"
    r = await c.post(
        "/handout/delivery",
        data={"csrf_token": csrf, "order": "ord-1"},
        files={"file": ("delivery.csv", bad.encode(), "text/csv")},
    )
    assert r.status_code == 422
    assert 'id="manifest-errors"' in r.text and "listed twice" in r.text
    assert "Nothing found" in (await c.get("/credentials?q=300000001")).text


async def test_language_from_accept_language_and_choice(site: Site) -> None:
    c, csrf = await site.signed_in("issuer")
    r = await c.get("/reception", headers={"Accept-Language": "sv-SE,sv;q=0.9"})
    assert "Lämna ut ett besökskort" in r.text
    r = await c.post("/language", data={"csrf_token": csrf, "language": "nb", "next": "/keydesk"})
    assert r.status_code == 303
    r = await c.get("/keydesk")
    assert 'lang="nb"' in r.text and "Nøkkelskranke" in r.text


async def test_receipt_pdf_and_signature(site: Site) -> None:
    c, csrf = await site.signed_in("access_administrator")
    page = await c.get("/handout")
    assert page.status_code == 200 and 'id="unsigned-100000007"' in page.text
    assert "Delivery manifest" not in page.text, "issuing is not this role's"
    pdf = await c.get("/handout/receipt/100000007.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert (await c.get("/handout/receipt/100000008.pdf")).status_code == 404
    r = await c.post("/handout/100000007/signed", data={"csrf_token": csrf})
    assert r.status_code == 200 and "signed: in service" in r.text
    assert 'id="unsigned-100000007"' not in r.text
    again = await c.post("/handout/100000007/signed", data={"csrf_token": csrf})
    assert again.status_code == 422


async def test_returned_manifest_with_errors_links_nothing(site: Site) -> None:
    c, csrf = await site.signed_in("access_administrator")
    bad = (
        "key_number,first_name,last_name,id06\n"
        "100000008,Anna,Lindqvist,ID06AN0001\n"
        "100000008,Nobody,Here,ID06XX9999\n"
    )
    r = await c.post(
        "/handout/returned",
        data={"csrf_token": csrf},
        files={"file": ("returned.csv", bad.encode(), "text/csv")},
    )
    assert r.status_code == 422 and 'id="manifest-errors"' in r.text
    assert "row" in r.text.lower()
    state = await c.get("/credentials?q=100000008")
    assert "delivered" in state.text, "the key is still in stock"


async def test_access_review_removal_revokes_and_is_recorded(site: Site) -> None:
    c, csrf = await site.signed_in("administrator")
    page = await c.get("/review")
    assert page.status_code == 200 and 'id="remove-4000001"' in page.text
    r = await c.post(
        "/review", data={"csrf_token": csrf, "remove": ["4000001"], "note": "left the project"}
    )
    assert r.status_code == 200, r.text
    assert "access review recorded; 1 removed and revoked" in r.text
    assert "op-administrator" in r.text, "the last review names its reviewer"
    state = await c.get("/credentials/4000001")
    assert "returned" in state.text
    bad = await c.post("/review", data={"csrf_token": csrf, "remove": ["77", "77"]})
    assert bad.status_code == 422 and "listed twice" in bad.text
    auditor, _ = await site.signed_in("auditor")
    seen = await auditor.get("/review")
    assert seen.status_code == 200 and 'id="sign-off"' not in seen.text
    exposure = await auditor.get("/exposure?format=csv")
    assert exposure.text.splitlines()[0].startswith("credential,kind,reasons,lock")


async def test_hr_approves_an_employee_card_at_reception(site: Site) -> None:
    await site.gateway.call(
        site.gateway.core.submit_many,
        [
            Submission(m.RegisterTags(numbers=("4000002",)), ADMIN),
            Submission(m.HandOut(credential_number="4000002", employment_id="emp-erik"), ADMIN),
        ],
    )
    c, csrf = await site.signed_in("hr")
    page = await c.get("/reception")
    assert page.status_code == 200 and 'id="hr-4000002"' in page.text
    assert 'id="issue-card"' not in page.text and "return-" not in page.text
    r = await c.post("/reception/4000002/hr-approval", data={"csrf_token": csrf})
    assert r.status_code == 200 and "employee card 4000002 approved by HR" in r.text
    assert 'id="hr-4000002"' not in r.text
    bad = await c.post("/reception/x1/hr-approval", data={"csrf_token": csrf})
    assert bad.status_code == 422 and "credential_number" in bad.text


async def test_key_order_then_delivery_manifest(site: Site) -> None:
    c, csrf = await site.signed_in("issuer")
    form = {
        "csrf_token": csrf,
        "order_id": "ord-web-1",
        "org_number": MAIN,
        "quantity": "2",
        "delivery_address": "Stationsgatan 1, Hallsberg",
    }
    bad = await c.post("/handout/order", data={**form, "quantity": "0"})
    assert bad.status_code == 422 and "quantity" in bad.text
    r = await c.post("/handout/order", data=form)
    assert r.status_code == 200 and "key order ord-web-1 placed: 2 keys" in r.text, r.text
    manifest = "key_number\n300000001\n300000002\n"
    r = await c.post(
        "/handout/delivery",
        data={"csrf_token": csrf, "order": "ord-web-1"},
        files={"file": ("delivery.csv", manifest.encode(), "text/csv")},
    )
    assert r.status_code == 200 and "2 keys registered as delivered against ord-web-1" in r.text
    listing = await c.get("/credentials?q=30000000")
    assert "300000001" in listing.text and "delivered" in listing.text
