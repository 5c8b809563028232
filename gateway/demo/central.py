"""The demo's central system: the rail owner's access-case system, publishing access changes
to lockgate as requests and waiting for each response — over MQTT when a broker runs, or
straight into the core when it does not."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any, Protocol

import aiomqtt

from gateway.commands.model import COMMANDS_BY_NAME
from gateway.core import Submission
from gateway.runtime import Gateway


class Central(Protocol):
    """Sends one request and returns lockgate's response ``{request_id, status, data, error}``."""

    via: str

    async def request(self, name: str, body: dict[str, Any]) -> dict[str, Any]: ...


class DirectCentral:
    """Without a broker: the same requests, submitted to the core as a central system would."""

    via = "the core (no MQTT broker)"

    def __init__(self, gateway: Gateway, operator: str) -> None:
        self.gateway = gateway
        self.operator = operator
        self._ids = itertools.count(1)

    async def request(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        command = COMMANDS_BY_NAME[name].model_validate(body)
        request_id = f"central-{next(self._ids)}"
        outcome = await self.gateway.call(
            self.gateway.core.submit, Submission(command, self.operator, request_id, "central")
        )
        return outcome.response()


class MqttCentral:
    """Over MQTT: publishes ``<base>/v1/request/<name>`` and waits on the response topic."""

    def __init__(self, host: str, port: int, base_topic: str) -> None:
        self.host = host
        self.port = port
        self.base = f"{base_topic}/v1"
        self.via = f"MQTT (broker {host}:{port})"
        self._client: aiomqtt.Client | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def __aenter__(self) -> MqttCentral:
        self._client = aiomqtt.Client(self.host, self.port, identifier="demo-central-system")
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.base}/response/#", qos=1)
        await self._client.subscribe(f"{self.base}/events", qos=1)
        self._reader = asyncio.create_task(self._read(), name="demo-central-reader")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._client is not None:
            await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            try:
                body = json.loads(bytes(message.payload))
            except ValueError:
                continue
            if str(message.topic).endswith("/events"):
                self.events.append(body)
                continue
            future = self._waiting.pop(str(body.get("request_id")), None)
            if future is not None and not future.done():
                future.set_result(body)

    async def request(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        request_id = f"central-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        payload = json.dumps({"request_id": request_id, **body}, default=str)
        await self._client.publish(f"{self.base}/request/{name}", payload, qos=1)
        async with asyncio.timeout(15):
            return await future
