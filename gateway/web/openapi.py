"""The OpenAPI document of ``/api/v1``, generated from the same request and response models
as the MQTT schemas, checked in as ``schemas/openapi.json`` (``lockgate schemas export``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.bridge.envelope import request_models

if TYPE_CHECKING:
    pass

OPENAPI_FILE: Final = "openapi.json"
TITLE: Final = "lockgate HTTP API"
DESCRIPTION: Final = (
    "Every MQTT request of lockgate as an HTTP request, with the same payloads, responses and "
    "idempotency (the Idempotency-Key header is the request id), and read endpoints. "
    "Authenticate with an operator's API token: `Authorization: Bearer lgt_...`."
)


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s API routes, with the request payload models (which
    the routes read themselves, to answer as the MQTT bridge does) as components."""
    doc = get_openapi(
        title=TITLE,
        version="1",
        description=DESCRIPTION,
        routes=[r for r in app.routes if getattr(r, "path", "").startswith("/api/v1/")],
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in request_models().values():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = schema
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An operator's API token."}
    }
    doc["security"] = [{"bearer": []}]
    return doc


def install(app: FastAPI) -> None:
    """Serve :func:`document` at the app's OpenAPI URL."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(document(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]


def standalone() -> dict[str, Any]:
    """The document without a running gateway (the routes are only registered)."""
    from gateway.web import api

    app = FastAPI(title=TITLE)
    api.install(app, None)  # type: ignore[arg-type]  # routes only read it when called
    return document(app)


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def export(folder: Path) -> bool:
    """Write ``folder/openapi.json``; True when it changed."""
    text = dumps(standalone())
    path = folder / OPENAPI_FILE
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


__all__ = ["OPENAPI_FILE", "document", "dumps", "export", "install", "standalone"]
