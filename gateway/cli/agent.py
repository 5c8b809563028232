"""``lockgate agent --site ID --config FILE``: the edge agent of one site.

It serves the controllers and wall stations of its configuration from a local SQLite file
(``--state``) and talks to the core only over MQTT (the ``[mqtt]`` section: the agent's own
account, whose name is the site id). SIGTERM and SIGINT stop it. Exit codes: 0 after a
graceful stop, 1 when it failed, 2 for an invalid configuration or site.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gateway.cli.run import LogFormat, configure_logging
from gateway.config import ConfigError, Settings, load_settings

log = logging.getLogger("lockgate")

SITE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""What a site id may be (a topic level and a broker account name)."""


async def serve_agent(settings: Settings, site: str, state: str) -> int:
    """Run the agent until SIGTERM/SIGINT; returns the exit code."""
    from gateway.agent import Agent

    try:
        agent = Agent(settings, site, state)
    except ValueError as exc:
        log.error("invalid agent: %s", exc)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.start()
        log.info("lockgate agent running", extra={"site": site, "state": state})
        await stop.wait()
    finally:
        await agent.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("lockgate agent stopped")
    return 0


def agent_command(
    site: Annotated[str, typer.Option("--site", help="The site id (its broker account).")],
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="TOML configuration of the site.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Local SQLite file (default lockgate-agent-<site>.db)."),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="kv (key=value) or json (JSON lines).")
    ] = LogFormat.KV,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Run the edge agent of one site: its controllers and wall stations, a local store, MQTT
    to the core."""

    def refuse(message: str) -> NoReturn:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        refuse(f"--log-level: {log_level!r} is not one of debug, info, warning, error")
    if not SITE_ID.fullmatch(site):
        refuse(f"--site: must be 1 to 64 letters, digits, '_', '.', ':' or '-', got {site!r}")
    path = Path(state or f"lockgate-agent-{site}.db")
    if path.is_dir() or not path.parent.is_dir():
        refuse(f"--state: {str(path)!r} is not a file in an existing folder")
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        refuse(str(exc))
    configure_logging(log_format, log_level)
    try:
        code = asyncio.run(serve_agent(settings, site, str(path)))
    except Exception as exc:
        log.critical("lockgate agent failed: %s", exc, exc_info=True)
        code = 1
    raise typer.Exit(code)


__all__ = ["agent_command", "serve_agent"]
