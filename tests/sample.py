"""The sample site: the seed story as a sequence of commands, dated relative to a day.

Two contractors (a main contractor and a subcontractor) sign key grant agreements; a third
organisation's agreement is later terminated. Keys are ordered, delivered inactive, handed out
and signed for. One person holds two employments and so two keys. An assignment's access
application is approved, then revised to remove one person; a third revision waits for a
decision. One space requires a competence that someone lacks, one ID06 card is blocked, one
receipt is unsigned, one key is still in stock, an employee tag opens the office doors and a
supplier's visitor card expires in two days.

Used by the tests. Everything is dated relative to ``today`` so the
story reads the same whenever it is run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.commands import model as m
from gateway.domain.facts import (
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    DeliveryManifest,
    DoorRef,
    Employment,
    Id06Card,
    KeyGrantAgreement,
    KeyOrder,
    Organisation,
    Person,
    Space,
    VisitorReason,
)
from gateway.domain.identifiers import org_number_with_check_digit
from gateway.domain.timeutil import DEFAULT_TIMEZONE, ScheduleInterval, WeeklySchedule

MAIN = org_number_with_check_digit("556677880")
SUB = org_number_with_check_digit("559012345")
ENDED = org_number_with_check_digit("556123456")

OPERATOR = "sample-loader"

# Key serials of the story, for tests and the demo narration.
KEY_ANNA = "100000001"
KEY_BJORN_MAIN = "100000002"
KEY_BJORN_SUB = "100000003"
KEY_CECILIA = "100000004"
KEY_DAVID = "100000005"
KEY_ERIK = "100000006"
KEY_FATIMA = "100000007"
KEY_IN_STOCK = "100000008"
KEY_GUSTAV = "100000009"
TAG_ANNA = "4000001"
VISITOR_CARD = "5000001"

CYL_TECH = ("200101", "200102", "200103")
CYL_SIGNAL = ("200201", "200202")
CYL_DEPOT = ("200301",)
CONTROLLER = "ctrl-office"


def sample_commands(today: date, tz: ZoneInfo | None = None) -> list[m.Command]:
    """The sample story as commands, in the order a real site would receive them."""
    zone = tz or ZoneInfo(DEFAULT_TIMEZONE)

    def at(days: int, hour: int = 9) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(hour), zone).astimezone(UTC)

    def day(days: int) -> date:
        return today + timedelta(days=days)

    cmds: list[m.Command] = [
        m.PutOrganisation(
            organisation=Organisation(org_number=MAIN, name="Banbyggarna i Mälardalen AB")
        ),
        m.PutOrganisation(organisation=Organisation(org_number=SUB, name="Signalteknik Norr AB")),
        m.PutOrganisation(organisation=Organisation(org_number=ENDED, name="Kabelkonsult Öst AB")),
        m.PutAgreement(
            agreement=KeyGrantAgreement(
                id="agr-main", org_number=MAIN, signed_on=day(-200), valid_from=day(-200)
            )
        ),
        m.PutAgreement(
            agreement=KeyGrantAgreement(
                id="agr-sub",
                org_number=SUB,
                signed_on=day(-100),
                valid_from=day(-100),
                valid_until=day(365),
            )
        ),
        m.PutAgreement(
            agreement=KeyGrantAgreement(
                id="agr-ended", org_number=ENDED, signed_on=day(-150), valid_from=day(-150)
            )
        ),
    ]
    people = [
        ("p-anna", "Anna", "Lindqvist", "+46701110001"),
        ("p-bjorn", "Björn", "Karlsson", "+46701110002"),
        ("p-cecilia", "Cecilia", "Ek", None),
        ("p-david", "David", "Nilsson", None),
        ("p-erik", "Erik", "Holm", None),
        ("p-fatima", "Fatima", "Ali", None),
        ("p-gustav", "Gustav", "Lund", None),
    ]
    cmds += [
        m.PutPerson(person=Person(id=i, first_name=f, last_name=ln, mobile=mob))
        for i, f, ln, mob in people
    ]
    employments = [
        ("emp-anna", "p-anna", MAIN, "ID06AN0001"),
        ("emp-bjorn-main", "p-bjorn", MAIN, "ID06BK0001"),
        ("emp-bjorn-sub", "p-bjorn", SUB, "ID06BK0002"),
        ("emp-cecilia", "p-cecilia", SUB, "ID06CE0001"),
        ("emp-david", "p-david", MAIN, "ID06DN0001"),
        ("emp-erik", "p-erik", SUB, "ID06EH0001"),
        ("emp-fatima", "p-fatima", MAIN, "ID06FA0001"),
        ("emp-gustav", "p-gustav", ENDED, "ID06GL0001"),
    ]
    cmds += [
        m.PutEmployment(
            employment=Employment(
                id=e, person_id=p, org_number=o, id06=Id06Card(card_number=c, valid_until=day(700))
            )
        )
        for e, p, o, c in employments
    ]
    cmds += [
        m.PutCompetence(
            competence=Competence(person_id="p-anna", code="ELSAK", valid_until=day(300))
        ),
        m.PutCompetence(
            competence=Competence(person_id="p-bjorn", code="ELSAK", valid_until=day(120))
        ),
        m.PutSpace(
            space=Space(
                id="sp-tech",
                name="Teknikhus Hallsberg",
                cylinders=CYL_TECH,
                required_competences=("ELSAK",),
                revalidation_days=14,
            )
        ),
        m.PutSpace(space=Space(id="sp-signal", name="Signalkur km 212", cylinders=CYL_SIGNAL)),
        m.PutSpace(
            space=Space(
                id="sp-depot",
                name="Depå Hallsberg",
                cylinders=CYL_DEPOT,
                doors=(DoorRef(controller_id=CONTROLLER, door=3),),
            )
        ),
        m.PutSpace(
            space=Space(
                id="sp-office",
                name="Kontor entré",
                doors=(
                    DoorRef(controller_id=CONTROLLER, door=1),
                    DoorRef(controller_id=CONTROLLER, door=2),
                ),
            )
        ),
        m.PutAssignment(
            assignment=Assignment(
                id="asg-hallsberg",
                name="Signalbyte Hallsberg",
                main_contractor=MAIN,
                project_manager="Karin Sjöberg",
                starts_on=day(-30),
                ends_on=day(180),
            )
        ),
        m.PutAssignment(
            assignment=Assignment(
                id="asg-office",
                name="Projektkontor Hallsberg",
                main_contractor=MAIN,
                project_manager="Karin Sjöberg",
                starts_on=day(-30),
                ends_on=day(365),
            )
        ),
    ]
    # Key orders, deliveries (inactive keys), hand-outs and receipts.
    orders = [
        ("order-main-1", MAIN, [KEY_ANNA, KEY_BJORN_MAIN, KEY_DAVID, KEY_FATIMA, KEY_IN_STOCK]),
        ("order-sub-1", SUB, [KEY_BJORN_SUB, KEY_CECILIA, KEY_ERIK]),
        ("order-ended-1", ENDED, [KEY_GUSTAV]),
    ]
    for oid, org, keys in orders:
        cmds.append(
            m.PlaceKeyOrder(
                order=KeyOrder(
                    id=oid,
                    org_number=org,
                    quantity=len(keys),
                    delivery_address="Stationsgatan 1, Hallsberg",
                    ordered_at=at(-60),
                )
            )
        )
        cmds.append(
            m.RegisterDelivery(
                manifest=DeliveryManifest(
                    order_id=oid, delivered_at=at(-45), key_serials=tuple(keys)
                )
            )
        )
    handouts = [
        (KEY_ANNA, "emp-anna", True),
        (KEY_BJORN_MAIN, "emp-bjorn-main", True),
        (KEY_BJORN_SUB, "emp-bjorn-sub", True),
        (KEY_CECILIA, "emp-cecilia", True),
        (KEY_DAVID, "emp-david", True),
        (KEY_ERIK, "emp-erik", True),
        (KEY_FATIMA, "emp-fatima", False),
        (KEY_GUSTAV, "emp-gustav", True),
    ]
    for key, emp, signed in handouts:
        cmds.append(m.HandOut(credential_number=key, employment_id=emp, at=at(-40)))
        if signed:
            cmds.append(m.SignReceipt(credential_number=key, signed_at=at(-38)))
    cmds += [
        m.RegisterTags(numbers=(TAG_ANNA,)),
        m.HandOut(credential_number=TAG_ANNA, employment_id="emp-anna", at=at(-40)),
        m.ApproveEmployeeCard(credential_number=TAG_ANNA, at=at(-39)),
        m.SignReceipt(credential_number=TAG_ANNA, signed_at=at(-38)),
    ]
    weekdays = WeeklySchedule(
        intervals=(ScheduleInterval(days=(0, 1, 2, 3, 4), start=time(6), end=time(18)),)
    )

    def entry(
        emp: str, spaces: tuple[str, ...], schedule: WeeklySchedule | None = None
    ) -> ApplicationEntry:
        return ApplicationEntry(
            employment_id=emp,
            space_ids=spaces,
            valid_from=day(-20),
            valid_until=day(150),
            schedule=schedule,
        )

    rev1 = (
        entry("emp-anna", ("sp-tech", "sp-signal")),
        entry("emp-bjorn-main", ("sp-signal", "sp-depot")),
        entry("emp-bjorn-sub", ("sp-signal",), weekdays),
        entry("emp-cecilia", ("sp-tech", "sp-signal")),
        entry("emp-david", ("sp-signal",)),
        entry("emp-erik", ("sp-signal",)),
        entry("emp-fatima", ("sp-signal",)),
        entry("emp-gustav", ("sp-signal",)),
    )
    rev2 = tuple(e for e in rev1 if e.employment_id != "emp-erik")
    rev3 = (*rev2, entry("emp-erik", ("sp-tech",)))
    cmds += [
        m.PutApplication(
            application=AccessApplication(
                assignment_id="asg-hallsberg",
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=at(-34),
                decided_at=at(-20),
                entries=rev1,
            )
        ),
        m.PutApplication(
            application=AccessApplication(
                assignment_id="asg-hallsberg",
                revision=2,
                status=ApplicationStatus.APPROVED,
                submitted_at=at(-12),
                decided_at=at(-5),
                entries=rev2,
            )
        ),
        m.PutApplication(
            application=AccessApplication(
                assignment_id="asg-hallsberg",
                revision=3,
                status=ApplicationStatus.SUBMITTED,
                expedited=True,
                submitted_at=at(-1),
                entries=rev3,
            )
        ),
        m.PutApplication(
            application=AccessApplication(
                assignment_id="asg-office",
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=at(-30),
                decided_at=at(-28),
                entries=(
                    ApplicationEntry(
                        employment_id="emp-anna",
                        space_ids=("sp-office",),
                        valid_from=day(-28),
                        valid_until=day(365),
                    ),
                ),
            )
        ),
        # The blocking register reports David's card; Kabelkonsult's agreement is terminated.
        m.BlockId06(card_number="ID06DN0001", reason="reported lost by the card holder"),
        m.PutAgreement(
            agreement=KeyGrantAgreement(
                id="agr-ended",
                org_number=ENDED,
                signed_on=day(-150),
                valid_from=day(-150),
                terminated_at=at(-3),
            )
        ),
        m.IssueVisitorCard(
            number=VISITOR_CARD,
            holder_name="Helena Berg",
            company="Hissservice AB",
            mobile="+46709990001",
            sponsor_employment_id="emp-anna",
            reason=VisitorReason.SUPPLIER,
            space_ids=("sp-office",),
            valid_until=at(2, 16),
            confirmed_in_person=True,
            return_duty_acknowledged=True,
        ),
    ]
    return cmds


__all__ = [
    "CONTROLLER",
    "CYL_DEPOT",
    "CYL_SIGNAL",
    "CYL_TECH",
    "ENDED",
    "KEY_ANNA",
    "KEY_BJORN_MAIN",
    "KEY_BJORN_SUB",
    "KEY_CECILIA",
    "KEY_DAVID",
    "KEY_ERIK",
    "KEY_FATIMA",
    "KEY_GUSTAV",
    "KEY_IN_STOCK",
    "MAIN",
    "OPERATOR",
    "SUB",
    "TAG_ANNA",
    "VISITOR_CARD",
    "sample_commands",
]
