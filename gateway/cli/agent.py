"""``lockgate agent --site ID --config FILE``: the edge agent of one site.

It serves the controllers of its configuration from a local SQLite file (``--state``) and
talks to the core only over MQTT (the ``[mqtt]`` section: the agent's own account, whose name
is the site id). SIGTERM and SIGINT stop it. Exit codes: 0 after a graceful stop, 1 when it
failed, 2 for an invalid configuration or site.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import identifier
from gateway.cli.errors import BAD_INPUT, fail
from gateway.cli.run import LogFormat, configure_logging
from gateway.config import ConfigError, Settings, load_settings

log = logging.getLogger("lockgate")


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
    """Run the edge agent of one site: its controllers, a local store, MQTT to the core."""
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        typer.echo(f"error: --log-level: {log_level!r} is not a level", err=True)
        raise typer.Exit(2)
    site = identifier(site, "--site")
    state_path = Path(state or f"lockgate-agent-{site}.db")
    if state_path.is_dir() or not state_path.parent.is_dir():
        fail(f"--state: {str(state_path)!r}: needs a file in an existing folder", BAD_INPUT)
    configure_logging(log_format, log_level)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        log.error("invalid configuration: %s", exc)
        raise typer.Exit(2) from None
    try:
        code = asyncio.run(serve_agent(settings, site, str(state_path)))
    except Exception as exc:
        log.critical("lockgate agent failed: %s", exc, exc_info=True)
        code = 1
    raise typer.Exit(code)


__all__ = ["agent_command", "serve_agent"]
