"""schemas/asyncapi.yaml is a valid AsyncAPI 3 document for the official parser
(``@asyncapi/parser``, run with Node.js): no error and no warning."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.bridge import schemas
from tests.conftest import _unavailable

ROOT = Path(__file__).resolve().parents[3]
PARSER = "@asyncapi/parser"
PARSER_VERSION = "3.6.3"
"""The pinned version of the official parser."""
SCRIPT = Path(__file__).with_name("asyncapi_parse.cjs")
CACHE = Path(os.environ.get("LOCKGATE_NPM_CACHE", ROOT / ".venv" / "npm"))
"""Where the test setup installs the npm package (once; kept between runs)."""

SEVERITIES = {0: "error", 1: "warning", 2: "information", 3: "hint"}


def _installed_version(prefix: Path) -> str | None:
    manifest = prefix / "node_modules" / "@asyncapi" / "parser" / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


@pytest.fixture(scope="session")
def asyncapi_parser() -> Path:
    """``node_modules`` holding the pinned official parser, installed when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("Node.js (node and npm) is needed to run the official AsyncAPI parser")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test worker may be installing it
        if _installed_version(CACHE) != PARSER_VERSION:
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(CACHE),
                    "--no-audit",
                    "--no-fund",
                    "--save-exact",
                    f"{PARSER}@{PARSER_VERSION}",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                _unavailable(
                    f"npm could not install {PARSER}@{PARSER_VERSION}: {done.stderr.strip()[-500:]}"
                )
    assert _installed_version(CACHE) == PARSER_VERSION
    return CACHE / "node_modules"


def diagnostics(node_modules: Path, document: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        ["node", str(SCRIPT), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def test_the_official_parser_finds_no_error_or_warning(asyncapi_parser: Path) -> None:
    document = ROOT / "schemas" / schemas.ASYNCAPI_FILE
    found = diagnostics(asyncapi_parser, document)
    serious = [d for d in found if d["severity"] in (0, 1)]
    assert not serious, "\n".join(
        f"{SEVERITIES[d['severity']]}: {d['message']} at {d['path']}"  # type: ignore[index]
        for d in serious
    )


def test_the_parser_reports_a_broken_document(asyncapi_parser: Path, tmp_path: Path) -> None:
    """The check can fail: a discriminator written as an object (what pydantic emits) is an
    error for the parser."""
    doc = schemas.asyncapi()
    doc["components"]["schemas"]["Event"]["discriminator"] = {"propertyName": "kind"}
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(schemas.to_yaml(doc), encoding="utf-8")
    found = diagnostics(asyncapi_parser, broken)
    assert any(d["severity"] == 0 and "discriminator" in str(d["message"]) for d in found), found
