"""The tamper-evident audit log: a hash chain of every operator action, fact change,
programming result and hardware event, with erasable personal parts.

- :mod:`~gateway.audit.chain`: the entry layout and what is hashed;
- :mod:`~gateway.audit.log`: append, read, erase personal parts, verify;
- :mod:`~gateway.audit.anchor`: the head kept outside the database (file, MQTT event);
- :mod:`~gateway.audit.fields`: which command fields are personal, which ids an entry is about;
- :mod:`~gateway.audit.listeners`: the core listener logging every command;
- :mod:`~gateway.audit.sink`: the sync-engine sink logging device reports.

:mod:`gateway.compose` gives every core these listeners.
"""

from __future__ import annotations

from gateway.audit.chain import GENESIS, Entry, Head
from gateway.audit.log import Problem, Verification, append, entries, erase_personal, head, verify
from gateway.audit.sink import AuditSink

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
    "verify",
]
