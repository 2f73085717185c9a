"""The horn's callback data and outbox refs: built and read in one place, and stale input
refused."""

from __future__ import annotations

import pytest

from bot.services import horn_codes as codes
from bot.services.errors import Refused
from bot.services.horn_codes import FlowPress, HornPress, VolunteerPress
from storage.models import CopyKind


@pytest.mark.parametrize("action", list(HornPress))
def test_every_horn_button_reads_back(action):
    person = 77 if action is HornPress.TOGGLE_PRESENT else None
    data = codes.horn_data(action, 12, person)
    assert len(data.encode()) <= 64
    assert codes.read_horn_press(data) == (action, 12, person)


def test_the_short_codes_on_the_wire_stay_as_they_were():
    """Buttons already in chats keep working after an upgrade."""
    assert [codes.horn_data(a, 5) for a in (HornPress.CHECK_IN, HornPress.CANT_COME,
                                            HornPress.CLOSE, HornPress.CLOSE_CONFIRMED,
                                            HornPress.KEEP_OPEN, HornPress.ASK_HOURS,
                                            HornPress.CONFIRM)] == [
        "h:in:5", "h:out:5", "h:close:5", "h:closeok:5", "h:keep:5", "h:hrs:5", "h:ok:5"]
    assert codes.horn_data(HornPress.TOGGLE_PRESENT, 5, 31) == "h:pr:5:31"
    assert codes.flow_data(FlowPress.LEVEL, "major") == "hf:lvl:major"
    assert codes.flow_data(FlowPress.PUBLISH) == "hf:pub"
    assert codes.volunteer_data(VolunteerPress.AVAILABILITY, "weekends") == "vf:av:weekends"
    assert codes.volunteer_data(VolunteerPress.CANCEL) == "vf:x"


@pytest.mark.parametrize("data", ["h:in", "h:in:x", "h:zap:5", "h:pr:5", "h:pr:5:me",
                                  "h:in:5:31", "hf:lvl:major", "h:in:5:31:9", ""])
def test_stale_or_forged_horn_data_is_refused(data):
    with pytest.raises(Refused, match="button.stale"):
        codes.read_horn_press(data)


def test_flow_and_volunteer_presses():
    assert codes.read_flow_press("hf:sk:medical") == (FlowPress.SKILL, "medical")
    assert codes.read_flow_press("hf:x") == (FlowPress.CANCEL, "")
    assert codes.read_volunteer_press("vf:next") == (VolunteerPress.NEXT, "")
    for bad, read in (("hf:nope", codes.read_flow_press), ("vf:sk", codes.read_flow_press),
                      ("vf:zz:1", codes.read_volunteer_press), ("vf:a:b:c",
                                                                codes.read_volunteer_press)):
        with pytest.raises(Refused, match="button.stale"):
            read(bad)


def test_refs_name_the_horn_and_the_kind_of_copy():
    ref = codes.copy_ref(12, CopyKind.PRIVATE)
    assert ref == "hcopy:12:private" and ref.startswith(codes.copies_on_their_way(12))
    assert codes.read_ref(ref) == (12, CopyKind.PRIVATE)
    assert codes.read_ref(codes.edit_ref(3, CopyKind.GROUP)) == (3, CopyKind.GROUP)
    assert not codes.copy_ref(120, CopyKind.GROUP).startswith(codes.copies_on_their_way(12))
    assert not codes.note_ref(12).startswith(codes.copies_on_their_way(12))
    # what the sender's log lines name (SPEC §15): a copy's, an edit's or a note's horn
    assert [codes.about(r) for r in (ref, codes.edit_ref(3, CopyKind.GROUP),
                                     codes.note_ref(7))] == \
        [{"horn_id": 12}, {"horn_id": 3}, {"horn_id": 7}]
    for bad in ("tcard:12:head", "hnote:x", "hnote"):
        with pytest.raises(ValueError):
            codes.about(bad)
    for bad in ("tcard:12:head", "hcopy:12", None):
        with pytest.raises(ValueError):
            codes.read_ref(bad)


def test_dedupe_keys_one_post_per_chat_and_round():
    keys = {codes.post_key(1, -101, 0), codes.post_key(1, -101, 1), codes.post_key(1, -102, 0),
            codes.post_key(2, -101, 0), codes.call_key(1, 20), codes.summary_key(1, -101),
            codes.unpin_key(1, -101, 5), codes.attendance_key(1)}
    assert len(keys) == 8
