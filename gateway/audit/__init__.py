"""The tamper-evident audit log: a hash chain of every operator action, fact change,
programming result and hardware event, with erasable personal parts.

- :mod:`~gateway.audit.chain`: the entry layout and what is hashed;
- :mod:`~gateway.audit.log`: append, read, erase personal parts, verify;
- :mod:`~gateway.audit.anchor`: the head kept outside the database (file, MQTT event);
- :mod:`~gateway.audit.fields`: which command fields are personal, which ids an entry is about;
- :mod:`~gateway.audit.listeners`: the core listener logging every command;
- :mod:`~gateway.audit.sink`: the sync-engine sink logging device reports;
- :mod:`~gateway.audit.charges`: lost-card charges (NOK 400);
- :mod:`~gateway.audit.reviews`: recording quarterly access reviews;
- :func:`install_audit`: wire all of it (and the role check) into a core.
"""

from __future__ import annotations

from typing import Any

from gateway.audit.chain import GENESIS, Entry, Head
from gateway.audit.log import Problem, Verification, append, entries, erase_personal, head, verify
from gateway.audit.sink import AuditSink


def __getattr__(name: str) -> Any:
    # install_audit needs gateway.auth, which needs this package: import it on first use.
    if name == "install_audit":
        from gateway.audit.install import install_audit

        return install_audit
    raise AttributeError(name)


__all__ = [
    "GENESIS",
    "AuditSink",
    "Entry",
    "Head",
    "Problem",
    "Verification",
    "append",
    "entries",
    "erase_personal",
    "head",
    "install_audit",
    "verify",
]
