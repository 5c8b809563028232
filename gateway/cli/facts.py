"""``lockgate orgs|persons|employments|agreements|spaces|applications``: the master data the
gateway holds, as stored (``list`` and ``show``, each with ``--json``).

Each ``show`` names what depends on the fact (an organisation's agreements and employments, a
person's credentials, the credentials that may open a space), so an operator can follow a
decision from ``explain`` back to the facts it came from. ``--json`` gives the stored fact as
the MQTT API writes it, plus those links.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gateway.cli.common import (
    console,
    fail,
    identifier,
    local,
    open_core,
    print_json,
    validated,
)
from gateway.cli.errors import BAD_INPUT
from gateway.core import Core
from gateway.domain.facts import (
    AccessApplication,
    Employment,
    KeyGrantAgreement,
    Organisation,
    Space,
)
from gateway.domain.locks import cylinder_lock, door_lock
from gateway.rules.explain import schedule_summary
from gateway.rules.factset import FactSet
from gateway.rules.parameters import RulesConfig
from gateway.store import fact_repository

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]

orgs_app = typer.Typer(help="Organisations: list and show.", no_args_is_help=True)
persons_app = typer.Typer(help="Persons: list and show.", no_args_is_help=True)
employments_app = typer.Typer(help="Employments and their ID06 cards.", no_args_is_help=True)
agreements_app = typer.Typer(help="Key grant agreements.", no_args_is_help=True)
spaces_app = typer.Typer(help="Spaces and their locks.", no_args_is_help=True)
applications_app = typer.Typer(
    help="Access applications: each assignment's stored revisions.", no_args_is_help=True
)


def _by_number(numbers: Iterable[str]) -> list[str]:
    return sorted(numbers, key=lambda n: (len(n), n))


def _org_number(text: str, name: str) -> str:
    return validated(
        Organisation, {"org_number": text, "name": "-"}, {"org_number": name}
    ).org_number


def _person_name(facts: FactSet, person_id: str) -> str:
    person = facts.persons.get(person_id)
    return f"{person.first_name} {person.last_name}" if person else person_id


def in_force(agreement: KeyGrantAgreement, now: datetime, cfg: RulesConfig) -> bool:
    """True when the agreement is in force at ``now`` (its dates, and not terminated)."""
    if now < cfg.day_start(agreement.valid_from):
        return False
    if agreement.valid_until is not None and now >= cfg.day_end(agreement.valid_until):
        return False
    return agreement.terminated_at is None or now < agreement.terminated_at


def _locks(space: Space) -> list[str]:
    return [cylinder_lock(c) for c in space.cylinders] + [
        door_lock(d.controller_id, d.door) for d in space.doors
    ]


def _fact_json(fact: Any) -> dict[str, Any]:
    out: dict[str, Any] = fact.model_dump(mode="json")
    return out


# ----------------------------------------------------------------------- organisations


def _org_row(core: Core, org: Organisation) -> dict[str, Any]:
    facts = core.engine.facts
    employments = sorted(facts.employments_by_org.get(org.org_number, ()))
    agreements = sorted(facts.agreements_by_org.get(org.org_number, ()))
    return _fact_json(org) | {
        "agreements": agreements,
        "agreement_in_force": any(
            in_force(facts.agreements[a], core.clock(), core.cfg) for a in agreements
        ),
        "employments": employments,
        "credentials": _by_number(facts.credentials_of_employments(employments)),
    }


@orgs_app.command("list")
def orgs_list(as_json: JSON = False) -> None:
    """Every organisation: its agreements, whether one is in force, its employments."""
    with open_core() as core:
        facts = core.engine.facts
        rows = [_org_row(core, facts.organisations[o]) for o in sorted(facts.organisations)]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} organisations")
    for col in ("org number", "name", "agreements", "in force", "employments", "credentials"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["org_number"],
            escape(r["name"]),
            ", ".join(r["agreements"]) or "-",
            "yes" if r["agreement_in_force"] else "[red]no[/]",
            str(len(r["employments"])),
            str(len(r["credentials"])),
        )
    console.print(table)


@orgs_app.command("show")
def orgs_show(
    org_number: Annotated[str, typer.Argument(help="The organisation number.")],
    as_json: JSON = False,
) -> None:
    """One organisation with its agreements, employments and credentials."""
    number = _org_number(org_number, "ORG_NUMBER")
    with open_core() as core:
        org = core.engine.facts.organisations.get(number)
        if org is None:
            fail(f"ORG_NUMBER: organisation {number} is not registered")
        row = _org_row(core, org)
        people = {
            e: _employment_row(core, core.engine.facts.employments[e]) for e in row["employments"]
        }
    if as_json:
        print_json(row | {"employments": list(people.values())})
        return
    console.print(f"[bold]{escape(org.name)}[/] ({number})")
    console.print(
        "agreements: "
        + (", ".join(row["agreements"]) or "none")
        + ("" if row["agreement_in_force"] else " [red](none in force)[/]")
    )
    _print_employments(list(people.values()), f"{len(people)} employments")


# ----------------------------------------------------------------------- persons


def _person_row(core: Core, person_id: str) -> dict[str, Any]:
    facts = core.engine.facts
    person = facts.persons[person_id]
    employments = sorted(facts.employments_by_person.get(person_id, ()))
    return {
        "id": person.id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "employments": employments,
        "competences": [
            _fact_json(c) for _, c in sorted(facts.competences.get(person_id, {}).items())
        ],
        "credentials": _by_number(facts.credentials_of_employments(employments)),
    }


@persons_app.command("list")
def persons_list(
    org: Annotated[str | None, typer.Option("--org", help="Only employees of this org.")] = None,
    as_json: JSON = False,
) -> None:
    """Every person: name, employments, competences and credentials (no mobile numbers)."""
    wanted = _org_number(org, "--org") if org is not None else None
    with open_core() as core:
        facts = core.engine.facts
        ids = sorted(facts.persons)
        if wanted is not None:
            ids = [
                p
                for p in ids
                if any(
                    facts.employments[e].org_number == wanted
                    for e in facts.employments_by_person.get(p, ())
                )
            ]
        rows = [_person_row(core, p) for p in ids]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} persons")
    for col in ("id", "name", "employments", "competences", "credentials"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            escape(f"{r['first_name']} {r['last_name']}"),
            ", ".join(r["employments"]) or "-",
            ", ".join(f"{c['code']} until {c['valid_until']}" for c in r["competences"]) or "-",
            ", ".join(r["credentials"]) or "-",
        )
    console.print(table)


@persons_app.command("show")
def persons_show(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    as_json: JSON = False,
) -> None:
    """One person: name, mobile, employments, competences and credentials."""
    pid = identifier(person_id, "PERSON_ID")
    with open_core() as core:
        person = core.engine.facts.persons.get(pid)
        if person is None:
            fail(f"PERSON_ID: person {pid} is not registered")
        row = _person_row(core, pid) | {"mobile": person.mobile}
        employments = [
            _employment_row(core, core.engine.facts.employments[e]) for e in row["employments"]
        ]
    if as_json:
        print_json(row | {"employments": employments})
        return
    console.print(
        f"[bold]{escape(row['first_name'])} {escape(row['last_name'])}[/] ({pid})"
        f"  mobile: {escape(person.mobile or '-')}"
    )
    for c in row["competences"]:
        console.print(f"  competence {c['code']} valid until {c['valid_until']}")
    _print_employments(employments, f"{len(employments)} employments")


# ----------------------------------------------------------------------- employments


def _employment_row(core: Core, emp: Employment) -> dict[str, Any]:
    facts = core.engine.facts
    org = facts.organisations.get(emp.org_number)
    return _fact_json(emp) | {
        "person": _person_name(facts, emp.person_id),
        "organisation": org.name if org else None,
        "credentials": _by_number(facts.credentials_by_employment.get(emp.id, ())),
        "assignments": sorted(facts.entries_by_employment.get(emp.id, {})),
    }


def _print_employments(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in (
        "id",
        "person",
        "organisation",
        "ID06 card",
        "status",
        "valid until",
        "credentials",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            escape(r["person"]),
            escape(f"{r['organisation'] or '-'} ({r['org_number']})"),
            r["id06"]["card_number"],
            r["id06"]["status"],
            r["id06"]["valid_until"],
            ", ".join(r["credentials"]) or "-",
        )
    console.print(table)


@employments_app.command("list")
def employments_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's.")] = None,
    person: Annotated[str | None, typer.Option("--person", help="Only this person's.")] = None,
    as_json: JSON = False,
) -> None:
    """Every employment: person, organisation, ID06 card, credentials."""
    wanted_org = _org_number(org, "--org") if org is not None else None
    wanted_person = identifier(person, "--person") if person is not None else None
    with open_core() as core:
        rows = [
            _employment_row(core, e)
            for _, e in sorted(core.engine.facts.employments.items())
            if (wanted_org is None or e.org_number == wanted_org)
            and (wanted_person is None or e.person_id == wanted_person)
        ]
    if as_json:
        print_json(rows)
        return
    _print_employments(rows, f"{len(rows)} employments")


@employments_app.command("show")
def employments_show(
    employment_id: Annotated[str, typer.Argument(help="The employment's id.")],
    as_json: JSON = False,
) -> None:
    """One employment: person, organisation, ID06 card, credentials, assignments."""
    eid = identifier(employment_id, "EMPLOYMENT_ID")
    with open_core() as core:
        emp = core.engine.facts.employments.get(eid)
        if emp is None:
            fail(f"EMPLOYMENT_ID: employment {eid} is not registered")
        row = _employment_row(core, emp)
    if as_json:
        print_json(row)
        return
    _print_employments([row], f"employment {eid}")
    console.print("assignments: " + (", ".join(row["assignments"]) or "none"))


# ----------------------------------------------------------------------- agreements


def _agreement_row(core: Core, a: KeyGrantAgreement) -> dict[str, Any]:
    org = core.engine.facts.organisations.get(a.org_number)
    return _fact_json(a) | {
        "organisation": org.name if org else None,
        "in_force": in_force(a, core.clock(), core.cfg),
    }


@agreements_app.command("list")
def agreements_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's.")] = None,
    as_json: JSON = False,
) -> None:
    """Every key grant agreement: organisation, dates, termination, in force now or not."""
    wanted = _org_number(org, "--org") if org is not None else None
    with open_core() as core:
        rows = [
            _agreement_row(core, a)
            for _, a in sorted(core.engine.facts.agreements.items())
            if wanted is None or a.org_number == wanted
        ]
        terminated = {
            r["id"]: local(core.engine.facts.agreements[r["id"]].terminated_at) for r in rows
        }
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} key grant agreements")
    for col in ("id", "organisation", "signed", "valid from", "valid until", "terminated", ""):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            escape(f"{r['organisation'] or '-'} ({r['org_number']})"),
            r["signed_on"],
            r["valid_from"],
            r["valid_until"] or "-",
            terminated[r["id"]],
            "in force" if r["in_force"] else "[red]not in force[/]",
        )
    console.print(table)


@agreements_app.command("show")
def agreements_show(
    agreement_id: Annotated[str, typer.Argument(help="The agreement's id.")],
    as_json: JSON = False,
) -> None:
    """One key grant agreement."""
    aid = identifier(agreement_id, "AGREEMENT_ID")
    with open_core() as core:
        a = core.engine.facts.agreements.get(aid)
        if a is None:
            fail(f"AGREEMENT_ID: agreement {aid} is not registered")
        row = _agreement_row(core, a)
        terminated = local(a.terminated_at)
    if as_json:
        print_json(row)
        return
    console.print(
        f"[bold]{aid}[/]: {escape(row['organisation'] or '-')} ({a.org_number}), signed "
        f"{a.signed_on}, valid {a.valid_from} to {a.valid_until or 'no end'}, "
        f"terminated {terminated}: " + ("in force" if row["in_force"] else "[red]not in force[/]")
    )


# ----------------------------------------------------------------------- spaces


def _space_row(core: Core, space: Space) -> dict[str, Any]:
    engine = core.engine
    holders = [
        n for n, state in engine.states.items() if any(g.space_id == space.id for g in state.grants)
    ]
    return {
        "id": space.id,
        "name": space.name,
        "locks": _locks(space),
        "required_competences": list(space.required_competences),
        "revalidation_days": space.revalidation_days,
        "granted_to": _by_number(holders),
    }


@spaces_app.command("list")
def spaces_list(as_json: JSON = False) -> None:
    """Every space: its locks, required competences, revalidation, who may open it."""
    with open_core() as core:
        rows = [_space_row(core, s) for _, s in sorted(core.engine.facts.spaces.items())]
    if as_json:
        print_json(rows)
        return
    _print_spaces(rows, f"{len(rows)} spaces")


def _print_spaces(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in ("id", "name", "locks", "competences", "revalidate", "granted to"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            escape(r["name"]),
            ", ".join(r["locks"]) or "-",
            ", ".join(r["required_competences"]) or "-",
            f"{r['revalidation_days']} days" if r["revalidation_days"] else "-",
            ", ".join(r["granted_to"]) or "-",
        )
    console.print(table)


@spaces_app.command("show")
def spaces_show(
    space_id: Annotated[str, typer.Argument(help="The space's id.")],
    as_json: JSON = False,
) -> None:
    """One space: its locks, required competences, and the credentials granted it."""
    sid = identifier(space_id, "SPACE_ID")
    with open_core() as core:
        space = core.engine.facts.spaces.get(sid)
        if space is None:
            fail(f"SPACE_ID: space {sid} is not registered")
        row = _space_row(core, space)
    if as_json:
        print_json(row)
        return
    _print_spaces([row], f"space {sid}")


# ----------------------------------------------------------------------- applications


def _stored_applications(
    core: Core, assignment_id: str | None = None
) -> dict[str, dict[int, AccessApplication]]:
    """Every stored revision of every assignment's application (or of ``assignment_id``'s):
    the engine holds only the ones that can still be in effect."""
    table = fact_repository.tables_of(AccessApplication)[0]
    where = None if assignment_id is None else table.c.assignment_id == assignment_id
    with core.db.session(readonly=True) as s:
        stored = fact_repository.all_of(s, AccessApplication, where)
    out: dict[str, dict[int, AccessApplication]] = {}
    for app in stored:
        out.setdefault(app.assignment_id, {})[app.revision] = app
    return out


def _application_json(
    app: AccessApplication, facts: FactSet, revisions: dict[int, AccessApplication]
) -> dict[str, Any]:
    latest = facts.latest_approved.get(app.assignment_id)
    return _fact_json(app) | {
        "latest_revision": max(revisions, default=app.revision),
        "in_effect": latest is not None and latest.revision == app.revision,
    }


@applications_app.command("list")
def applications_list(as_json: JSON = False) -> None:
    """Every assignment's stored applications: the latest revision, its status, and which
    approved revision is in effect."""
    with open_core() as core:
        facts = core.engine.facts
        stored = _stored_applications(core)
        rows: list[dict[str, Any]] = []
        for aid in sorted(set(stored) | set(facts.assignments)):
            revisions = stored.get(aid, {})
            assignment = facts.assignments.get(aid)
            latest = revisions[max(revisions)] if revisions else None
            effective = facts.latest_approved.get(aid)
            rows.append(
                {
                    "assignment_id": aid,
                    "assignment": assignment.model_dump(mode="json") if assignment else None,
                    "revisions": sorted(revisions),
                    "latest_revision": latest.revision if latest else None,
                    "latest_status": latest.status.value if latest else None,
                    "submitted_at": latest.submitted_at if latest else None,
                    "decided_at": latest.decided_at if latest else None,
                    "in_effect_revision": effective.revision if effective else None,
                }
            )
        shown = {
            r["assignment_id"]: (local(r["submitted_at"]), local(r["decided_at"])) for r in rows
        }
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} assignments")
    for col in ("assignment", "name", "revisions", "latest", "submitted", "decided", "in effect"):
        table.add_column(col)
    for r in rows:
        submitted, decided = shown[r["assignment_id"]]
        table.add_row(
            r["assignment_id"],
            escape(r["assignment"]["name"] if r["assignment"] else "-"),
            ", ".join(map(str, r["revisions"])) or "-",
            f"{r['latest_revision']} {r['latest_status']}" if r["latest_revision"] else "-",
            submitted,
            decided,
            str(r["in_effect_revision"] or "-"),
        )
    console.print(table)


@applications_app.command("show")
def applications_show(
    assignment_id: Annotated[str, typer.Argument(help="The assignment's id.")],
    revision: Annotated[
        int | None,
        typer.Option("--revision", min=1, help="This revision (default: the latest stored)."),
    ] = None,
    as_json: JSON = False,
) -> None:
    """One stored application revision of an assignment, entry by entry."""
    aid = identifier(assignment_id, "ASSIGNMENT_ID")
    with open_core() as core:
        facts = core.engine.facts
        revisions = _stored_applications(core, aid).get(aid, {})
        if not revisions:
            fail(f"ASSIGNMENT_ID: no application is stored for assignment {aid}")
        wanted = revision if revision is not None else max(revisions)
        app = revisions.get(wanted)
        if app is None:
            fail(
                f"--revision: assignment {aid} has no revision {wanted} "
                f"(stored: {', '.join(map(str, sorted(revisions)))})",
                BAD_INPUT,
            )
        row = _application_json(app, facts, revisions)
        names = {
            e.employment_id: _person_name(facts, facts.employments[e.employment_id].person_id)
            if e.employment_id in facts.employments
            else e.employment_id
            for e in app.entries
        }
        times = (local(app.submitted_at), local(app.decided_at))
    if as_json:
        print_json(row)
        return
    console.print(
        f"[bold]{aid}[/] revision {app.revision} of {row['latest_revision']}: "
        f"{app.status.value}{' (expedited)' if app.expedited else ''}; submitted {times[0]}, "
        f"decided {times[1]}" + ("; in effect" if row["in_effect"] else "")
    )
    table = Table(title=f"{len(app.entries)} entries")
    for col in ("employment", "person", "spaces", "from", "until", "schedule"):
        table.add_column(col)
    for e in app.entries:
        table.add_row(
            e.employment_id,
            escape(names[e.employment_id]),
            ", ".join(e.space_ids),
            e.valid_from.isoformat(),
            e.valid_until.isoformat(),
            schedule_summary(e.schedule) or "any time",
        )
    console.print(table)


__all__ = [
    "agreements_app",
    "applications_app",
    "employments_app",
    "in_force",
    "orgs_app",
    "persons_app",
    "spaces_app",
]
