"""The key file: one secure-channel base key (SCBK) per reader, readable by its owner only.

The file is JSON::

    {"format": 1, "readers": {"101": "<32 hex digits>", "102": "..."}}

keyed by the reader's OSDP address. It is created with mode 0600 (new keys drawn from
:mod:`secrets` for every configured reader) and refused when group or others may read it.
Every rewrite is atomic and keeps mode 0600. Key material never appears in a log line, an
error message or a ``repr``: :class:`Scbk` hides it, and errors name the reader, not the
value.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from drivers.osdp.files import write_atomic

log = logging.getLogger(__name__)

FORMAT = 1
KEY_BYTES = 16
MODE = 0o600


class KeyFileError(ValueError):
    """The key file cannot be used; the message names the file and the field."""


class Scbk:
    """A 16-byte secure-channel base key that does not show itself."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise ValueError(f"an SCBK is {KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def generate(cls) -> Scbk:
        return cls(secrets.token_bytes(KEY_BYTES))

    def reveal(self) -> bytes:
        """The key bytes, for handing to the OSDP library only."""
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scbk) and secrets.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "Scbk(<hidden>)"

    __str__ = __repr__


class KeyFile:
    """The SCBKs of the readers of one bus, as stored in ``path``."""

    def __init__(self, path: Path, keys: dict[int, Scbk]) -> None:
        self.path = path
        self._keys = dict(keys)

    @classmethod
    def open(cls, path: Path, addresses: Iterable[int]) -> KeyFile:
        """Load ``path``, creating it (mode 0600) when missing; readers of ``addresses``
        without a key get a new random one, written back atomically."""
        wanted = sorted(set(addresses))
        keys = load_keys(path) if path.exists() else {}
        missing = [a for a in wanted if a not in keys]
        if missing:
            for address in missing:
                keys[address] = Scbk.generate()
            created = not path.exists()
            store_keys(path, keys)
            log.warning(
                "key file %s: %s new SCBK for reader address %s; a reader still on its "
                "default key needs install mode once",
                path,
                "created with a" if created else "added a",
                ", ".join(map(str, missing)),
            )
        return cls(path, keys)

    def key(self, address: int) -> Scbk:
        try:
            return self._keys[address]
        except KeyError:
            raise KeyFileError(f"key_file {self.path}: no SCBK for reader {address}") from None

    def replace(self, address: int, key: Scbk) -> None:
        """Store a new key for reader ``address`` (atomic rewrite, mode 0600)."""
        keys = dict(self._keys)
        keys[address] = key
        store_keys(self.path, keys)
        self._keys = keys

    def __repr__(self) -> str:
        return f"KeyFile({str(self.path)!r}, readers={sorted(self._keys)})"


def load_keys(path: Path) -> dict[int, Scbk]:
    """The keys of ``path`` by reader address (the file must be mode 0600)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise KeyFileError(f"key_file {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"key_file {path}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"key_file {path}: mode {stat.S_IMODE(st.st_mode):04o} lets group or others read "
            "the keys; it must be 0600 (chmod 600)"
        )
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"key_file {path}: cannot read it ({exc.strerror})") from None
    except ValueError:
        raise KeyFileError(f"key_file {path}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyFileError(f"key_file {path}: format: must be {FORMAT}")
    readers = doc.get("readers")
    if not isinstance(readers, dict):
        raise KeyFileError(f"key_file {path}: readers: must be an object of address to key")
    keys: dict[int, Scbk] = {}
    for name, value in readers.items():
        if not (isinstance(name, str) and name.isdigit() and 0 <= int(name) <= 126):
            raise KeyFileError(f"key_file {path}: readers: {name!r} is not an address 0..126")
        field = f"readers.{name}"
        if not isinstance(value, str) or len(value) != 2 * KEY_BYTES:
            raise KeyFileError(f"key_file {path}: {field}: must be {2 * KEY_BYTES} hex digits")
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise KeyFileError(
                f"key_file {path}: {field}: must be {2 * KEY_BYTES} hex digits"
            ) from None
        keys[int(name)] = Scbk(key)
    return keys


def store_keys(path: Path, keys: dict[int, Scbk]) -> None:
    """Write ``keys`` to ``path`` atomically, mode 0600."""
    doc = {
        "format": FORMAT,
        "readers": {str(a): keys[a].reveal().hex() for a in sorted(keys)},
    }
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=MODE)
    os.chmod(path, MODE)


__all__ = ["KeyFile", "KeyFileError", "Scbk", "load_keys", "store_keys"]
