"""Authentication (Argon2id passwords, hashed tokens) and operator management, logged."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from gateway.audit import log as audit_log
from gateway.auth import manage
from gateway.auth import operators as operator_store
from gateway.auth.authorizer import Authorizer, Forbidden
from gateway.auth.login import AuthenticationFailed, Secret, login, secret_from
from gateway.auth.passwords import (
    WeakPassword,
    check_password_policy,
    hash_password,
    hash_token,
    new_token,
    verify_token,
)
from gateway.domain.errors import Conflict, DomainError
from gateway.store.database import Database
from gateway.store.tables import operator_account
from tests.gateway.audit.util import NOW, add_operator

PASSWORD = "correct horse battery"


def failures(db: Database) -> list[audit_log.Entry]:
    with db.session(readonly=True) as s:
        return audit_log.entries(s, action="auth.failed")


def test_passwords_are_stored_as_argon2id_hashes_only(db: Database) -> None:
    with db.session() as s:
        manage.bootstrap(s, name="admin", at=NOW, password_hash=hash_password(PASSWORD))
        row = s.execute(select(operator_account)).one()
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert login(db, "admin", Secret("password", PASSWORD), at=NOW).role == "administrator"


def test_wrong_unknown_and_disabled_all_fail_alike_and_are_logged(db: Database) -> None:
    with db.session() as s:
        manage.bootstrap(s, name="admin", at=NOW, password_hash=hash_password(PASSWORD))
        manage.add_operator(
            s,
            Authorizer(),
            "admin",
            name="gone",
            role="auditor",
            at=NOW,
            password_hash=hash_password(PASSWORD),
        )
        manage.add_operator(
            s,
            Authorizer(),
            "admin",
            name="spare",
            role="administrator",
            at=NOW,
            password_hash=hash_password(PASSWORD),
        )
        manage.change_operator(s, Authorizer(), "admin", "gone", at=NOW, active=False)
    messages = []
    for name, secret in (
        ("admin", "wrong password!"),
        ("nobody", PASSWORD),
        ("gone", PASSWORD),
    ):
        with pytest.raises(AuthenticationFailed) as exc:
            login(db, name, Secret("password", secret), at=NOW)
        messages.append(str(exc.value).replace(name, "NAME"))
    assert set(messages) == {"operator NAME: authentication failed"}
    logged = failures(db)
    assert [(e.actor, e.data) for e in logged] == [
        ("admin", {"method": "password"}),
        ("nobody", {"method": "password"}),
        ("gone", {"method": "password"}),
    ]
    assert all(PASSWORD not in str(e.as_json(personal=True)) for e in logged)


def test_tokens_are_random_hashed_and_checked(db: Database) -> None:
    token = new_token()
    assert token.startswith("lgt_") and len(token) > 40 and token != new_token()
    assert verify_token(hash_token(token), token) and not verify_token(hash_token(token), "x")
    add_operator(db, "central", "system", token=token)
    assert login(db, "central", Secret("token", token), at=NOW).name == "central"
    with pytest.raises(AuthenticationFailed):
        login(db, "central", Secret("token", token + "x"), at=NOW)
    with pytest.raises(AuthenticationFailed):  # a token operator has no password
        login(db, "central", Secret("password", token), at=NOW)


def test_an_old_password_hash_is_upgraded_at_login(db: Database) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    add_operator(db, "old", "auditor", password_hash=weak)
    login(db, "old", Secret("password", PASSWORD), at=NOW)
    with db.session(readonly=True) as s:
        op = operator_store.get(s, "old")
    assert op is not None and op.password_hash != weak
    assert login(db, "old", Secret("password", PASSWORD), at=NOW).name == "old"


def test_the_secret_comes_from_the_environment_or_the_prompt() -> None:
    assert secret_from({"LOCKGATE_TOKEN": "t", "LOCKGATE_PASSWORD": "p"}, "x", None) == Secret(
        "token", "t"
    )
    assert secret_from({"LOCKGATE_PASSWORD": "p"}, "x", None) == Secret("password", "p")
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    assert secret_from({}, "kari", prompt) == Secret("password", "typed")
    assert asked == ["password of operator kari: "]
    with pytest.raises(AuthenticationFailed, match="set LOCKGATE_PASSWORD"):
        secret_from({}, "kari", None)
    assert "typed" not in repr(Secret("password", "typed"))


def test_the_password_policy_names_the_problem() -> None:
    for bad, reason in (("short", "at least 12"), ("a" * 20, "repeated"), ("x" * 1025, "most")):
        with pytest.raises(WeakPassword, match=reason):
            check_password_policy(bad)


def test_bootstrap_only_once_and_only_administrators_manage(db: Database) -> None:
    authorizer = Authorizer()
    with db.session() as s:
        manage.bootstrap(s, name="admin", at=NOW, token_hash=hash_token("t"))
        with pytest.raises(Conflict, match="operators exist already"):
            manage.bootstrap(s, name="second", at=NOW, token_hash=hash_token("t"))
        manage.add_operator(
            s,
            authorizer,
            "admin",
            name="desk",
            role="reception",
            at=NOW,
            title="receptionist",
            display_name="Kari Nordmann",
            token_hash=hash_token("d"),
        )
        with pytest.raises(Forbidden, match="may not manage_operators"):
            manage.add_operator(
                s,
                authorizer,
                "desk",
                name="x",
                role="auditor",
                at=NOW,
                token_hash=hash_token("x"),
            )
        with pytest.raises(DomainError, match="reserved"):
            manage.add_operator(
                s,
                authorizer,
                "admin",
                name="lockgate-retention",
                role="auditor",
                at=NOW,
                token_hash=hash_token("x"),
            )
        with pytest.raises(DomainError, match="unknown role"):
            manage.add_operator(
                s,
                authorizer,
                "admin",
                name="y",
                role="janitor",
                at=NOW,
                token_hash=hash_token("x"),
            )
        # an operator changes their own secret, nothing else
        manage.change_operator(s, authorizer, "desk", "desk", at=NOW, token_hash=hash_token("n"))
        with pytest.raises(Forbidden):
            manage.change_operator(s, authorizer, "desk", "desk", at=NOW, role="administrator")
        with pytest.raises(Conflict, match="last active administrator"):
            manage.change_operator(s, authorizer, "admin", "admin", at=NOW, role="auditor")
        entries = audit_log.entries(s)
    assert [(e.actor, e.action, e.subject) for e in entries] == [
        ("admin", "operator.bootstrap", "operator admin"),
        ("admin", "operator.add", "operator desk"),
        ("desk", "operator.change", "operator desk"),
    ]
    added = entries[1]
    assert added.data == {
        "role": "reception",
        "title": "receptionist",
        "authenticates_with": "token",
    }
    assert added.personal == {"display_name": "Kari Nordmann"}
    assert entries[2].data == {"token": "changed"}


def test_a_refused_operator_action_is_logged(db: Database) -> None:
    add_operator(db, "desk", "reception")
    with pytest.raises(Forbidden) as exc, db.session() as s:
        manage.add_operator(
            s,
            Authorizer(),
            "desk",
            name="x",
            role="auditor",
            at=NOW,
            token_hash=hash_token("x"),
        )
    manage.record_refusal(
        db, at=NOW, actor="desk", action="operator.add", subjects=["operator x"], error=exc.value
    )
    with db.session(readonly=True) as s:
        [entry] = audit_log.entries(s)
        assert operator_store.get(s, "x") is None
    assert entry.data["status"] == "refused" and entry.data["error"]["code"] == "FORBIDDEN"


def test_a_failed_login_under_an_odd_name_is_still_logged(db: Database) -> None:
    add_operator(db, "desk", "reception")
    for odd in ("a; b\nc", "x" * 300):
        with pytest.raises(AuthenticationFailed):
            login(db, odd, Secret("token", "nope"), at=NOW)
    logged = failures(db)
    assert [(e.actor, e.subjects) for e in logged] == [
        ("a; b\nc", []),
        ("x" * 64, [f"operator {'x' * 64}"]),
    ]
