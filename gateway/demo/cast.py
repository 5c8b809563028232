"""The people, organisations, keys and locks of the demo story (and of the demo site file,
simulators/sites/demo.toml): numbers the narration refers to."""

from __future__ import annotations

from typing import Final

from gateway.domain.identifiers import org_number_with_check_digit

MAIN: Final = org_number_with_check_digit("556677880")
"""Banbyggarna i Mälardalen AB, the main contractor."""
SUB: Final = org_number_with_check_digit("559012345")
"""Signalteknik Norr AB, the subcontractor."""

KEY_ANNA: Final = "100000001"
KEY_BJORN_MAIN: Final = "100000002"
KEY_BJORN_SUB: Final = "100000003"
KEY_CECILIA: Final = "100000004"
TAG_ANNA: Final = "4000001"
VISITOR_CARD: Final = "5000001"

CYL_TECH: Final = ("200101", "200102", "200103")
"""Cylinders of Teknikhus Västerås."""
CYL_SIGNAL: Final = ("200201", "200202")
"""Cylinders of the signal box."""
CONTROLLER: Final = "ctrl-office"
"""The office's door controller."""
GATE: Final = "uhppote-gate"
"""The UHPPOTE access controller of the office's gate (door 1 is in the office space)."""
HUT: Final = "osdp-hut"
"""The OSDP reader on the technical hut's door (lockgate is its panel; the hut's space needs
the ELSAK competence)."""
