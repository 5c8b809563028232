"""``lockgate schemas``: the JSON Schemas and AsyncAPI document of the MQTT API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import console, fail

schemas_app = typer.Typer(help="MQTT payload schemas and the AsyncAPI document.")


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the schemas to.")] = Path(
        "schemas"
    ),
    docs: Annotated[
        Path | None,
        typer.Option("--docs", help="Also refresh the generated topic reference of this file."),
    ] = None,
) -> None:
    """Write one JSON Schema per MQTT payload and asyncapi.yaml to OUT, from the topic map,
    and openapi.json, the HTTP API's OpenAPI document."""
    from gateway.bridge import schemas

    if out.exists() and not out.is_dir():
        fail(f"--out: {out} is not a folder", 2)
    if docs is not None and not docs.is_file():
        fail(f"--docs: {docs} does not exist", 2)
    try:
        changed = schemas.export(out, docs, keep=frozenset({"openapi.json"}))
    except (OSError, ValueError) as exc:
        fail(str(exc))
    from gateway.web import openapi

    if openapi.export(out):
        changed.append(out / openapi.OPENAPI_FILE)
    total = len(schemas.generated_files()) + 1
    console.print(
        f"{total} files in {out}: {len(changed)} changed", highlight=False, soft_wrap=True
    )
    for path in changed:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


__all__ = ["schemas_app"]
