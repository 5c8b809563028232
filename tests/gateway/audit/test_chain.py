"""The hash of an entry is exactly the SHA-256 of the canonical JSON the chain's format
describes (docs and verifiers outside lockgate compute it from that description)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.chain import entry_hash, instant

texts = st.text(st.characters(codec="utf-8"), max_size=40)
digests = st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
)


def described(**fields: object) -> str:
    """The format as the module docstring states it, through a general JSON encoder."""
    at = fields.pop("at")
    assert isinstance(at, datetime)
    data = fields.pop("data_text")
    document = {"v": 1, "at": instant(at), "data": data, **fields}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@given(
    seq=st.integers(min_value=1, max_value=2**62),
    at=instants,
    actor=texts,
    action=texts,
    subject=texts,
    data=st.dictionaries(texts, texts | st.integers() | st.none(), max_size=4),
    digest=digests,
    prev=st.text("0123456789abcdef", min_size=64, max_size=64),
)
def test_the_hash_is_the_sha256_of_the_canonical_json_of_the_hashed_fields(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, object],
    digest: str | None,
    prev: str,
) -> None:
    data_text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    fields = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "data_text": data_text,
        "personal_digest": digest,
        "prev_hash": prev,
    }
    assert entry_hash(**fields) == described(**fields)  # type: ignore[arg-type]
