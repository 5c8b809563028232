"""Configuration: a TOML file plus ``LOCKGATE_*`` environment overrides.

Precedence (highest first): explicit arguments, environment variables
(``LOCKGATE_DATABASE__URL``, ``LOCKGATE_MQTT__HOST``, ... with ``__`` between levels), the TOML
file given with ``--config`` (or ``LOCKGATE_CONFIG``), then the defaults below. Every option is
documented in ``docs/configuration.md``; a test checks that the two agree.
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.domain.timeutil import DEFAULT_TIMEZONE
from gateway.rules.parameters import RulesConfig

DEFAULT_DB_FILE = "lockgate.db"
_SITE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = Field(
        default="",
        description="SQLAlchemy URL: sqlite:///PATH or postgresql://USER@HOST/DB. Empty means "
        f"a SQLite file {DEFAULT_DB_FILE!r} in the working directory.",
    )

    def resolved_url(self) -> str:
        from gateway.store.database import default_sqlite_url

        return self.url or default_sqlite_url(Path.cwd() / DEFAULT_DB_FILE)


class SiteSettings(_Section):
    timezone: str = Field(default=DEFAULT_TIMEZONE, description="IANA time zone of the site.")
    working_day_end: time = Field(
        default=time(17, 0), description="End of the working day (forgot-card visitor cards)."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected e.g. Europe/Stockholm)") from None
        return v


class RulesSettings(_Section):
    default_revalidation_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="Revalidation interval of keys whose spaces set none; 0 means never.",
    )
    blacklist_capacity: int = Field(
        default=3000, ge=1, le=100000, description="Blacklist entries a cylinder holds."
    )
    application_working_days: int = Field(
        default=10, ge=1, le=60, description="Handling time of an access application."
    )
    expedited_working_days: int = Field(
        default=3, ge=1, le=60, description="Handling time of an expedited application."
    )


class MqttSettings(_Section):
    enabled: bool = Field(default=True, description="Run the MQTT bridge.")
    host: str = Field(default="127.0.0.1", description="Broker host name.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    base_topic: str = Field(default="lockgate", description="First level of every topic.")
    client_id: str = Field(
        default="lockgate-gateway",
        description="MQTT client id (stable: the persistent session is bound to it).",
    )
    username: str | None = Field(default=None, description="User name at the broker.")
    password: str | None = Field(default=None, description="Password at the broker.")
    tls: bool = Field(default=False, description="Connect with TLS.")
    ca_file: str | None = Field(default=None, description="CA certificate file for TLS.")
    cert_file: str | None = Field(default=None, description="Client certificate for TLS.")
    key_file: str | None = Field(default=None, description="Client key for TLS.")
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="MQTT v5 session expiry of the persistent session."
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="Keep-alive interval.")
    max_batch: int = Field(
        default=200, ge=1, le=10000, description="Requests applied in one transaction at most."
    )
    max_pending: int = Field(
        default=2000,
        ge=10,
        le=1000000,
        description="Requests the broker may have in flight to the gateway (MQTT 5 Receive "
        "Maximum): they are held in memory until applied; the gateway holds at most twice "
        "this many, leaving the rest queued at the broker.",
    )
    replay_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="After a lost connection, what the gateway published in this many last "
        "seconds is published again (a broker killed between two saves loses it); keep it at "
        "least twice the broker's autosave_interval.",
    )
    system_operator: str = Field(
        default="central-system", description="Operator that MQTT requests act as."
    )
    client_operators: dict[str, str] = Field(
        default_factory=dict,
        description="Operator per MQTT client identity (request property 'client'), "
        "overriding system_operator.",
    )


class DeviceSettings(_Section):
    id: str = Field(description="Device id (station id or controller id).")
    driver: str = Field(description="Driver entry-point name, e.g. serial-station, modbus-door.")
    options: dict[str, Any] = Field(default_factory=dict, description="Driver options.")
    operated: bool = Field(
        default=False,
        description="A desk station served by an operator with `lockgate station`, not by "
        "the service.",
    )


class ControllerDeviceSettings(DeviceSettings):
    pulse_seconds: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="Lock release time of a grant or a pulse, kept on the controller and "
        "restored whenever it lost its memory; unset: the controller keeps its own.",
    )
    held_open_seconds: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="Seconds a door may stand open before it counts as held open, kept like "
        "pulse_seconds.",
    )
    door_modes: dict[int, Literal["locked", "unlocked", "lockdown"]] = Field(
        default_factory=dict,
        description="Mode of each door, by door number, kept like pulse_seconds; doors not "
        "named keep theirs.",
    )
    clock_tolerance_s: float = Field(
        default=2.0,
        gt=0,
        description="The controller's clock is set to the gateway's when it is off by more.",
    )
    device_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Time limit of one operation on this controller; unset: sync.device_timeout_s.",
    )
    write_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Time limit of one allow-list write on this controller; unset: its "
        "device_timeout_s. A controller without an atomic commit (uhppote-door) writes and "
        "reads back card by card: allow a few round trips per changed card.",
    )


class SyncSettings(_Section):
    retry_initial_s: float = Field(default=0.5, gt=0, description="First retry delay.")
    retry_max_s: float = Field(default=30.0, gt=0, description="Longest retry delay.")
    device_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time limit of one device operation before it counts as failed.",
    )
    tick_s: float = Field(
        default=1.0,
        gt=0,
        description="How often time-driven changes "
        "(expiries) and other processes' changes are picked up.",
    )
    confirm_wait_s: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description="Site agent: how long a new confirmation waits for the site's other "
        "controllers still writing, so that their confirmations go in one message.",
    )


class RetentionSettings(_Section):
    personal_data_days: int = Field(
        default=730,
        ge=1,
        description="Days personal data and history are kept (2 years by the seed's routine).",
    )
    run_every_s: float = Field(default=3600.0, gt=0, description="Retention job interval.")


class AuditSettings(_Section):
    anchor_every_s: float = Field(
        default=300.0,
        gt=0,
        description="How often the head of the audit log is anchored (when it moved).",
    )
    anchor_file: str | None = Field(
        default=None,
        description="JSON-lines file the anchors are appended to; empty: only the MQTT "
        "audit_anchor event.",
    )


class LeadershipSettings(_Section):
    lease_s: float = Field(
        default=5.0,
        ge=1.0,
        le=300.0,
        description="How long the core leader's lease lasts without renewal (role core, "
        "PostgreSQL): a standby takes over at most this long after the leader died.",
    )
    renew_s: float = Field(
        default=1.0,
        gt=0,
        description="How often the leader renews its lease and a standby tries to take it; "
        "at most half of lease_s.",
    )
    lock_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="How long a standby waits for the store's write lock when it takes the "
        "lease, before trying again at the next renew_s.",
    )

    @field_validator("renew_s")
    @classmethod
    def _renew(cls, v: float, info: ValidationInfo) -> float:
        lease = info.data.get("lease_s")
        if lease is not None and v > lease / 2:
            raise ValueError(f"must be at most half of lease_s ({lease:g} s)")
        return v


class HubSettings(_Section):
    """The core's site hub (``lockgate run --sites``, ``--role core --sites``)."""

    sites: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Site id -> the controller ids pinned to it. Empty: a site serves the "
        "controllers its agent names (the first site to name one keeps it). Given: only these "
        "sites are served, each only its pinned controllers.",
    )
    part_bytes: int = Field(
        default=262144,
        ge=4096,
        le=16777216,
        description="Largest desired document sent in one MQTT message (bytes of JSON); a "
        "larger one is sent in parts. Keep it well below the broker's max_packet_size.",
    )

    @field_validator("sites")
    @classmethod
    def _pinned_once(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for site, controllers in v.items():
            if not _SITE_ID.match(site):
                raise ValueError(f"site id {site!r}: letters, digits and _ . : - (1..64)")
            for cid in controllers:
                if cid in seen and seen[cid] != site:
                    raise ValueError(f"controller {cid!r} is pinned to {seen[cid]} and {site}")
                seen[cid] = site
        return v


class WebSettings(_Section):
    enabled: bool = Field(
        default=False,
        description="Serve the web console and the HTTP API (`lockgate demo` always does).",
    )
    address: str = Field(
        default="127.0.0.1:8080",
        pattern=r"^[^\s:]+:[0-9]{1,5}$",
        description="HOST:PORT the console and the HTTP API listen on.",
    )
    public_url: str | None = Field(
        default=None,
        description="The base URL people and other core instances reach this console at "
        "(http:// or https://, e.g. behind a proxy); a core leader records it in the lease so "
        "that a standby's console links to it. Unset: derived from address (none for a "
        "wildcard address such as 0.0.0.0).",
    )
    tls_cert_file: str | None = Field(
        default=None, description="Certificate (PEM) to serve HTTPS with; unset: plain HTTP."
    )
    tls_key_file: str | None = Field(default=None, description="Key (PEM) of the certificate.")
    secure_cookies: bool = Field(
        default=False,
        description="Mark the session cookie Secure although the console serves plain HTTP "
        "(behind a TLS-terminating proxy); always on with TLS.",
    )
    session_idle_s: float = Field(
        default=900.0, gt=0, description="A console session ends after this long unused."
    )
    session_max_s: float = Field(
        default=43200.0, gt=0, description="A console session ends this long after sign-in."
    )
    lockout_after: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed sign-ins of one operator name before it is locked out; each "
        "further failure doubles the wait (from 30 s, at most 15 min).",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        return _base_url(v)

    def host_port(self) -> tuple[str, int]:
        """The address as (host, port)."""
        host, _, port = self.address.rpartition(":")
        return host, int(port)

    def console_url(self, port: int | None = None) -> str | None:
        """The base URL of this console for others (ending in ``/``): ``public_url``, else
        derived from ``address`` (with ``port``, the port actually bound, when given); None
        for a wildcard address, which names no host another machine can reach."""
        if self.public_url is not None:
            return self.public_url
        host, bound = self.host_port()
        if host in WILDCARD_HOSTS:
            return None
        scheme = "https" if self.tls_cert_file else "http"
        return f"{scheme}://{host}:{port if port is not None else bound}/"


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
"""Bind addresses that listen on every interface (and name no reachable host)."""

_URL_MAX = 500
"""The longest console URL (the lease table's ``console_url`` column)."""


def _base_url(v: str) -> str:
    """``v`` checked as the base URL of a web console and ending in ``/``."""
    from urllib.parse import urlsplit

    hint = "expected an http:// or https:// URL such as https://lockgate-a.example.com/"
    if not v or v != v.strip() or any(c.isspace() for c in v):
        raise ValueError(f"{v!r} is not a URL: {hint}")
    try:
        parts = urlsplit(v)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{v!r} is not a valid URL ({exc}): {hint}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{v!r} has no http:// or https:// scheme: {hint}")
    if not parts.hostname:
        raise ValueError(f"{v!r} names no host: {hint}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password (it is shown to everyone)")
    if parts.query or parts.fragment or v.endswith(("?", "#")):
        raise ValueError(f"{v!r} must not have a query or fragment: {hint}")
    if port == 0:
        raise ValueError(f"{v!r} has port 0: {hint}")
    url = v if v.endswith("/") else v + "/"
    if len(url) > _URL_MAX:
        raise ValueError(f"longer than {_URL_MAX} characters")
    return url


class AgentSettings(_Section):
    """Settings only the edge agent (``lockgate agent``) reads."""

    key_wait_s: float = Field(
        default=3.0,
        gt=0,
        le=60.0,
        description="How long a key at one of the agent's stations waits for the core's "
        "planned image before it is served from the agent's cache.",
    )


class Settings(BaseSettings):
    """Every setting of the gateway."""

    model_config = SettingsConfigDict(
        env_prefix="LOCKGATE_", env_nested_delimiter="__", extra="forbid"
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    site: SiteSettings = Field(default_factory=SiteSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    leadership: LeadershipSettings = Field(default_factory=LeadershipSettings)
    hub: HubSettings = Field(default_factory=HubSettings)

    web: WebSettings = Field(default_factory=WebSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    stations: list[DeviceSettings] = Field(default_factory=list)
    controllers: list[ControllerDeviceSettings] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _CONFIG_FILE.get("path")
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def rules_config(self) -> RulesConfig:
        return RulesConfig(
            timezone=ZoneInfo(self.site.timezone),
            default_revalidation_days=self.rules.default_revalidation_days or None,
            blacklist_capacity=self.rules.blacklist_capacity,
            working_day_end=self.site.working_day_end,
        )


_CONFIG_FILE: dict[str, Path] = {}


class ConfigError(ValueError):
    """The configuration file or environment is invalid; the message names the option."""


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (or ``$LOCKGATE_CONFIG``), the environment and defaults."""
    from pydantic import ValidationError

    chosen = path or os.environ.get("LOCKGATE_CONFIG")
    if chosen is not None:
        p = Path(chosen)
        if not p.is_file():
            raise ConfigError(f"config: file {p} does not exist")
        _CONFIG_FILE["path"] = p
    else:
        _CONFIG_FILE.pop("path", None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"config: {loc}: {message}") from None
    except ValueError as exc:  # a TOML syntax error
        raise ConfigError(f"config: {exc}") from None
    finally:
        _CONFIG_FILE.pop("path", None)
