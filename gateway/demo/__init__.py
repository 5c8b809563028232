"""``lockgate demo``: the seed story on an embedded default site."""

from __future__ import annotations
