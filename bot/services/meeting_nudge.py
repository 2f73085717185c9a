"""The monthly nudge (SPEC §12): each grid without a face-to-face meeting (面对面) by the 20th
reminds its grid leaders. Run by the scheduler (`GRIDHORN_MEETING_NUDGE_CRON`) once per month:
the run's record decides (bot/scheduler.py)."""

from __future__ import annotations

from datetime import datetime

from bot.i18n import t
from bot.services import periods
from bot.services.base import Service
from bot.services.outbox import Priority

JOB = "meeting_nudge"


class MeetingNudge(Service):
    async def nudge(self, month: str, now: datetime) -> int:
        """Inside the run's transaction: the grid leaders of every grid with no face-to-face
        meeting from the month's start until now; how many were told. A run caught up after
        its month is over tells no one (the month's meetings can no longer be nudged)."""
        now = now.astimezone(self.settings.tz)
        if periods.month_key(now) != month:
            return 0
        start = periods.month(month, self.settings.tz).start.timestamp()
        met = await self.store.meetings.face_to_face_grids(start, now.timestamp())
        told = 0
        for grid in await self.store.map.all():
            if grid.kind != "grid" or grid.code in met:
                continue
            for holder in await self.store.people.holders(("grid_leader",), [grid.code]):
                locale = await self.people.locale_for(holder.user_id)
                queued = await self.outbox.send(
                    holder.user_id, t(locale, "meeting.nudge", grid=grid.name, code=grid.code,
                                      month=month),
                    priority=Priority.ROUTINE,
                    dedupe_key=f"mt:nudge:{month}:{grid.code}:{holder.user_id}")
                told += queued is not None
        return told
