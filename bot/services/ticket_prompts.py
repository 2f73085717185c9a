"""Words asked for and passed on: the prompts that ask staff for a note, a reason or a reply
(answered by replying to them), and the relays between staff and the reporter (SPEC §4).

A prompt's row keeps the action's short code (`ticket_views.ACTION_CODES`); a relayed
message becomes a prompt of its own once sent, so that the reporter's reply to it counts.
"""

from __future__ import annotations

from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Refused
from bot.services.ticket_refs import relay_ref
from bot.services.ticket_states import TicketAction
from bot.services.ticket_whistles import TicketWhistles
from storage.models import Prompt, Ticket

#: the prompts whose answer is the reporter's: they stay open for further answers
_REPORTER_KEEPS = (TicketAction.ANSWER,)


class TicketPrompts(TicketWhistles):
    async def ask(self, actor: Actor, ticket_id: int, action: TicketAction) -> Ticket:
        """Check, before asking for words, that the actor may do `action` on the ticket."""
        ticket = await self._get(ticket_id)
        if action == TicketAction.DECLINE:
            await self._department_ticket(actor, ticket_id)
            self.check(action, ticket)
            return ticket
        if action == TicketAction.RESOLVE:
            await self._check_resolve(actor, ticket)
            return ticket
        await self._require(actor, Action.HANDLE_TICKET, ticket)
        self.check(action, ticket)
        return ticket

    async def remember_prompt(self, chat_id: int, message_id: int, user_id: int,
                              ticket_id: int, action: TicketAction) -> None:
        async with self.store.transaction():
            await self.store.tickets.add_prompt(chat_id, message_id, user_id, ticket_id,
                                                views.ACTION_CODES[action])

    async def prompt_for(self, chat_id: int, message_id: int) -> Prompt | None:
        return await self.store.tickets.prompt(chat_id, message_id)

    async def answer_prompt(self, actor: Actor, chat_id: int, message_id: int, text: str,
                            photo_file_id: str | None = None
                            ) -> tuple[TicketAction, Ticket] | None:
        """A reply to one of our prompts: do the action it asked words for."""
        prompt = await self.store.tickets.prompt(chat_id, message_id)
        if prompt is None:
            return None
        if prompt.user_id is not None and prompt.user_id != actor.user_id:
            raise Refused("prompt.not_yours")
        action = views.action_of(prompt.action)
        ticket_id = prompt.ticket_id
        if action is None:
            return None
        if not text.strip() and action != TicketAction.ANSWER:
            raise Refused("ticket.need_words")
        if action == TicketAction.RESOLVE:
            ticket = await self.resolve(actor, ticket_id, text)
        elif action == TicketAction.REJECT:
            ticket = await self.reject(actor, ticket_id, text)
        elif action == TicketAction.MERGE:
            ticket = await self.merge(actor, ticket_id, text)
        elif action == TicketAction.REPLY:
            ticket = await self.reply_to_reporter(actor, ticket_id, text)
        elif action == TicketAction.DECLINE:
            ticket = await self.decline(actor, ticket_id, text)
        elif action == TicketAction.ANSWER:
            ticket = await self.reporter_answer(actor.user_id, ticket_id, text, photo_file_id)
        elif action == TicketAction.COMMENT:
            ticket = await self.comment(actor.user_id, ticket_id, text)
        elif action == TicketAction.COMMENT_DEPARTMENT:
            ticket = await self.comment_department(actor, ticket_id, text)
        else:
            return None
        if action not in _REPORTER_KEEPS:
            async with self.store.transaction():
                await self.store.tickets.drop_prompt(chat_id, message_id)
        return action, ticket

    async def relay_sent(self, ticket_id: int, chat_id: int, message_id: int,
                         action: TicketAction = TicketAction.ANSWER) -> None:
        """Outbox hook: a reply to this message is the reporter's answer (or comment)."""
        await self.store.tickets.add_prompt(chat_id, message_id, chat_id, ticket_id,
                                            views.ACTION_CODES[action])

    async def reply_to_reporter(self, actor: Actor, ticket_id: int, text: str) -> Ticket:
        """Relay a staff answer to the reporter; their reply to it comes back to the thread."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        if not text.strip():
            raise Refused("ticket.need_words")
        async with self.store.transaction():
            await self._step(TicketAction.REPLY, ticket, actor.user_id, note=text,
                             told={"text": text}, ref=relay_ref(ticket.id))
        return ticket

    async def reporter_answer(self, user_id: int, ticket_id: int, text: str,
                              photo_file_id: str | None = None) -> Ticket:
        ticket = await self._get(ticket_id)
        if ticket.reporter_id != user_id:
            raise Refused("button.stale")
        async with self.store.transaction():
            await self._step(TicketAction.ANSWER, ticket, user_id, note=text,
                             event_data={"photo": photo_file_id} if photo_file_id else None,
                             told={"text": text}, photo=photo_file_id)
        return ticket

    async def comment(self, user_id: int, ticket_id: int, text: str) -> Ticket:
        """The reporter's words after their rating, into the ticket's staff thread."""
        ticket = await self._get(ticket_id)
        if ticket.reporter_id != user_id or ticket.rating is None:
            raise Refused("button.stale")
        async with self.store.transaction():
            await self._step(TicketAction.COMMENT, ticket, user_id, note=text,
                             fields={"rating_comment": text}, told={"text": text})
        return await self._get(ticket.id)
