"""Documents lockgate produces for people: the key handout receipt (PDF)."""

from __future__ import annotations

from gateway.documents.receipt import ReceiptDocument, render_receipt

__all__ = ["ReceiptDocument", "render_receipt"]
