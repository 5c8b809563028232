"""The web console as a gateway service: the ASGI application under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator

import uvicorn
from starlette.types import ASGIApp

from gateway.config import WebSettings
from gateway.runtime import Gateway, cancel_and_wait
from gateway.web.app import create_app
from gateway.web.keydesk import KeyDesk
from gateway.web.metrics import WebMetrics

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: the gateway's owner (``lockgate
    run``, the demo) handles SIGTERM and SIGINT and stops every service."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AppServer:
    """An ASGI application served under uvicorn on ``settings.address`` (and its TLS files).

    ``start`` returns once the socket listens (a port in use fails the start); ``stop``
    closes the server and awaits its task."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port the application is served on (the bound one once started)."""
        port = self.settings.host_port()[1]
        if self.server is not None and self.server.servers:
            sockets = self.server.servers[0].sockets
            if sockets:
                port = int(sockets[0].getsockname()[1])
        return port

    @property
    def url(self) -> str:
        """Where the application is served (the bound port once started)."""
        host = self.settings.host_port()[0]
        scheme = "https" if self.settings.tls_cert_file else "http"
        return f"{scheme}://{host}:{self.port}/"

    async def start(self, app: ASGIApp) -> None:
        host, port = self.settings.host_port()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=self.settings.tls_cert_file,
            ssl_keyfile=self.settings.tls_key_file,
            timeout_graceful_shutdown=2,
        )
        try:
            sock = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise RuntimeError(
                f"web.address: the console cannot listen on {host}:{port}: {exc.strerror}"
            ) from None
        server = _Server(config)
        self.server = server
        self._task = asyncio.create_task(self._serve(server, sock), name="lockgate-web")
        while not server.started:
            if self._task.done():
                failure = self._task.exception() if not self._task.cancelled() else None
                self._task = None
                raise RuntimeError(f"web console could not start on {host}:{port}: {failure}")
            await asyncio.sleep(0.02)
        log.info("web console on %s", self.url)

    @staticmethod
    async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            sock.close()

    async def stop(self) -> None:
        server, task, self._task = self.server, self._task, None
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout=5)
            await cancel_and_wait(task)


class WebService:
    """Serves the console and the HTTP API on ``settings.address`` while the gateway runs.

    ``start`` returns once the socket listens (a port in use fails the start); ``stop`` ends
    the live streams, closes the server and awaits its task."""

    name = "web"

    def __init__(
        self,
        settings: WebSettings,
        *,
        desk: KeyDesk | None = None,
        metrics: WebMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.desk = desk
        self.metrics = metrics or WebMetrics()
        self._http = AppServer(settings)
        self._stopping = asyncio.Event()

    @property
    def server(self) -> uvicorn.Server | None:
        return self._http.server

    @property
    def url(self) -> str:
        """Where the console is served (the bound port once started)."""
        return self._http.url

    async def start(self, gateway: Gateway) -> None:
        self._stopping = asyncio.Event()
        app = create_app(
            gateway,
            web=self.settings,
            desk=self.desk,
            metrics=self.metrics,
            stopping=self._stopping,
        )
        await self._http.start(app)

    async def stop(self) -> None:
        self._stopping.set()
        await self._http.stop()


def web_service(
    settings: WebSettings, *, desk: KeyDesk | None = None, metrics: WebMetrics | None = None
) -> Callable[[Gateway], WebService]:
    """A factory for :func:`gateway.compose.build_gateway`'s ``extra_services``."""

    def make(gateway: Gateway) -> WebService:
        return WebService(settings, desk=desk, metrics=metrics)

    return make


__all__ = ["AppServer", "WebService", "web_service"]
