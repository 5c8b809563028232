"""deploy/haproxy: the console proxy for several core instances sends traffic only to the
instance whose ``/readyz`` answers 200 (the leader; tests/gateway/leadership/test_console.py
shows a standby's answers 503), and every server line is checked."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy" / "lockgate-console.cfg"


def _backend() -> list[str]:
    lines = [ln.split("#", 1)[0].strip() for ln in CONFIG.read_text().splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("backend "))
    body: list[str] = []
    for ln in lines[start + 1 :]:
        if ln.startswith(("frontend ", "backend ", "defaults", "global")):
            break
        if ln:
            body.append(ln)
    return body


def test_the_proxy_routes_to_the_instance_whose_readyz_answers_200() -> None:
    backend = _backend()
    assert "option httpchk" in backend
    assert "http-check send meth GET uri /readyz" in backend
    assert "http-check expect status 200" in backend
    defaults = next(ln for ln in backend if ln.startswith("default-server"))
    assert " check " in f" {defaults} "
    servers = [ln for ln in backend if ln.startswith("server ")]
    assert len(servers) >= 2, "a proxy for one core has nothing to route"


def test_the_proxy_terminates_tls_as_the_example_config_expects() -> None:
    text = CONFIG.read_text()
    assert "ssl crt" in text
    example = (ROOT / "deploy" / "lockgate.toml").read_text()
    assert "secure_cookies = true" in example
