"""The emulated Telegram world and the control API tests use to drive it.

:class:`EmulatorState` owns users, chats, messages, files, the update queue and
the request log.  Tests call its control methods (``add_user``, ``send_text``,
``press``, ...) to play humans, and its output methods (``messages``,
``wait_for_message``, ...) to see what the bot did.  The Bot API methods live
in :mod:`emulator.methods`; the HTTP server in :mod:`emulator.server`.

Everything runs on one asyncio event loop and nothing here blocks, so state is
changed without locks; waiters are woken through :class:`_Signal`.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .html import utf16_len
from .limits import DEFAULT_FLOOD_LIMITS, FloodLimiter, FloodLimits
from .models import (
    ANY_THREAD,
    CallbackAnswer,
    EmuCallbackQuery,
    EmuChat,
    EmuFile,
    EmuMessage,
    EmuStats,
    EmuTopic,
    EmuUser,
    Faults,
    MessageKind,
    RequestLog,
)
from .webhook import WebhookConfig, WebhookDelivery

__all__ = ["DEFAULT_ALLOWED_UPDATES", "ChatRef", "EmulatorState", "UserRef"]

ChatRef = EmuChat | int
UserRef = EmuUser | int
MessageRef = EmuMessage | int

#: Update types delivered when the bot never specified ``allowed_updates``.
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post",
        "business_connection", "business_message", "edited_business_message",
        "deleted_business_messages", "inline_query", "chosen_inline_result",
        "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media",
        "poll", "poll_answer", "my_chat_member", "chat_join_request", "chat_boost",
        "removed_chat_boost",
    }
)  # fmt: skip

#: Forum topic icon colours Telegram accepts.
TOPIC_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)

_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>@])")
_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_FAKE_JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


class _Signal:
    """Broadcasts "something changed" to any number of waiters, without polling.

    A waiter takes :meth:`waiter` *before* checking its condition and then awaits
    it; :meth:`fire` sets the current event and starts a fresh one.  Because
    nothing awaits between the check and the wait, no wake-up can be missed.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


#: The id of the Bot API call being handled (set only while listeners are attached).
CURRENT_CALL: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "emulator_current_call", default=None)


#: What `world_state` keeps: accounts, chats with their messages and topics, files, what the bot
#: set up (commands, profile) and the id counters, so that ids go on where they stopped.
_WORLD_FIELDS = (
    "users", "chats", "files", "_files_by_path", "commands", "bot_profile", "_next_user_id",
    "_next_basic_group", "_next_supergroup", "_next_callback", "_next_file",
    "_next_update_id", "_confirmed_offset", "_seq",
)


class EmulatorState:
    """Users, chats, messages and updates of one emulated bot.

    Args:
        token: the bot token, ``"<bot id>:<secret>"``.
        bot_username: the bot's username (without ``@``).
        bot_first_name: the bot's display name.
        flood: flood limits to enforce, or ``None`` for none.
        callback_timeout: seconds after a button tap during which the bot may
            still answer the callback query.
        privacy_mode: group privacy mode (bots that are not admins only see
            commands, replies to them and service messages).
        strict_html_entities: reject unknown ``&name;`` entities in HTML (see
            :mod:`emulator.html`).
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "gridhorn_bot",
        bot_first_name: str = "Gridhorn",
        flood: FloodLimits | None = DEFAULT_FLOOD_LIMITS,
        callback_timeout: float = 15.0,
        *,
        privacy_mode: bool = True,
        strict_html_entities: bool = True,
    ) -> None:
        match = _TOKEN.match(token)
        if not match:
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token = token
        self.bot_id = int(match.group(1))
        self.bot_username = bot_username.lstrip("@")
        self.bot_first_name = bot_first_name
        self.callback_timeout = callback_timeout
        self.privacy_mode = privacy_mode
        self.strict_html_entities = strict_html_entities

        self.users: dict[int, EmuUser] = {}
        self.chats: dict[int, EmuChat] = {}
        #: What ``setMyCommands`` stored: ``(scope, language_code) -> [(command, description)]``.
        #: ``scope`` is the scope type (``"default"``, ``"all_private_chats"``,
        #: ``"all_group_chats"``, ``"all_chat_administrators"``) or, for scopes bound
        #: to a chat, ``"chat:<chat_id>"``, ``"chat_administrators:<chat_id>"`` or
        #: ``"chat_member:<chat_id>:<user_id>"``; ``language_code`` is ``""`` if none.
        self.commands: dict[tuple[str, str], list[tuple[str, str]]] = {}
        #: ``setMyName`` / ``setMyDescription`` / ``setMyShortDescription`` values,
        #: keyed by ``(field, language_code)``.
        self.bot_profile: dict[tuple[str, str], str] = {}
        #: Every Bot API call, in completion order.
        self.requests: list[RequestLog] = []
        self.stats = EmuStats()
        #: Unexpected exceptions inside the emulator (answered with 500).
        self.internal_errors: list[BaseException] = []
        #: Every callback query created by :meth:`press`.
        self.callback_queries: dict[str, EmuCallbackQuery] = {}
        self.files: dict[str, EmuFile] = {}
        self._files_by_path: dict[str, EmuFile] = {}

        self._flood: FloodLimits | None = None
        self.limiter: FloodLimiter | None = None
        self.flood = flood
        self._faults: Faults | None = None
        self._fault_rng = random.Random()

        self._next_user_id = 1001
        self._next_basic_group = 1
        self._next_supergroup = 1
        self._next_callback = 1
        self._next_file = 1
        self._updates: deque[tuple[int, str, dict[str, Any]]] = deque()
        self._next_update_id = 1
        self._confirmed_offset = 0
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._poll_generation = 0
        self._waiting_polls = 0
        self._seq = 0
        self._closing = False
        self._updates_signal = _Signal()
        self._changes_signal = _Signal()
        #: Listeners of the emulated world (the playground): each called with (kind, object)
        #: for "message" (an EmuMessage was sent or changed), "answer" (an EmuCallbackQuery was
        #: answered), "call" (a CallRecord: a Bot API call finished) and "update" (a
        #: ``(update_id, payload)`` pair queued for the bot). Empty: nothing is recorded.
        self.listeners: list[Callable[[str, Any], None]] = []
        self._touched: set[EmuMessage] = set()
        #: The webhook ``setWebhook`` set (``None``: the bot polls with getUpdates).
        self.webhook: WebhookConfig | None = None
        #: Webhook retries: the first delay in seconds, doubled after each failure up to the
        #: cap (Telegram's are longer; tests shorten them), and each POST's timeout.
        self.webhook_retry_delay = 1.0
        self.webhook_retry_cap = 60.0
        self.webhook_timeout = 60.0
        self._webhook_delivery = WebhookDelivery(self)

    # ------------------------------------------------------------------ saving the world

    def world_state(self) -> dict[str, Any]:
        """The emulated world as plain data objects, for `restore_world` in a later run (the
        playground's `--db FILE`). Updates not yet confirmed and callback queries are not
        kept: save when the bot is idle."""
        return {name: getattr(self, name) for name in _WORLD_FIELDS}

    def restore_world(self, state: dict[str, Any]) -> None:
        """Take back a world saved by `world_state` (before the bot starts polling)."""
        for name in _WORLD_FIELDS:
            setattr(self, name, state[name])

    # ------------------------------------------------------------------ settings

    @property
    def flood(self) -> FloodLimits | None:
        """Flood limits in force; assigning resets all windows."""
        return self._flood

    @flood.setter
    def flood(self, limits: FloodLimits | None) -> None:
        self._flood = limits
        self.limiter = None if limits is None else FloodLimiter(limits)

    @property
    def faults(self) -> Faults | None:
        """Injected failures; assigning re-seeds the fault RNG."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self._faults = faults
        self._fault_rng = random.Random(None if faults is None else faults.seed)

    def bot_user_dict(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # ------------------------------------------------------------------ actors

    def add_user(
        self,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> EmuUser:
        """Create a human account; ids count up from 1001."""
        user = EmuUser(self._next_user_id, first_name, last_name, username, language_code)
        self._next_user_id += 1
        self.users[user.id] = user
        return user

    def add_group(
        self,
        title: str,
        supergroup: bool = True,
        forum: bool = False,
        members: Iterable[EmuUser] = (),
        *,
        owner: EmuUser | None = None,
        admins: Iterable[EmuUser] = (),
        username: str | None = None,
    ) -> EmuChat:
        """Create a group the bot is not in yet (see :meth:`add_bot_to_group`).

        Supergroup ids look like ``-100xxxxxxxxxx``, basic group ids like
        ``-xxxxx``.  ``owner`` defaults to the first member; ``admins`` are
        extra human administrators.
        """
        if forum and not supergroup:
            raise ValueError("only supergroups can be forums")
        if supergroup:
            chat_id = -(1_001_000_000_000 + self._next_supergroup)
            self._next_supergroup += 1
        else:
            chat_id = -(50_000 + self._next_basic_group)
            self._next_basic_group += 1
        chat = EmuChat(
            chat_id,
            "supergroup" if supergroup else "group",
            title=title,
            username=username.lstrip("@") if username else None,
            is_forum=forum,
        )
        for member in [*members, *([owner] if owner else []), *admins]:
            chat.members[member.id] = member
        if owner is not None:
            chat.owner_id = owner.id
        elif chat.members:
            chat.owner_id = next(iter(chat.members))
        chat.admin_ids.update(admin.id for admin in admins)
        self.chats[chat.id] = chat
        return chat

    async def add_bot_to_group(
        self,
        group: ChatRef,
        by: EmuUser | None = None,
        admin: bool = False,
        can_pin: bool | None = None,
        can_manage_topics: bool | None = None,
    ) -> None:
        """A user adds the bot to a group (``can_*`` default to ``admin``).

        Emits ``my_chat_member`` and, if the bot was not in the group, a
        ``new_chat_members`` service message.
        """
        chat = self._group(group)
        actor = self.actor_for(chat, by)
        was_member = chat.bot_is_member
        old = self.bot_member_dict(chat)
        chat.bot_status = "administrator" if admin else "member"
        chat.bot_can_pin = admin if can_pin is None else (admin and can_pin)
        chat.bot_can_manage_topics = (
            admin if can_manage_topics is None else (admin and can_manage_topics)
        )
        self.emit_my_chat_member(chat, actor, old)
        if not was_member:
            bot = self.bot_user_dict()
            message = self.new_message(
                chat,
                actor,
                "service",
                service={
                    "new_chat_participant": bot,
                    "new_chat_member": bot,
                    "new_chat_members": [bot],
                },
            )
            self._enqueue("message", {"message": self.message_to_dict(message)})
        self._changes_signal.fire()

    def set_bot_rights(
        self,
        group: ChatRef,
        *,
        admin: bool | None = None,
        can_pin: bool | None = None,
        can_manage_topics: bool | None = None,
        by: EmuUser | None = None,
    ) -> None:
        """Promote/demote the bot in a group it is in; emits ``my_chat_member`` on change."""
        chat = self._group(group)
        if not chat.bot_is_member:
            raise ValueError(f"the bot is not a member of chat {chat.id}")
        old = self.bot_member_dict(chat)
        if chat.bot_is_admin if admin is None else admin:
            promoted = not chat.bot_is_admin  # a fresh promotion grants everything by default
            chat.bot_status = "administrator"
            chat.bot_can_pin = promoted or chat.bot_can_pin if can_pin is None else can_pin
            chat.bot_can_manage_topics = (
                promoted or chat.bot_can_manage_topics
                if can_manage_topics is None
                else can_manage_topics
            )
        else:
            chat.bot_status = "member"
            chat.bot_can_pin = chat.bot_can_manage_topics = False
        if self.bot_member_dict(chat) != old:
            self.emit_my_chat_member(chat, self.actor_for(chat, by), old)
        self._changes_signal.fire()

    async def remove_bot(self, group: ChatRef, by: EmuUser | None = None) -> None:
        """A user kicks the bot: ``my_chat_member`` (kicked) + ``left_chat_member``.

        Afterwards every call into the group answers 403 "bot was kicked".
        """
        chat = self._group(group)
        actor = self.actor_for(chat, by)
        old = self.bot_member_dict(chat)
        chat.bot_status = "kicked"
        chat.bot_can_pin = chat.bot_can_manage_topics = False
        self.emit_my_chat_member(chat, actor, old)
        message = self.new_message(chat, actor, "service")
        message.service = {
            "left_chat_participant": self.bot_user_dict(),
            "left_chat_member": self.bot_user_dict(),
        }
        self._enqueue("message", {"message": self.message_to_dict(message)})
        self._changes_signal.fire()

    def block_bot(self, user: UserRef) -> None:
        """The user blocks the bot: sends to them answer 403; emits ``my_chat_member``."""
        person = self.user(user)
        if person.blocked:
            return
        chat = self.private_chat(person)
        old = self.bot_member_dict(chat)
        person.blocked = True
        self.emit_my_chat_member(chat, person, old)
        self._changes_signal.fire()

    def unblock_bot(self, user: UserRef) -> None:
        """The user restarts the bot after blocking it; emits ``my_chat_member``."""
        person = self.user(user)
        if not person.blocked:
            return
        chat = self.private_chat(person)
        old = self.bot_member_dict(chat)
        person.blocked = False
        self.emit_my_chat_member(chat, person, old)
        self._changes_signal.fire()

    async def migrate_to_supergroup(self, group: ChatRef) -> int:
        """Upgrade a basic group to a supergroup; returns the new chat id.

        Emits ``migrate_to_chat_id`` (old chat) and ``migrate_from_chat_id``
        (new chat) service messages.  Calls to the old id then answer
        400 "group chat was upgraded to a supergroup chat" with
        ``parameters.migrate_to_chat_id``.
        """
        old_chat = self._group(group)
        if old_chat.type != "group":
            raise ValueError(f"chat {old_chat.id} is not a basic group")
        new_chat = self.add_group(old_chat.title or "", supergroup=True, username=old_chat.username)
        new_chat.members = dict(old_chat.members)
        new_chat.owner_id = old_chat.owner_id
        new_chat.admin_ids = set(old_chat.admin_ids)
        new_chat.bot_status = old_chat.bot_status
        new_chat.bot_can_pin = old_chat.bot_can_pin
        new_chat.bot_can_manage_topics = old_chat.bot_can_manage_topics
        old_chat.migrated_to_chat_id = new_chat.id
        new_chat.migrated_from_chat_id = old_chat.id
        actor = self.actor_for(old_chat, None)
        to_message = self.new_message(old_chat, actor, "service")
        to_message.service = {"migrate_to_chat_id": new_chat.id}
        from_message = self.new_message(new_chat, actor, "service")
        from_message.service = {"migrate_from_chat_id": old_chat.id}
        if old_chat.bot_is_member:
            self._enqueue("message", {"message": self.message_to_dict(to_message)})
            self._enqueue("message", {"message": self.message_to_dict(from_message)})
        self._changes_signal.fire()
        return new_chat.id

    def create_topic(
        self,
        group: ChatRef,
        name: str,
        by: EmuUser | None = None,
        icon_color: int = TOPIC_ICON_COLORS[0],
    ) -> int:
        """A user creates a forum topic; emits ``forum_topic_created``; returns its thread id."""
        chat = self._group(group)
        if not chat.is_forum:
            raise ValueError(f"chat {chat.id} is not a forum")
        actor = self.actor_for(chat, by)
        topic = self.open_topic(chat, name, icon_color, None, creator=actor)
        self._changes_signal.fire()
        return topic.thread_id

    def open_topic(
        self,
        chat: EmuChat,
        name: str,
        icon_color: int,
        icon_custom_emoji_id: str | None,
        *,
        creator: EmuUser | None,
    ) -> EmuTopic:
        """Create a topic and its ``forum_topic_created`` message (``creator=None``: the bot).

        The topic's thread id is the id of that service message, as in Telegram.
        """
        created: dict[str, Any] = {"name": name, "icon_color": icon_color}
        if icon_custom_emoji_id:
            created["icon_custom_emoji_id"] = icon_custom_emoji_id
        thread_id = chat.next_message_id
        message = self.new_message(
            chat, creator, "service", thread_id=thread_id, service={"forum_topic_created": created}
        )
        topic = EmuTopic(
            message.message_id,
            name,
            icon_color,
            icon_custom_emoji_id,
            created_by_bot=creator is None,
        )
        chat.topics[topic.thread_id] = topic
        if creator is not None:
            self._deliver(chat, message)
        return topic

    # ------------------------------------------------------------------ inputs

    def send_text(
        self,
        user: EmuUser,
        text: str,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> EmuMessage:
        """The user sends ``text`` (privately when ``chat`` is ``None``).

        Commands (``/start``, ``/cmd@bot``) get ``bot_command`` entities.
        Returns the user's message; the bot sees it via ``getUpdates`` unless
        group privacy mode hides it.
        """
        target, reply_id, thread = self._user_target(user, chat, reply_to, thread_id)
        message = self.new_message(
            target, user, "text", text=text, reply_to=reply_id, thread_id=thread
        )
        message.entities = command_entities(text)
        self._deliver(target, message)
        self._changes_signal.fire()
        return message

    def send_photo(
        self,
        user: EmuUser,
        caption: str | None = None,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
        data: bytes | None = None,
    ) -> EmuMessage:
        """The user sends a photo (``data`` defaults to a tiny JPEG); getFile can fetch it."""
        target, reply_id, thread = self._user_target(user, chat, reply_to, thread_id)
        content = _FAKE_JPEG if data is None else data
        thumb = self.register_file("photo", content, width=90, height=68)
        full = self.register_file("photo", content, width=1280, height=960)
        message = self.new_message(
            target, user, "photo", text=caption or "", reply_to=reply_id, thread_id=thread
        )
        message.photo = content
        message.file_id = full.file_id
        message.file_unique_id = full.file_unique_id
        message.media = [photo_size_dict(thumb), photo_size_dict(full)]
        message.entities = command_entities(caption or "")
        self._deliver(target, message)
        self._changes_signal.fire()
        return message

    def send_location(
        self,
        user: EmuUser,
        latitude: float,
        longitude: float,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
        horizontal_accuracy: float | None = None,
    ) -> EmuMessage:
        """The user shares a location (as the ``request_location`` keyboard button does)."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("latitude must be in [-90, 90] and longitude in [-180, 180]")
        target, reply_id, thread = self._user_target(user, chat, reply_to, thread_id)
        message = self.new_message(target, user, "location", reply_to=reply_id, thread_id=thread)
        message.location = {"latitude": latitude, "longitude": longitude}
        if horizontal_accuracy is not None:
            message.location["horizontal_accuracy"] = horizontal_accuracy
        self._deliver(target, message)
        self._changes_signal.fire()
        return message

    def edit_text(self, message: EmuMessage, text: str) -> EmuMessage:
        """The user edits one of their text messages; emits ``edited_message``."""
        if message.sender is None or message.kind != "text" or message.deleted:
            raise ValueError("only a user's live text message can be edited this way")
        chat = self.chat(message.chat_id)
        message.text = message.html = text
        message.entities = command_entities(text)
        message.edits += 1
        message.edit_date = int(time.time())
        message.edited_at = time.monotonic()
        self.touch(message)
        self._deliver(chat, message, "edited_message")
        self._changes_signal.fire()
        return message

    def press(self, user: EmuUser, message: EmuMessage, data_or_text: str) -> EmuCallbackQuery:
        """The user taps an inline button of a bot message.

        The button is found by exact ``callback_data`` first, then by exact
        button text; :class:`LookupError` if there is none.  Emits a
        ``callback_query`` update; await ``wait_answered()`` on the result.
        """
        current = self._live_bot_message(message)
        buttons = [button for row in current.buttons for button in row]
        button = next((b for b in buttons if b.callback_data == data_or_text), None)
        if button is None:
            button = next((b for b in buttons if b.text == data_or_text and b.callback_data), None)
        if button is None or button.callback_data is None:
            raise LookupError(
                f"no callback button {data_or_text!r} on {current.describe()}; "
                f"buttons: {[(b.text, b.callback_data or b.url) for b in buttons]}"
            )
        return self._callback(user, current, button.callback_data)

    def inject_callback(self, user: EmuUser, message: EmuMessage, data: str) -> EmuCallbackQuery:
        """Like :meth:`press`, but with any ``data`` (a forged or stale button).

        The message must still be a live bot message; its keyboard is not consulted.
        """
        return self._callback(user, self._live_bot_message(message), data)

    def _live_bot_message(self, message: EmuMessage) -> EmuMessage:
        chat = self.chat(message.chat_id)
        current = chat.messages.get(message.message_id)
        if current is None or current.deleted or current.sender is not None:
            raise LookupError(
                f"message #{message.message_id} in chat {chat.id} is not a live bot message"
            )
        return current

    def _callback(self, user: EmuUser, message: EmuMessage, data: str) -> EmuCallbackQuery:
        chat = self.chat(message.chat_id)
        if chat.type == "private":
            if chat.user is not user:
                raise ValueError("only the chat's user can press buttons in a private chat")
            user.started = True
        else:
            chat.members.setdefault(user.id, user)
        query = EmuCallbackQuery(
            id=str(4_200_000_000_000 + self._next_callback),
            user=user,
            message=message,
            data=data,
            chat_instance=str(abs(chat.id) * 7 + 3_000_000_000_000_000),
            created_at=time.monotonic(),
        )
        self._next_callback += 1
        self.callback_queries[query.id] = query
        self._enqueue(
            "callback_query",
            {
                "callback_query": {
                    "id": query.id,
                    "from": user.to_dict(),
                    "message": self.message_to_dict(message),
                    "chat_instance": query.chat_instance,
                    "data": data,
                }
            },
        )
        self._changes_signal.fire()
        return query

    def inject_update(self, raw: dict[str, Any]) -> int:
        """Enqueue any update JSON as is (``update_id`` is assigned); returns the id."""
        payload = {key: value for key, value in raw.items() if key != "update_id"}
        if len(payload) != 1:
            raise ValueError("an update must have exactly one field besides update_id")
        kind = next(iter(payload))
        update_id = self._enqueue(kind, payload)
        self._changes_signal.fire()
        return update_id

    # ------------------------------------------------------------------ outputs

    def user(self, user: UserRef) -> EmuUser:
        if isinstance(user, EmuUser):
            return user
        try:
            return self.users[user]
        except KeyError:
            raise LookupError(f"no user {user}") from None

    def chat(self, chat: ChatRef) -> EmuChat:
        """The chat object for an id (a user id means the private chat)."""
        if isinstance(chat, EmuChat):
            return chat
        found = self.chats.get(chat)
        if found is None and chat in self.users:
            return self.private_chat(self.users[chat])
        if found is None:
            raise LookupError(f"no chat {chat}")
        return found

    def messages(self, chat: ChatRef, thread_id: Any = ANY_THREAD) -> list[EmuMessage]:
        """Messages the bot sent to ``chat`` that still exist, oldest first.

        ``thread_id``: a topic id, ``None`` for the General topic / no thread,
        or :data:`ANY_THREAD` (default) for all.
        """
        found = self.chats.get(chat.id if isinstance(chat, EmuChat) else chat)
        if found is None:
            return []
        return [
            message
            for message in found.messages.values()
            if message.sender is None
            and not message.deleted
            and message.kind != "service"
            and (thread_id is ANY_THREAD or message.thread_id == thread_id)
        ]

    def all_messages(self) -> list[EmuMessage]:
        """Every existing bot message in every chat, in send order."""
        found = [message for chat in self.chats.values() for message in self.messages(chat)]
        found.sort(key=lambda message: message.sent_at)
        return found

    async def wait_for_message(
        self,
        chat: ChatRef,
        predicate: Callable[[EmuMessage], bool] | None = None,
        timeout: float = 5.0,
        thread_id: Any = ANY_THREAD,
        *,
        new_only: bool = False,
    ) -> EmuMessage:
        """Wait for the first bot message in ``chat`` satisfying ``predicate``.

        Existing messages count (oldest first) unless ``new_only`` is set, in
        which case only messages sent or edited after this call match.  Wakes
        on every change, never polls.  Raises :class:`TimeoutError` listing
        the chat's messages.
        """
        chat_id = chat.id if isinstance(chat, EmuChat) else chat
        since = self._seq

        def find() -> EmuMessage | None:
            for message in self.messages(chat_id, thread_id):
                if new_only and message.seq <= since:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        found: list[EmuMessage] = []

        def check() -> bool:
            message = find()
            if message is not None:
                found.append(message)
            return message is not None

        try:
            await self.wait_until(check, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no matching bot message in chat {chat_id} within {timeout}s; "
                f"the chat has:\n{self.dump_chat(chat_id)}"
            ) from None
        return found[0]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` is true; re-checked after every API call
        and every control action.  Raises :class:`TimeoutError`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changes_signal.waiter()
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                if condition():
                    return
                raise TimeoutError(f"condition not met within {timeout}s") from None

    def dump_chat(self, chat: ChatRef) -> str:
        """Every message of a chat (users' too), one per line, for diagnostics."""
        found = self.chats.get(chat.id if isinstance(chat, EmuChat) else chat)
        if found is None:
            return "  (unknown chat)"
        if not found.messages:
            return "  (no messages)"
        return "\n".join("  " + message.describe() for message in found.messages.values())

    @property
    def confirmed_offset(self) -> int:
        """The highest ``offset`` the bot has confirmed via ``getUpdates``."""
        return self._confirmed_offset

    @property
    def waiting_polls(self) -> int:
        """How many ``getUpdates`` long polls are waiting right now."""
        return self._waiting_polls

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet (delivered or not)."""
        return [{"update_id": update_id, **payload} for update_id, _, payload in self._updates]

    # ------------------------------------------------------------------ internals

    def _group(self, group: ChatRef) -> EmuChat:
        chat = self.chat(group)
        if not chat.is_group:
            raise ValueError(f"chat {chat.id} is not a group")
        if chat.migrated_to_chat_id is not None:
            raise ValueError(f"chat {chat.id} was migrated to {chat.migrated_to_chat_id}")
        return chat

    def actor_for(self, chat: EmuChat, by: EmuUser | None) -> EmuUser:
        if by is not None:
            chat.members.setdefault(by.id, by)
            return by
        if chat.owner_id is not None:
            return chat.members.get(chat.owner_id) or self.users[chat.owner_id]
        if chat.members:
            return next(iter(chat.members.values()))
        raise ValueError(f"chat {chat.id} has no members; pass by=<user>")

    def private_chat(self, user: EmuUser) -> EmuChat:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = EmuChat(user.id, "private", user=user, members={user.id: user})
            self.chats[user.id] = chat
        return chat

    def _user_target(
        self,
        user: EmuUser,
        chat: ChatRef | None,
        reply_to: MessageRef | None,
        thread_id: int | None,
    ) -> tuple[EmuChat, int | None, int | None]:
        if user.id not in self.users:
            raise LookupError(f"user {user.id} was not created by this emulator")
        if chat is None:
            target = self.private_chat(user)
            user.started = True
            if user.blocked:
                self.unblock_bot(user)
        else:
            target = self.chat(chat)
            if target.type == "private":
                if target.user is not user:
                    raise ValueError("a user can only write into their own private chat")
                user.started = True
                if user.blocked:
                    self.unblock_bot(user)
            else:
                if target.migrated_to_chat_id is not None:
                    raise ValueError(
                        f"chat {target.id} was migrated to {target.migrated_to_chat_id}"
                    )
                target.members.setdefault(user.id, user)
        reply_id: int | None = None
        if reply_to is not None:
            reply_id = reply_to.message_id if isinstance(reply_to, EmuMessage) else reply_to
            replied = target.messages.get(reply_id)
            if replied is None or replied.deleted:
                raise LookupError(f"no message #{reply_id} in chat {target.id}")
            if thread_id is None and target.is_forum:
                thread_id = replied.thread_id
        if not target.is_forum:
            thread_id = None
        elif thread_id is not None and thread_id not in target.topics:
            raise LookupError(f"no topic {thread_id} in chat {target.id}")
        return target, reply_id, thread_id

    def new_message(
        self,
        chat: EmuChat,
        sender: EmuUser | None,
        kind: MessageKind,
        *,
        text: str = "",
        reply_to: int | None = None,
        thread_id: int | None = None,
        service: dict[str, Any] | None = None,
        html: str | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> EmuMessage:
        """A message in `chat`, stored (`sender` None: the bot's); `html` defaults to `text`."""
        message = EmuMessage(
            message_id=chat.allocate_message_id(),
            chat_id=chat.id,
            date=int(time.time()),
            sender=sender,
            kind=kind,
            thread_id=thread_id,
            text=text,
            html=text if html is None else html,
            entities=entities or [],
            reply_to_message_id=reply_to,
            service=service,
            sent_at=time.monotonic(),
        )
        chat.messages[message.message_id] = message
        self.touch(message)
        return message

    def touch(self, message: EmuMessage) -> None:
        """Mark a message as changed (for ``wait_for_message(new_only=True)``)."""
        self._seq += 1
        message.seq = self._seq
        if self.listeners and message not in self._touched:
            # told once the call or control step that changes it is done with it (its text,
            # entities and keyboard are set after it is created), in the context of that call
            self._touched.add(message)
            try:
                asyncio.get_running_loop().call_soon(self._tell_touched, message)
            except RuntimeError:  # no event loop: nothing runs between, tell now
                self._tell_touched(message)

    def _tell_touched(self, message: EmuMessage) -> None:
        self._touched.discard(message)
        self.emit("message", message)

    def emit(self, kind: str, subject: Any) -> None:
        """Tell the listeners (see ``listeners``) that `subject` happened."""
        for listener in self.listeners:
            listener(kind, subject)

    def notify(self) -> None:
        """Wake everything waiting in :meth:`wait_until`."""
        self._changes_signal.fire()

    def _deliver(self, chat: EmuChat, message: EmuMessage, kind: str = "message") -> None:
        """Enqueue a user's message for the bot, honouring membership and privacy."""
        if chat.is_group and not (chat.bot_is_member and self._bot_sees(chat, message)):
            return
        self._enqueue(kind, {kind: self.message_to_dict(message)})

    def _bot_sees(self, chat: EmuChat, message: EmuMessage) -> bool:
        if not self.privacy_mode or chat.bot_is_admin or message.kind == "service":
            return True
        if message.reply_to_message_id is not None:
            replied = chat.messages.get(message.reply_to_message_id)
            if replied is not None and replied.sender is None:
                return True
        return self._is_command_for_bot(message.text)

    def _is_command_for_bot(self, text: str) -> bool:
        if not text.startswith("/"):
            return False
        match = _BOT_COMMAND.match(text)
        if match is None:
            return False
        _, _, addressee = match.group().partition("@")
        return not addressee or addressee.lower() == self.bot_username.lower()

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append((update_id, kind, payload))
        self._updates_signal.fire()
        if self.listeners:
            self.emit("update", (update_id, {"update_id": update_id, **payload}))
        return update_id

    def confirm_updates(self, offset: int | None) -> None:
        """Apply ``getUpdates``' ``offset``: forget every update with a smaller id."""
        if offset is None or offset == 0:
            return
        updates = self._updates
        if offset > 0:
            while updates and updates[0][0] < offset:
                updates.popleft()
            self._confirmed_offset = max(self._confirmed_offset, offset)
        else:
            keep = -offset
            while len(updates) > keep:
                updates.popleft()
            if updates:
                self._confirmed_offset = max(self._confirmed_offset, updates[0][0])

    async def poll_updates(
        self, offset: int | None, limit: int, timeout: float
    ) -> list[dict[str, Any]] | None:
        """The ``getUpdates`` long poll.

        Confirms ``offset``, then returns as soon as allowed updates are queued
        or ``timeout`` seconds pass.  Like Telegram, a newer poll terminates a
        waiting one: the older call then returns ``None`` (409 Conflict).
        """
        self.confirm_updates(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_signal.fire()  # wake (and thereby terminate) an older poll
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._poll_generation != generation or self.webhook is not None:
                return None
            batch = self.take_updates(limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            event = self._updates_signal.waiter()
            self._waiting_polls += 1
            self._changes_signal.fire()
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass
            finally:
                self._waiting_polls -= 1

    # ------------------------------------------------------------------ webhook

    def set_webhook(self, config: WebhookConfig) -> None:
        """Post updates to ``config.url`` from now on (``setWebhook``)."""
        self.webhook = config
        self._poll_generation += 1  # a waiting getUpdates ends (with 409)
        self._updates_signal.fire()
        if not self._closing:
            self._webhook_delivery.start()

    async def delete_webhook(self) -> None:
        """Stop posting updates; they queue for getUpdates again (``deleteWebhook``)."""
        self.webhook = None
        await self._webhook_delivery.stop()

    def deliver_twice(self, update_id: int) -> None:
        """Test hook: after the bot accepts update ``update_id``, post it once more, as
        Telegram does when it did not see the bot's answer (a replayed delivery)."""
        self._webhook_delivery.replay.add(update_id)

    def drop_pending_updates(self) -> None:
        """Forget every queued update (``deleteWebhook(drop_pending_updates=True)``)."""
        if self._updates:
            self.confirm_updates(self._updates[-1][0] + 1)

    def close(self) -> None:
        """Release every waiting long poll (used when the server stops)."""
        self._closing = True
        self._updates_signal.fire()
        self._changes_signal.fire()

    def take_updates(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` unconfirmed updates of the allowed types (they stay queued)."""
        batch: list[dict[str, Any]] = []
        allowed = self._allowed_updates
        for update_id, kind, payload in self._updates:
            if kind in allowed:
                batch.append({"update_id": update_id, **payload})
                if len(batch) >= limit:
                    break
        return batch

    def set_allowed_updates(self, allowed: Sequence[str] | None) -> None:
        if allowed is None:
            return
        self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED_UPDATES

    def register_file(
        self,
        kind: str,
        data: bytes | None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> EmuFile:
        """Store a file so ``getFile`` and the file URL can serve it."""
        number = self._next_file
        self._next_file += 1
        prefix = {"photo": "AgACAgIAAxk", "document": "BQACAgIAAxk"}.get(kind, "CAACAgIAAxk")
        extension = ".jpg" if kind == "photo" else ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1][:16]
        folder = "photos" if kind == "photo" else "documents"
        emu_file = EmuFile(
            file_id=f"{prefix}Emu{number:08d}",
            file_unique_id=f"AQADEmu{number:08d}",
            file_path=f"{folder}/file_{number}{extension}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self.files[emu_file.file_id] = emu_file
        self._files_by_path[emu_file.file_path] = emu_file
        return emu_file

    def file_by_path(self, path: str) -> EmuFile | None:
        return self._files_by_path.get(path)

    # ------------------------------------------------------------------ JSON

    def message_to_dict(self, message: EmuMessage, *, with_reply: bool = True) -> dict[str, Any]:
        """The Bot API ``Message`` object for an emulated message."""
        chat = self.chats[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_user_dict() if message.sender is None else message.sender.to_dict(),
            "chat": chat.to_dict(),
            "date": message.date,
        }
        if message.thread_id is not None and chat.is_forum:
            data["message_thread_id"] = message.thread_id
            data["is_topic_message"] = True
        if message.forward_origin is not None:
            data["forward_origin"] = message.forward_origin
        if with_reply:
            replied: EmuMessage | None = None
            if message.reply_to_message_id is not None:
                replied = chat.messages.get(message.reply_to_message_id)
            elif message.thread_id is not None and chat.is_forum and message.kind != "service":
                # Telegram makes every topic message a reply to the topic's first message.
                replied = chat.messages.get(message.thread_id)
            if replied is not None and not replied.deleted:
                data["reply_to_message"] = self.message_to_dict(replied, with_reply=False)
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.kind == "text":
            data["text"] = message.text
            if message.entities:
                data["entities"] = message.entities
        elif message.kind in ("photo", "document"):
            data[message.kind] = message.media
            if message.text:
                data["caption"] = message.text
                if message.entities:
                    data["caption_entities"] = message.entities
        elif message.kind == "location" and message.location is not None:
            data["location"] = dict(message.location)
        elif message.service:
            data.update(message.service)
        if message.buttons and message.reply_markup is not None:
            data["reply_markup"] = {"inline_keyboard": message.reply_markup["inline_keyboard"]}
        return data

    def bot_member_dict(self, chat: EmuChat) -> dict[str, Any]:
        """The bot's ``ChatMember`` object in a chat."""
        bot = self.bot_user_dict()
        if chat.type == "private":
            assert chat.user is not None
            if chat.user.blocked:
                return {"status": "kicked", "user": bot, "until_date": 0}
            return {"status": "member", "user": bot}
        if chat.bot_status == "administrator":
            return admin_member_dict(
                bot,
                can_pin=chat.bot_can_pin,
                can_manage_topics=chat.bot_can_manage_topics,
                forum=chat.is_forum,
            )
        if chat.bot_status == "member":
            return {"status": "member", "user": bot}
        if chat.bot_status == "kicked":
            return {"status": "kicked", "user": bot, "until_date": 0}
        return {"status": "left", "user": bot}

    def emit_my_chat_member(self, chat: EmuChat, actor: EmuUser, old: dict[str, Any]) -> None:
        self._enqueue(
            "my_chat_member",
            {
                "my_chat_member": {
                    "chat": chat.to_dict(),
                    "from": actor.to_dict(),
                    "date": int(time.time()),
                    "old_chat_member": old,
                    "new_chat_member": self.bot_member_dict(chat),
                }
            },
        )

    def answer_callback(self, query: EmuCallbackQuery, answer: CallbackAnswer) -> None:
        query.set_answer(answer)
        if self.listeners:
            self.emit("answer", query)


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities for every command in ``text`` (UTF-16 offsets)."""
    if "/" not in text:
        return []
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in _BOT_COMMAND.finditer(text)
    ]


def photo_size_dict(emu_file: EmuFile) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": emu_file.file_id,
        "file_unique_id": emu_file.file_unique_id,
        "width": emu_file.width or 1280,
        "height": emu_file.height or 960,
    }
    if emu_file.file_size is not None:
        data["file_size"] = emu_file.file_size
    return data


def document_dict(emu_file: EmuFile) -> dict[str, Any]:
    data: dict[str, Any] = {"file_id": emu_file.file_id, "file_unique_id": emu_file.file_unique_id}
    if emu_file.file_name:
        data["file_name"] = emu_file.file_name
    if emu_file.mime_type:
        data["mime_type"] = emu_file.mime_type
    if emu_file.file_size is not None:
        data["file_size"] = emu_file.file_size
    return data


def admin_member_dict(
    user: dict[str, Any], *, can_pin: bool, can_manage_topics: bool, forum: bool
) -> dict[str, Any]:
    """A ``ChatMemberAdministrator`` object."""
    data: dict[str, Any] = {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": True,
        "can_restrict_members": True,
        "can_promote_members": False,
        "can_change_info": True,
        "can_invite_users": True,
        "can_post_stories": False,
        "can_edit_stories": False,
        "can_delete_stories": False,
        "can_pin_messages": can_pin,
    }
    if forum:
        data["can_manage_topics"] = can_manage_topics
    return data
