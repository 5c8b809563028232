"""The brokers of the multi-site tests: the accounts of deploy/mosquitto/passwd.example for a
deployed central broker, a site broker bridged to it with deploy/mosquitto/bridge-site.conf,
and a broker with the deployed packet size limit."""

from __future__ import annotations

from pathlib import Path

from gateway.demo.broker import DeployedMosquitto, PrivateMosquitto, free_port

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


class TlsBroker(DeployedMosquitto):
    """The deployed central broker (deploy/mosquitto: accounts, ACL) with its TLS listener
    uncommented, on :attr:`port`, with the given server certificate; the loopback listener
    moves to another free port."""

    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        super().__init__(DEPLOY / "mosquitto", PASSWORDS)
        self.files = {"cafile": ca, "certfile": cert, "keyfile": key}

    def _write_config(self) -> None:
        super()._write_config()
        out, listeners = [], 0
        for line in self.config_path.read_text().splitlines():
            if line.startswith("#listener 8883"):
                line = f"listener {self.port} 127.0.0.1"
                listeners = 1
            elif line.startswith("#") and listeners == 1 and len(line) > 1 and line[1] != " ":
                line = line[1:]
            else:
                listeners = 2 if listeners == 1 else listeners
            key = line.split(" ", 1)[0]
            if key in self.files:
                line = f"{key} {self.files[key]}"
            elif key in ("password_file", "acl_file"):
                line = f"{key} {self.dir / ('passwd' if key == 'password_file' else 'acl')}"
            elif line == f"listener {self.port} 127.0.0.1" and listeners == 0:
                line = f"listener {free_port()} 127.0.0.1"  # the loopback one
            out.append(line)
        assert listeners, "deploy/mosquitto/mosquitto.conf has no '#listener 8883' block"
        self.config_path.write_text("\n".join(out) + "\n")
