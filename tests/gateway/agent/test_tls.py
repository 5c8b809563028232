"""The agent and the site hub reach the broker over TLS: the deployed central broker
(deploy/mosquitto: accounts, ACL) with its TLS listener enabled and a certificate of a CA
made for the test; both verify the broker's certificate against ``mqtt.ca_file`` and a
revocation reaches a simulated controller. An agent trusting another CA is refused and says
why."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.agent import Agent
from tests.gateway.agent.brokers import PASSWORDS, TlsBroker
from tests.gateway.agent.certs import make_ca, server_cert
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import agent_settings, running_core, state_file, until

SITE = ["s1"]


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[TlsBroker, Path, Path]]:
    """The TLS broker, the CA that signed its certificate, and another CA."""
    ca = make_ca(tmp_path / "pki", "lockgate-test-ca")
    other = make_ca(tmp_path / "pki", "another-ca")
    cert, key = server_cert(ca, tmp_path / "pki")
    broker = TlsBroker(cert, key, ca.cert)
    broker.start()
    yield broker, ca.cert, other.cert
    broker.cleanup()


def _agent(run: object, broker: TlsBroker, ca: Path, tmp: Path) -> Agent:
    sims = run.simulators  # type: ignore[attr-defined]
    settings = agent_settings(
        broker,
        {cid: sims[cid].driver_options() for cid in SITE},
        tls=True,
        ca_file=str(ca),
        username="south",
        password=PASSWORDS["south"],
    )
    return Agent(settings, "south", state_file(tmp, "south"), resend_s=1.0)


async def test_agent_and_hub_over_tls_carry_a_revocation(
    sqlite_url: str,
    tls: tuple[TlsBroker, Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, ca, other = tls
    caplog.set_level(logging.WARNING, logger="gateway.agent")
    async with running_core(
        sqlite_url,
        broker,
        SITE,
        account=("lockgate-sites", PASSWORDS["lockgate-sites"]),
        mqtt={"tls": True, "ca_file": str(ca)},
    ) as run:
        async with _agent(run, broker, ca, tmp_path) as south:
            await until(lambda: run.all_confirmed(SITE), what="the first sync over TLS")
            assert south.connected.is_set()
            assert run.holds("s1", tag(0))
            await run.block(0)
            await until(lambda: not run.holds("s1", tag(0)), what="the revocation over TLS")
            await until(lambda: run.settled(tag(0)), what="confirmed over TLS")
        assert "TLS certificate" not in caplog.text

        # an agent that trusts another CA does not connect, and says why
        (tmp_path / "wrong").mkdir()
        wrong = _agent(run, broker, other, tmp_path / "wrong")
        async with wrong:
            await until(
                lambda: "presented a TLS certificate that mqtt.ca_file" in caplog.text,
                what="the refusal logged",
            )
            assert not wrong.connected.is_set()
        message = next(r.getMessage() for r in caplog.records if "TLS certificate" in r.message)
        assert f"mqtt.ca_file ({other}) does not vouch for" in message
        assert "CERTIFICATE_VERIFY_FAILED" in message
