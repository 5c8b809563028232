"""File imports: key delivery manifests and returned handout lists (CSV or XLSX)."""

from __future__ import annotations

from gateway.imports.manifest import (
    HEADER_ALIASES,
    HandoutLink,
    ImportRejected,
    ReturnedRow,
    RowError,
    UnreadableFile,
    parse_delivery_manifest,
    parse_returned_manifest,
    read_table,
    resolve_returned,
)

__all__ = [
    "HEADER_ALIASES",
    "HandoutLink",
    "ImportRejected",
    "ReturnedRow",
    "RowError",
    "UnreadableFile",
    "parse_delivery_manifest",
    "parse_returned_manifest",
    "read_table",
    "resolve_returned",
]
