"""The web console for operators and the HTTP API beside MQTT, served by the running gateway.

- :mod:`~gateway.web.app`: the ASGI application (FastAPI) built on a running
  :class:`~gateway.runtime.Gateway`: the console pages, ``/api/v1``, ``/healthz``,
  ``/readyz``, ``/metrics``;
- :mod:`~gateway.web.service`: :class:`WebService`, the gateway service that serves the
  application under uvicorn (``lockgate run`` with ``web.enabled``, ``lockgate demo``);
- :mod:`~gateway.web.security`: console sessions, CSRF tokens, sign-in lock-out, API tokens;
- :mod:`~gateway.web.keydesk`: the key desk (a desk station's visits waiting for an operator);
- :mod:`~gateway.web.metrics`: the Prometheus metrics;
- :mod:`~gateway.web.openapi`: the checked-in OpenAPI document.

Every change goes through the core's commands and role checks, under the signed-in operator
(console) or the token's operator (API), and is audited like any other.
"""

from __future__ import annotations

from gateway.web.app import create_app
from gateway.web.keydesk import KeyDesk
from gateway.web.service import WebService, web_service

__all__ = ["KeyDesk", "WebService", "create_app", "web_service"]
