"""Command handlers: check a command against the current facts, then say which facts to write.

A handler never writes by itself: it reads the current facts (``ctx.facts``, always in step
with the database inside the command's transaction) and calls ``ctx.put`` / ``ctx.delete``.
It raises a :class:`~gateway.domain.errors.DomainError` naming the field and the reason when
the command cannot be applied; nothing is written then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from gateway.commands import model as m
from gateway.commands.context import CommandContext
from gateway.domain.errors import Conflict, DomainError, IllegalTransition, NotFound, Stale
from gateway.domain.facts import (
    ERASED,
    ID06_TRANSITIONS,
    TERMINAL_STATES,
    ApplicationStatus,
    Competence,
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Fact,
    Id06Status,
    KeyOrderStatus,
    Receipt,
    VisitorCard,
    VisitorReason,
)
from gateway.rules.parameters import RulesConfig


def _rebuild(fact: Fact, field_name: str, **changes: Any) -> Any:
    """Copy a fact with changes, re-running its validation; errors name ``field_name``."""
    try:
        return type(fact).model_validate({**fact.model_dump(), **changes})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or field_name
        raise DomainError(err["msg"], field=loc) from exc


# ------------------------------------------------------------------ master data


def put_organisation(ctx: CommandContext, cmd: m.PutOrganisation) -> None:
    ctx.put(cmd.organisation)
    ctx.subjects.append(f"organisation {cmd.organisation.org_number}")


def put_agreement(ctx: CommandContext, cmd: m.PutAgreement) -> None:
    a = cmd.agreement
    if a.org_number not in ctx.facts.organisations:
        raise NotFound(
            f"organisation {a.org_number} is not registered", field="agreement.org_number"
        )
    old = ctx.facts.agreements.get(a.id)
    if old is not None and old.org_number != a.org_number:
        raise Conflict(
            f"agreement {a.id} belongs to {old.org_number}", field="agreement.org_number"
        )
    ctx.put(a)
    ctx.subjects.append(f"agreement {a.id}")


def put_person(ctx: CommandContext, cmd: m.PutPerson) -> None:
    ctx.put(cmd.person)
    ctx.subjects.append(f"person {cmd.person.id}")


def put_employment(ctx: CommandContext, cmd: m.PutEmployment) -> None:
    e = cmd.employment
    facts = ctx.facts
    if e.person_id not in facts.persons:
        raise NotFound(f"person {e.person_id} is not registered", field="employment.person_id")
    if e.org_number not in facts.organisations:
        raise NotFound(
            f"organisation {e.org_number} is not registered", field="employment.org_number"
        )
    for other_id in facts.employments_by_person.get(e.person_id, ()):
        other = facts.employments[other_id]
        if other.id != e.id and other.org_number == e.org_number:
            raise Conflict(
                f"person {e.person_id} already has employment {other.id} at {e.org_number} "
                "(one ID06 registration per person and organisation)",
                field="employment.org_number",
            )
    holder = facts.employment_by_card.get(e.id06.card_number)
    if holder is not None and holder != e.id:
        raise Conflict(
            f"ID06 card {e.id06.card_number} is registered to employment {holder}",
            field="employment.id06.card_number",
        )
    old = facts.employments.get(e.id)
    if old is not None:
        if (old.person_id, old.org_number) != (e.person_id, e.org_number):
            raise Conflict(
                f"employment {e.id} is of person {old.person_id} at "
                f"{old.org_number}; register a new employment instead",
                field="employment.id",
            )
        if e.id06.status not in ID06_TRANSITIONS[old.id06.status]:
            raise IllegalTransition(
                f"ID06 card {old.id06.card_number} is {old.id06.status.value} and cannot become "
                f"{e.id06.status.value}",
                field="employment.id06.status",
            )
    ctx.put(e)
    ctx.subjects.append(f"employment {e.id}")


def _employment_by_card(ctx: CommandContext, card: str) -> Employment:
    employment_id = ctx.facts.employment_by_card.get(card)
    if employment_id is not None:
        return ctx.facts.employments[employment_id]
    raise NotFound(f"no employment has ID06 card {card}", field="card_number")


def block_id06(ctx: CommandContext, cmd: m.BlockId06) -> None:
    e = _employment_by_card(ctx, cmd.card_number)
    new = Id06Status.TERMINATED if cmd.terminate else Id06Status.BLOCKED
    if e.id06.status is Id06Status.TERMINATED and new is Id06Status.BLOCKED:
        ctx.result["unchanged"] = "card is already terminated"
    else:
        ctx.put(e.model_copy(update={"id06": e.id06.model_copy(update={"status": new})}))
    ctx.subjects.append(f"employment {e.id}")
    ctx.result["employment_id"] = e.id
    ctx.result["credentials"] = sorted(ctx.facts.credentials_by_employment.get(e.id, ()))


def unblock_id06(ctx: CommandContext, cmd: m.UnblockId06) -> None:
    e = _employment_by_card(ctx, cmd.card_number)
    if e.id06.status is Id06Status.TERMINATED:
        raise IllegalTransition(
            f"ID06 card {cmd.card_number} is terminated and cannot be unblocked",
            field="card_number",
        )
    ctx.put(e.model_copy(update={"id06": e.id06.model_copy(update={"status": Id06Status.ACTIVE})}))
    ctx.subjects.append(f"employment {e.id}")
    ctx.result["employment_id"] = e.id


def put_competence(ctx: CommandContext, cmd: m.PutCompetence) -> None:
    c = cmd.competence
    if c.person_id not in ctx.facts.persons:
        raise NotFound(f"person {c.person_id} is not registered", field="competence.person_id")
    ctx.put(c)
    ctx.subjects.append(f"person {c.person_id}")


def remove_competence(ctx: CommandContext, cmd: m.RemoveCompetence) -> None:
    code = cmd.code.strip().upper()
    if code not in ctx.facts.competences.get(cmd.person_id, {}):
        raise NotFound(f"person {cmd.person_id} holds no competence {code}", field="code")
    ctx.delete(Competence, (cmd.person_id, code))
    ctx.subjects.append(f"person {cmd.person_id}")


def put_space(ctx: CommandContext, cmd: m.PutSpace) -> None:
    ctx.put(cmd.space)
    ctx.subjects.append(f"space {cmd.space.id}")


def put_assignment(ctx: CommandContext, cmd: m.PutAssignment) -> None:
    a = cmd.assignment
    if a.main_contractor not in ctx.facts.organisations:
        raise NotFound(
            f"organisation {a.main_contractor} is not registered",
            field="assignment.main_contractor",
        )
    ctx.put(a)
    ctx.subjects.append(f"assignment {a.id}")


_APP_DECISIONS = {
    ApplicationStatus.SUBMITTED: {
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.APPROVED,
        ApplicationStatus.REJECTED,
        ApplicationStatus.WITHDRAWN,
    },
    ApplicationStatus.APPROVED: {ApplicationStatus.APPROVED, ApplicationStatus.WITHDRAWN},
    ApplicationStatus.REJECTED: {ApplicationStatus.REJECTED},
    ApplicationStatus.WITHDRAWN: {ApplicationStatus.WITHDRAWN},
}


def put_application(ctx: CommandContext, cmd: m.PutApplication) -> None:
    app = cmd.application
    facts = ctx.facts
    if app.assignment_id not in facts.assignments:
        raise NotFound(
            f"assignment {app.assignment_id} is not registered", field="application.assignment_id"
        )
    revisions = facts.applications.get(app.assignment_id, {})
    latest = max(revisions, default=0)
    if app.revision < latest:
        raise Stale(
            f"revision {app.revision} is older than the stored revision {latest} of "
            f"assignment {app.assignment_id}",
            field="application.revision",
        )
    old = revisions.get(app.revision)
    if old is not None:
        if old.entries != app.entries or old.submitted_at != app.submitted_at:
            raise Stale(
                f"revision {app.revision} of assignment {app.assignment_id} is already "
                "stored with other content; submit a new revision",
                field="application.revision",
            )
        if app.status not in _APP_DECISIONS[old.status]:
            raise IllegalTransition(
                f"revision {app.revision} is {old.status.value} and cannot "
                f"become {app.status.value}",
                field="application.status",
            )
    for i, entry in enumerate(app.entries):
        if entry.employment_id not in facts.employments:
            raise NotFound(
                f"employment {entry.employment_id} is not registered",
                field=f"application.entries.{i}.employment_id",
            )
        for j, space_id in enumerate(entry.space_ids):
            if space_id not in facts.spaces:
                raise NotFound(
                    f"space {space_id} is not registered",
                    field=f"application.entries.{i}.space_ids.{j}",
                )
    ctx.put(app)
    ctx.subjects.append(f"assignment {app.assignment_id}")
    ctx.result["latest_revision"] = max(latest, app.revision)


# ------------------------------------------------------------------ keys and credentials


def _agreement_in_force(ctx: CommandContext, org: str) -> bool:
    today = ctx.now.astimezone(ctx.cfg.timezone).date()
    for aid in ctx.facts.agreements_by_org.get(org, ()):
        a = ctx.facts.agreements[aid]
        if (
            a.valid_from <= today
            and (a.valid_until is None or today <= a.valid_until)
            and (a.terminated_at is None or a.terminated_at > ctx.now)
        ):
            return True
    return False


def place_key_order(ctx: CommandContext, cmd: m.PlaceKeyOrder) -> None:
    o = cmd.order
    if o.org_number not in ctx.facts.organisations:
        raise NotFound(f"organisation {o.org_number} is not registered", field="order.org_number")
    if o.id not in ctx.facts.key_orders and not _agreement_in_force(ctx, o.org_number):
        raise Conflict(
            f"organisation {o.org_number} has no key grant agreement in force and "
            "may not order keys",
            field="order.org_number",
        )
    ctx.put(o)
    ctx.subjects.append(f"key order {o.id}")


def register_delivery(ctx: CommandContext, cmd: m.RegisterDelivery) -> None:
    mf = cmd.manifest
    order = ctx.facts.key_orders.get(mf.order_id)
    if order is None:
        raise NotFound(f"key order {mf.order_id} is not registered", field="manifest.order_id")
    if order.status is KeyOrderStatus.CANCELLED:
        raise Conflict(f"key order {mf.order_id} is cancelled", field="manifest.order_id")
    for i, serial in enumerate(mf.key_serials):
        if serial in ctx.facts.credentials:
            raise Conflict(f"key {serial} is already registered", field=f"manifest.key_serials.{i}")
    delivered = sum(
        len(x.key_serials) for x in ctx.facts.manifests.values() if x.order_id == mf.order_id
    ) + len(mf.key_serials)
    if delivered > order.quantity:
        raise Conflict(
            f"order {order.id} is for {order.quantity} keys; this delivery would make {delivered}",
            field="manifest.key_serials",
        )
    ctx.put(mf)
    for serial in mf.key_serials:
        ctx.put(
            Credential(
                number=serial,
                kind=CredentialKind.KEY,
                order_id=order.id,
                state_changed_at=mf.delivered_at,
            )
        )
    status = (
        KeyOrderStatus.DELIVERED
        if delivered == order.quantity
        else (KeyOrderStatus.PARTLY_DELIVERED)
    )
    ctx.put(order.model_copy(update={"status": status}))
    ctx.subjects.append(f"key order {order.id}")
    ctx.result.update({"order_id": order.id, "delivered": delivered, "status": status.value})


def register_tags(ctx: CommandContext, cmd: m.RegisterTags) -> None:
    for i, number in enumerate(cmd.numbers):
        if number in ctx.facts.credentials:
            raise Conflict(f"credential {number} is already registered", field=f"numbers.{i}")
    if len(set(cmd.numbers)) != len(cmd.numbers):
        raise DomainError("a number is listed twice", field="numbers")
    for number in cmd.numbers:
        ctx.put(Credential(number=number, kind=CredentialKind.TAG, state_changed_at=ctx.now))
    ctx.result["registered"] = len(cmd.numbers)


def _credential(ctx: CommandContext, number: str, field_name: str) -> Credential:
    cred = ctx.facts.credentials.get(number)
    if cred is None:
        raise NotFound(f"credential {number} is not registered", field=field_name)
    return cred


def _transition(cred: Credential, new: CredentialState, field_name: str) -> None:
    if not cred.can_become(new):
        raise IllegalTransition(
            f"{cred.kind.value} {cred.number} is {cred.state.value} and cannot become {new.value}",
            field=field_name,
        )


def _live_credentials(ctx: CommandContext, employment_id: str, kind: CredentialKind) -> list[str]:
    return sorted(
        n
        for n in ctx.facts.credentials_by_employment.get(employment_id, ())
        if ctx.facts.credentials[n].kind is kind
        and ctx.facts.credentials[n].state not in TERMINAL_STATES
    )


def hand_out(ctx: CommandContext, cmd: m.HandOut) -> None:
    cred = _credential(ctx, cmd.credential_number, "credential_number")
    if cred.kind is CredentialKind.VISITOR_CARD:
        raise DomainError(
            "visitor cards are issued with visitor_card_issue", field="credential_number"
        )
    _transition(cred, CredentialState.HANDED_OUT, "credential_number")
    emp = ctx.facts.employments.get(cmd.employment_id)
    if emp is None:
        raise NotFound(f"employment {cmd.employment_id} is not registered", field="employment_id")
    held = _live_credentials(ctx, emp.id, cred.kind)
    if held:
        raise Conflict(
            f"employment {emp.id} already holds {cred.kind.value} {held[0]} (one physical "
            f"{cred.kind.value} per employment; use key_replace to replace it)",
            field="employment_id",
        )
    if emp.id06.status is not Id06Status.ACTIVE:
        raise Conflict(
            f"the ID06 card of employment {emp.id} is {emp.id06.status.value}",
            field="employment_id",
        )
    at = cmd.at or ctx.now
    ctx.put(
        _rebuild(
            cred,
            "credential_number",
            state=CredentialState.HANDED_OUT,
            employment_id=emp.id,
            state_changed_at=at,
        )
    )
    ctx.put(Receipt(credential_number=cred.number, employment_id=emp.id, produced_at=at))
    ctx.subjects.append(f"credential {cred.number}")
    ctx.result.update({"credential": cred.number, "employment_id": emp.id, "receipt": "produced"})


def sign_receipt(ctx: CommandContext, cmd: m.SignReceipt) -> None:
    cred = _credential(ctx, cmd.credential_number, "credential_number")
    _transition(cred, CredentialState.IN_SERVICE, "credential_number")
    assert cred.employment_id is not None
    receipt = ctx.facts.receipts.get((cred.number, cred.employment_id))
    if receipt is None:
        raise NotFound(f"no handout receipt exists for {cred.number}", field="credential_number")
    signed = cmd.signed_at or ctx.now
    if signed < receipt.produced_at:
        raise DomainError("a receipt cannot be signed before it was produced", field="signed_at")
    ctx.put(receipt.model_copy(update={"signed_at": signed}))
    ctx.put(
        cred.model_copy(update={"state": CredentialState.IN_SERVICE, "state_changed_at": signed})
    )
    ctx.subjects.append(f"credential {cred.number}")


def approve_employee_card(ctx: CommandContext, cmd: m.ApproveEmployeeCard) -> None:
    cred = _credential(ctx, cmd.credential_number, "credential_number")
    if cred.kind is not CredentialKind.TAG:
        raise DomainError("only employee cards (tags) need HR approval", field="credential_number")
    if cred.terminal:
        raise IllegalTransition(
            f"tag {cred.number} is {cred.state.value}", field="credential_number"
        )
    ctx.put(cred.model_copy(update={"hr_approved_at": cmd.at or ctx.now}))
    ctx.subjects.append(f"credential {cred.number}")


LOST_CARD_FEE_NOK = 400


def report_credential(ctx: CommandContext, cmd: m.ReportCredential) -> None:
    cred = _credential(ctx, cmd.credential_number, "credential_number")
    new = CredentialState(cmd.outcome)
    _transition(cred, new, "outcome")
    at = cmd.at or ctx.now
    ctx.put(cred.model_copy(update={"state": new, "state_changed_at": at}))
    if cred.kind is CredentialKind.VISITOR_CARD:
        card = ctx.facts.visitor_cards.get(cred.number)
        if card is not None:
            ctx.put(_erase(card, at))
    ctx.subjects.append(f"credential {cred.number}")
    ctx.result["revoked"] = cred.number
    if new is CredentialState.LOST and cred.kind is CredentialKind.TAG:
        ctx.result["fee_nok"] = LOST_CARD_FEE_NOK
        ctx.result["billed_employment"] = cred.employment_id


def replace_key(ctx: CommandContext, cmd: m.ReplaceKey) -> None:
    old = _credential(ctx, cmd.old_number, "old_number")
    new = _credential(ctx, cmd.new_number, "new_number")
    if old.kind is not CredentialKind.KEY or new.kind is not CredentialKind.KEY:
        raise DomainError("only keys are replaced this way", field="new_number")
    if old.employment_id is None or old.terminal:
        raise IllegalTransition(
            f"key {old.number} is {old.state.value}; only a handed-out key can be replaced",
            field="old_number",
        )
    _transition(old, CredentialState(cmd.old_outcome), "old_outcome")
    _transition(new, CredentialState.HANDED_OUT, "new_number")
    at = cmd.at or ctx.now
    emp_id = old.employment_id
    replaced_by = new.number if cmd.old_outcome == "replaced" else None
    ctx.put(
        old.model_copy(
            update={
                "state": CredentialState(cmd.old_outcome),
                "replaced_by": replaced_by,
                "state_changed_at": at,
            }
        )
    )
    ctx.put(
        _rebuild(
            new,
            "new_number",
            state=CredentialState.HANDED_OUT,
            employment_id=emp_id,
            state_changed_at=at,
        )
    )
    ctx.put(Receipt(credential_number=new.number, employment_id=emp_id, produced_at=at))
    ctx.subjects += [f"credential {old.number}", f"credential {new.number}"]
    ctx.result.update({"revoked": old.number, "new": new.number, "employment_id": emp_id})


# ------------------------------------------------------------------ visitor cards


def end_of_working_day(at: datetime, cfg: RulesConfig) -> datetime:
    """The end of the working day that ``at`` falls on, in the site's zone (or the next
    day's when ``at`` is already past it)."""
    local = at.astimezone(cfg.timezone)
    end = local.replace(
        hour=cfg.working_day_end.hour, minute=cfg.working_day_end.minute, second=0, microsecond=0
    )
    if end <= local:
        end = end + timedelta(days=1)
    return end.astimezone(at.tzinfo)


def issue_visitor_card(ctx: CommandContext, cmd: m.IssueVisitorCard) -> None:
    facts = ctx.facts
    if cmd.number in facts.credentials:
        raise Conflict(f"credential {cmd.number} is already registered", field="number")
    if cmd.sponsor_employment_id not in facts.employments:
        raise NotFound(
            f"sponsor employment {cmd.sponsor_employment_id} is not registered "
            "(no card without a contact person)",
            field="sponsor_employment_id",
        )
    for i, space_id in enumerate(cmd.space_ids):
        space = facts.spaces.get(space_id)
        if space is None:
            raise NotFound(f"space {space_id} is not registered", field=f"space_ids.{i}")
        if not space.doors:
            raise DomainError(
                f"space {space_id} has no controller doors a card could open",
                field=f"space_ids.{i}",
            )
    # Devices keep whole seconds: so does the card (usable from the second it is issued).
    valid_from = (cmd.valid_from or ctx.now).replace(microsecond=0)
    valid_until = cmd.valid_until.replace(microsecond=0)
    if valid_until <= valid_from:
        raise DomainError("must be after the card's start", field="valid_until")
    if cmd.reason is VisitorReason.FORGOT_CARD and valid_until > end_of_working_day(
        valid_from, ctx.cfg
    ):
        raise DomainError(
            "a card for a forgotten card is valid at most to the end of the working day",
            field="valid_until",
        )
    card = VisitorCard(
        number=cmd.number,
        holder_name=cmd.holder_name,
        company=cmd.company,
        mobile=cmd.mobile,
        sponsor_employment_id=cmd.sponsor_employment_id,
        reason=cmd.reason,
        space_ids=cmd.space_ids,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_at=ctx.now,
    )
    ctx.put(card)
    ctx.put(
        Credential(
            number=cmd.number,
            kind=CredentialKind.VISITOR_CARD,
            state=CredentialState.IN_SERVICE,
            state_changed_at=ctx.now,
        )
    )
    ctx.subjects.append(f"credential {cmd.number}")
    ctx.result.update({"credential": cmd.number, "valid_until": valid_until.isoformat()})


def change_visitor_card(ctx: CommandContext, cmd: m.ChangeVisitorCard) -> None:
    card = ctx.facts.visitor_cards.get(cmd.number)
    cred = ctx.facts.credentials.get(cmd.number)
    if card is None or cred is None:
        raise NotFound(f"visitor card {cmd.number} is not registered", field="number")
    if cred.terminal:
        raise IllegalTransition(f"visitor card {cmd.number} is {cred.state.value}", field="number")
    ctx.put(_rebuild(card, "valid_until", valid_until=cmd.valid_until.replace(microsecond=0)))
    ctx.subjects.append(f"credential {cmd.number}")


def _erase(card: VisitorCard, at: datetime) -> VisitorCard:
    return card.model_copy(
        update={
            "holder_name": ERASED,
            "company": ERASED,
            "mobile": ERASED,
            "erased": True,
            "returned_at": card.returned_at or at,
        }
    )


def return_visitor_card(ctx: CommandContext, cmd: m.ReturnVisitorCard) -> None:
    card = ctx.facts.visitor_cards.get(cmd.number)
    cred = ctx.facts.credentials.get(cmd.number)
    if card is None or cred is None:
        raise NotFound(f"visitor card {cmd.number} is not registered", field="number")
    new = CredentialState.LOST if cmd.lost else CredentialState.RETURNED
    _transition(cred, new, "number")
    at = cmd.at or ctx.now
    ctx.put(cred.model_copy(update={"state": new, "state_changed_at": at}))
    ctx.put(_erase(card, at))
    ctx.subjects.append(f"credential {cmd.number}")
    ctx.result.update({"credential": cmd.number, "erased": True, "fee_nok": 0})


__all__ = [
    "LOST_CARD_FEE_NOK",
    "approve_employee_card",
    "block_id06",
    "change_visitor_card",
    "end_of_working_day",
    "hand_out",
    "issue_visitor_card",
    "place_key_order",
    "put_agreement",
    "put_application",
    "put_assignment",
    "put_competence",
    "put_employment",
    "put_organisation",
    "put_person",
    "put_space",
    "register_delivery",
    "register_tags",
    "remove_competence",
    "replace_key",
    "report_credential",
    "return_visitor_card",
    "sign_receipt",
    "unblock_id06",
]
