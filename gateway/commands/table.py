"""Every command type and its handler, in one table; :func:`handle` runs the right one.

A new command gets its model (``model``, or a module of its own for commands not offered
over MQTT), its handler, and one line here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from gateway.commands import handlers as h
from gateway.commands import model as m
from gateway.commands.context import CommandContext
from gateway.commands.retention import ApplyRetention, apply_retention
from gateway.commands.review import RecordAccessReview, record_access_review

Handler = Callable[[CommandContext, Any], None]

HANDLERS: Final[Mapping[type[m.Command], Handler]] = {
    m.PutOrganisation: h.put_organisation,
    m.PutAgreement: h.put_agreement,
    m.PutPerson: h.put_person,
    m.PutEmployment: h.put_employment,
    m.BlockId06: h.block_id06,
    m.UnblockId06: h.unblock_id06,
    m.PutCompetence: h.put_competence,
    m.RemoveCompetence: h.remove_competence,
    m.PutSpace: h.put_space,
    m.PutAssignment: h.put_assignment,
    m.PutApplication: h.put_application,
    m.PlaceKeyOrder: h.place_key_order,
    m.RegisterDelivery: h.register_delivery,
    m.RegisterTags: h.register_tags,
    m.HandOut: h.hand_out,
    m.SignReceipt: h.sign_receipt,
    m.ApproveEmployeeCard: h.approve_employee_card,
    m.ReportCredential: h.report_credential,
    m.ReplaceKey: h.replace_key,
    m.IssueVisitorCard: h.issue_visitor_card,
    m.ChangeVisitorCard: h.change_visitor_card,
    m.ReturnVisitorCard: h.return_visitor_card,
    RecordAccessReview: record_access_review,
    ApplyRetention: apply_retention,
}
"""Command type -> its handler."""


def handle(ctx: CommandContext, command: m.Command) -> None:
    """Run the handler of ``command``'s type."""
    HANDLERS[type(command)](ctx, command)


__all__ = ["HANDLERS", "Handler", "handle"]
