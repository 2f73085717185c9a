"""Group chats: the bot added or removed, /bind, /unbind, /joinlink, migrations (SPEC §2)."""

from __future__ import annotations

import logging

from telegram import Chat, ChatMember, ChatMemberAdministrator, ChatMemberUpdated, Update
from telegram.constants import ChatMemberStatus
from telegram.ext import Application, ChatMemberHandler, CommandHandler, MessageHandler, filters

from bot.context import GridhornContext
from bot.i18n import join_list, t
from bot.services.chats import ChatInfo
from bot.services.errors import Refused
from handlers.common import command_args, handles_refusals, reply, reply_html
from handlers.render import unit_label

logger = logging.getLogger(__name__)

# the rights /bind finds missing (ChatService.bind), as the catalog words them
RIGHT = {"admin": "bind.right.admin", "pin": "bind.right.pin", "topics": "bind.right.topics"}
_GONE = {ChatMemberStatus.LEFT, ChatMemberStatus.BANNED}


async def chat_info(update: Update, context: GridhornContext) -> ChatInfo:
    """The chat of the update and the bot's current rights there (asked of Telegram)."""
    chat = update.effective_chat
    assert chat is not None
    return _info(chat, await context.bot.get_chat_member(chat.id, context.bot.id))


def _info(chat: Chat, member: ChatMember) -> ChatInfo:
    """A chat and the bot's rights in it, as the chat service keeps them."""
    admin = isinstance(member, ChatMemberAdministrator)
    return ChatInfo(chat_id=chat.id, type=chat.type, title=chat.title,
                    is_forum=bool(chat.is_forum), bot_is_admin=admin,
                    can_pin=admin and bool(member.can_pin_messages),
                    can_manage_topics=admin and bool(member.can_manage_topics))


async def bot_membership(update: Update, context: GridhornContext) -> None:
    """The bot was added to, promoted in, or removed from a group."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    chat = change.chat
    if chat.type == "private":
        gone = change.new_chat_member.status in _GONE
        await context.services.people.set_blocked(chat.id, gone)
        return
    services = context.services
    old, new = change.old_chat_member, change.new_chat_member
    if new.status in _GONE:
        await services.chats.bot_removed(chat.id, chat.title)
        return
    await services.chats.seen(_info(chat, new))
    if old.status in _GONE:
        await reply(update, context, "chat.greeting")


def _group_thread(update: Update) -> int:
    """The forum topic the command was sent in (0 outside a topic); refuses private chats."""
    chat = update.effective_chat
    if chat is None or chat.type == "private":
        raise Refused("bind.private")
    message = update.effective_message
    return (message.message_thread_id or 0) if message and message.is_topic_message else 0


@handles_refusals
async def bind(update: Update, context: GridhornContext) -> None:
    """/bind CODE: link this chat (or this forum topic) to a unit of the map."""
    args = command_args(update)
    if len(args) != 1:
        raise Refused("bind.usage")
    thread_id = _group_thread(update)
    info = await chat_info(update, context)
    bound = await context.services.chats.bind(context.actor, info, thread_id, args[0])
    lines = [t(context.locale, "bind.done_topic" if bound.thread_id else "bind.done",
               unit=unit_label(bound.unit))]
    if bound.replaced is not None:
        lines.append(t(context.locale, "bind.replaced", unit=unit_label(bound.replaced)))
    if bound.missing_rights:
        rights = join_list(context.locale,
                           (t(context.locale, RIGHT[r]) for r in bound.missing_rights))
        lines.append(t(context.locale, "bind.missing_rights", rights=rights))
    await reply_html(update, context, "\n".join(lines))


@handles_refusals
async def unbind(update: Update, context: GridhornContext) -> None:
    """/unbind: undo this chat's (or topic's) binding."""
    thread_id = _group_thread(update)
    unit = await context.services.chats.unbind(context.actor, update.effective_chat.id,
                                               thread_id)
    await reply(update, context, "unbind.done", unit=unit_label(unit))


@handles_refusals
async def joinlink(update: Update, context: GridhornContext) -> None:
    """/joinlink: post the residents' join link of this building chat; privately,
    /joinlink CODE gives a building's link to pass on."""
    chat = update.effective_chat
    services = context.services
    if chat is not None and chat.type == "private":
        args = command_args(update)
        if len(args) != 1:
            raise Refused("joinlink.usage")
        building, payload = await services.chats.join_link_of(context.actor, args[0])
        await reply(update, context, "joinlink.private", building=unit_label(building),
                    link=services.deep_link(payload))
        return
    if chat is None:
        raise Refused("joinlink.not_building")
    building, payload = await services.chats.join_link_unit(context.actor, chat.id)
    await reply(update, context, "unit.joinlink_post" if building.kind == "member"
                else "joinlink.post", building=unit_label(building),
                link=services.deep_link(payload))


async def migrated(update: Update, context: GridhornContext) -> None:
    """A group became a supergroup: the bindings follow the new chat id."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id:
        await context.services.chats.migrated(message.chat.id, message.migrate_to_chat_id)
    elif message.migrate_from_chat_id:
        await context.services.chats.migrated(message.migrate_from_chat_id, message.chat.id)


def register(app: Application, group: int) -> None:
    app.add_handler(ChatMemberHandler(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER),
                    group=group)
    app.add_handler(CommandHandler("bind", bind), group=group)
    app.add_handler(CommandHandler("unbind", unbind), group=group)
    app.add_handler(CommandHandler("joinlink", joinlink), group=group)
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, migrated), group=group)
