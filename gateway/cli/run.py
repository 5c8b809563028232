"""``lockgate run``: the gateway as a long-running service.

Logs are structured, one line per event, as ``key=value`` pairs (default) or JSON lines
(``--log-format json``); they carry ids, codes and counts, never personal data. SIGTERM and
SIGINT stop the gateway gracefully (the bridge publishes ``offline``, in-flight transactions
finish). Exit codes: 0 after a graceful stop, 1 when the gateway could not start or failed,
2 for an invalid configuration.

``--role all`` (the default) runs everything in this one process, as always. ``--role core``
runs the core as one of several instances on one PostgreSQL database: it serves only while it
holds the leader lease and stands by otherwise (:mod:`gateway.leadership`); on SQLite it is
the only instance and always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url

from gateway.cli.common import STATE
from gateway.config import ConfigError, Settings, load_settings

log = logging.getLogger("lockgate")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class Role(StrEnum):
    ALL = "all"
    CORE = "core"


class LogFormat(StrEnum):
    KV = "kv"
    JSON = "json"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    if record.exc_info:
        out["error"] = logging.Formatter().formatException(record.exc_info)
    return out


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    """``key=value`` pairs; values with spaces or quotes are JSON-quoted."""

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in _fields(record).items():
            if isinstance(value, str):
                text = value
                if not text or any(c in text for c in ' "=\n\t'):
                    text = json.dumps(text, ensure_ascii=False)
            else:
                text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
            parts.append(f"{key}={text}")
        return " ".join(parts)


def configure_logging(fmt: LogFormat, level: str) -> None:
    """Send every log record to stderr, structured."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if fmt is LogFormat.JSON else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":
        # The MQTT library logs every packet at DEBUG and warns about call counts.
        logging.getLogger("mqtt").setLevel(logging.ERROR)


def describe(settings: Settings) -> dict[str, Any]:
    """What the gateway will use, for the start-up log line (no passwords)."""
    url = make_url(settings.database.resolved_url()).render_as_string(hide_password=True)
    m = settings.mqtt
    return {
        "database": url,
        "broker": f"{'mqtts' if m.tls else 'mqtt'}://{m.host}:{m.port}" if m.enabled else "off",
        "base_topic": m.base_topic,
        "client_id": m.client_id,
    }


async def serve_core(settings: Settings, *, sites: bool = False) -> int:
    """Run ``--role core`` until SIGTERM/SIGINT: stand by, lead while holding the lease
    (with ``sites``, the leader also serves the site agents). With ``web.enabled`` the
    console listens the whole time: the leader's serves, a standby's answers 503 naming the
    leader (:mod:`gateway.web.corerole`)."""
    from gateway.agent import site_hub
    from gateway.compose import build_core_role
    from gateway.store import migrate
    from gateway.sync.events import SyncSink

    console = None
    sinks: list[SyncSink] = []
    if settings.web.enabled:
        from gateway.web.corerole import CoreConsole
        from gateway.web.metrics import EventCounter, WebMetrics

        metrics = WebMetrics()
        console = CoreConsole(settings.web, metrics=metrics)
        sinks.append(EventCounter(metrics))
    try:
        leadership = build_core_role(
            settings,
            extra_services=[
                *([site_hub] if sites else []),
                *([console.leader_console] if console is not None else []),
            ],
            extra_sinks=sinks,
        )
    except (ValueError, ConfigError) as exc:
        log.error("invalid configuration: %s", exc)
        return 2
    try:
        await asyncio.to_thread(migrate.check_up_to_date, settings.database.resolved_url())
        if console is not None:
            console.follow(leadership)
            await console.start()
    except Exception as exc:
        log.error("lockgate could not start: %s", exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "lockgate core starting",
        extra={**describe(settings), "role": "core", "instance": leadership.instance},
    )
    try:
        await leadership.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if console is not None:
            await console.stop()
    log.info("lockgate stopped")
    return 0


async def serve(settings: Settings, *, sites: bool = False) -> int:
    """Run the gateway until SIGTERM/SIGINT; returns the exit code. With ``sites`` it also
    serves the site agents (:func:`gateway.agent.site_hub`)."""
    from gateway.compose import ServiceFactory, build_gateway
    from gateway.sync.events import SyncSink

    # The site hub and the web console are imported only when they run (the web console
    # alone takes about half a second to import, before the gateway can start loading).
    extra_sinks: list[SyncSink] = []
    extra_services: list[ServiceFactory] = []
    try:
        if sites:
            from gateway.agent import site_hub

            extra_services.append(site_hub)
        if settings.web.enabled:
            from gateway.web import web_service
            from gateway.web.metrics import EventCounter, WebMetrics

            metrics = WebMetrics()
            extra_sinks.append(EventCounter(metrics))
            extra_services.append(web_service(settings.web, metrics=metrics))
        gateway = build_gateway(settings, extra_sinks=extra_sinks, extra_services=extra_services)
    except (ValueError, ConfigError) as exc:
        log.error("invalid configuration: %s", exc)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("lockgate starting", extra=describe(settings))
    try:
        await gateway.start()
    except Exception as exc:
        log.error("lockgate could not start: %s", exc, exc_info=True)
        with contextlib.suppress(Exception):
            await gateway.stop()
        return 1
    log.info("lockgate running", extra={"services": [s.name for s in gateway.services]})
    try:
        await stop.wait()
        log.info("lockgate stopping")
    finally:
        await gateway.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("lockgate stopped")
    return 0


def run_command(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help="TOML configuration file (overrides the global one)."),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="kv (key=value) or json (JSON lines).")
    ] = LogFormat.KV,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="all: everything in this process (default). core: one of several core "
            "instances on one PostgreSQL; it serves only while it holds the leader lease.",
        ),
    ] = Role.ALL,
    sites: Annotated[
        bool,
        typer.Option(
            "--sites",
            help="Also serve site agents (`lockgate agent`) over MQTT: publish their desired "
            "state, apply their confirmations and events.",
        ),
    ] = False,
) -> None:
    """Run the gateway: the MQTT bridge and every configured service, until SIGTERM/SIGINT."""
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        typer.echo(
            f"error: --log-level: {log_level!r} is not one of debug, info, warning, error",
            err=True,
        )
        raise typer.Exit(2)
    configure_logging(log_format, log_level)
    overrides: dict[str, Any] = {}
    if STATE.db_url:
        overrides["database"] = {"url": STATE.db_url}
    try:
        settings = load_settings(config or STATE.config, **overrides)
    except ConfigError as exc:
        log.error("invalid configuration: %s", exc)
        raise typer.Exit(2) from None
    try:
        code = asyncio.run(
            serve_core(settings, sites=sites) if role is Role.CORE else serve(settings, sites=sites)
        )
    except Exception as exc:
        log.critical("lockgate failed: %s", exc, exc_info=True)
        code = 1
    raise typer.Exit(code)


__all__ = [
    "JsonLinesFormatter",
    "KeyValueFormatter",
    "LogFormat",
    "Role",
    "run_command",
    "serve",
    "serve_core",
]
