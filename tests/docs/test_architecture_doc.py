"""docs/architecture.md stays true: the modules it names exist, every package of gateway/ is
named, and its layer table is the import contract that `make lint` checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_module_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:gateway|drivers|simulators)/[\w/]+\.py)`", DOC))
    assert named, "the page names modules"
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert missing == []


def test_every_package_of_the_gateway_is_on_the_page() -> None:
    packages = {
        f"gateway.{p.stem}"
        for p in (ROOT / "gateway").iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem != "__init__")
    }
    absent = sorted(p for p in packages if p not in DOC and p.replace(".", "/") not in DOC)
    assert absent == []


def test_the_layer_table_is_the_import_contract() -> None:
    table = DOC.split("<!-- layers:", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    documented = [row.replace("\\|", "|") for row in rows]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    assert documented == layers
