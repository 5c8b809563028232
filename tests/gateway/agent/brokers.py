"""The brokers of the multi-site tests: the accounts of deploy/mosquitto/passwd.example for a
deployed central broker, a site broker bridged to it with deploy/mosquitto/bridge-site.conf,
and a broker with the deployed packet size limit."""

from __future__ import annotations

from pathlib import Path

from gateway.demo.broker import PrivateMosquitto

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PASSWORDS = {
    "lockgate": "gateway-secret",
    "central": "central-secret",
    "lockgate-sites": "sites-secret",
    "north": "north-secret",
    "south": "south-secret",
    "east": "east-secret",
}


class SiteBroker(PrivateMosquitto):
    """A private Mosquitto with the bridge section of deploy/mosquitto/bridge-site.conf,
    pointed at ``central`` (plain TCP on loopback instead of TLS) as site ``site``."""

    def __init__(self, central: PrivateMosquitto, site: str) -> None:
        super().__init__()
        self.central = central
        self.site = site

    def _write_config(self) -> None:
        super()._write_config()
        bridge = []
        for line in (DEPLOY / "mosquitto" / "bridge-site.conf").read_text().splitlines():
            if line.startswith(("bridge_cafile", "bridge_tls_version")):
                continue  # loopback: no TLS in the test
            line = line.replace("depot-hallsberg", self.site)
            if line.startswith("address "):
                line = f"address {self.central.host}:{self.central.port}"
            if line.startswith("remote_password "):
                line = f"remote_password {PASSWORDS[self.site]}"
            bridge.append(line)
        with self.config_path.open("a") as f:
            f.write("\n".join(bridge) + "\n")


def deployed_limit(key: str) -> str:
    """The value of ``key`` in deploy/mosquitto/mosquitto.conf."""
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.startswith(f"{key} "):
            return line.split(" ", 1)[1].strip()
    raise KeyError(key)


class LimitedBroker(PrivateMosquitto):
    """A private Mosquitto with the deployed ``max_packet_size`` (1 MiB): a larger message
    costs its sender the connection."""

    def _write_config(self) -> None:
        super()._write_config()
        with self.config_path.open("a") as f:
            f.write(f"max_packet_size {deployed_limit('max_packet_size')}\n")
