"""Every state-changing console route and every API request for every role: allowed, or
refused with 403 and nothing changed; the package ships every file the console serves."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from gateway.auth.roles import ROLES, allowed_actions
from gateway.web import i18n
from tests.gateway.web.conftest import Site, role_token
from tests.sample import VISITOR_CARD

ROOT = Path(__file__).resolve().parents[3]

POSTS: list[tuple[str, str | tuple[str, ...], dict[str, str]]] = [
    ("/language", "read_log", {"language": "sv"}),
    ("/audit/verify", "read_log", {}),
    ("/review", "record_access_review", {"note": "route check"}),
    (f"/reception/{VISITOR_CARD}/lost", "change_credentials", {}),
    ("/reception/4000001/hr-approval", "approve_employee_cards", {}),
    ("/reception/issue", "issue_credentials", {"number": "x"}),
    ("/handout/delivery", "issue_credentials", {"order": ""}),
    ("/handout/order", "issue_credentials", {"order_id": ""}),
    ("/handout/returned", "link_credentials", {}),
    ("/handout/100000007/signed", "link_credentials", {}),
    ("/keydesk/desk-1/answer", "link_credentials", {"serial": "100000001"}),
    ("/logout", "read_log", {}),
]


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_state_changing_route_for_every_role(site: Site, role: str) -> None:
    allowed = allowed_actions(role)
    c, csrf = await site.signed_in(role)
    for path, action, data in POSTS:  # /logout last
        actions = {action} if isinstance(action, str) else set(action)
        r = await c.post(path, data={"csrf_token": csrf, **data})
        if allowed & actions:
            assert r.status_code != 403, (role, path, r.text[:300])
        else:
            assert r.status_code == 403, (role, path, r.status_code)
    auditor, _ = await site.signed_in("auditor")
    page = await auditor.get(f"/credentials/{VISITOR_CARD}")
    lost = "lost" in page.text
    assert lost == ("change_credentials" in allowed), "the card was reported lost only if allowed"


@pytest.mark.parametrize("role", list(ROLES))
async def test_api_requests_follow_the_role(site: Site, role: str) -> None:
    c = site.client()
    r = await c.post(
        "/api/v1/requests/visitor_card_change",
        json={"number": VISITOR_CARD, "valid_until": "2099-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {role_token(role)}", "Idempotency-Key": f"r-{role}"},
    )
    if "change_credentials" in allowed_actions(role):
        assert r.status_code != 403, r.text
    else:
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"


def test_the_package_ships_every_file_the_console_serves() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    web = Path(i18n.__file__).parent
    served = [
        p.relative_to(web.parent).as_posix()
        for folder in ("templates", "static", "locale")
        for p in (web / folder).rglob("*")
        if p.is_file() and p.suffix != ".pot"
    ]
    assert served
    missing = [f for f in served if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
