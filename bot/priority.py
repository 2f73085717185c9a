"""The outbox's priorities: which message goes first when both could go now.

Below both the outbox's writing side (services) and its sender, so neither reaches into the
other.
"""

from __future__ import annotations


class Priority:
    """Lower is sooner: emergency before major before personal notices, service, routine."""

    EMERGENCY = 0
    MAJOR = 10
    PERSONAL = 15
    CARD = 17  # staff's ticket cards: after the receipts and steps people wait for on the phone
    SERVICE = 20
    ROUTINE = 30
    PIN_DELAY = 5  # a pin waits behind the posts of its own priority
