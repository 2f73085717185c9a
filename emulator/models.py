"""Plain data objects of the emulated Telegram world.

Everything here is in-memory state owned by :class:`~emulator.BotAPIEmulator`;
tests read these objects, and create them only through the emulator's control
API (``add_user``, ``add_group``, ``send_text``, ...).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ANY_THREAD",
    "Button",
    "CallRecord",
    "CallbackAnswer",
    "ChatType",
    "EmuCallbackQuery",
    "EmuChat",
    "EmuFile",
    "EmuMessage",
    "EmuStats",
    "EmuTopic",
    "EmuUser",
    "Faults",
    "MessageKind",
    "RequestLog",
]

ChatType = Literal["private", "group", "supergroup"]
MessageKind = Literal["text", "photo", "document", "service", "location"]
BotStatus = Literal["none", "member", "administrator", "left", "kicked"]


class _AnyThread:
    """Sentinel: do not filter by topic / thread."""

    _instance: _AnyThread | None = None

    def __new__(cls) -> _AnyThread:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY_THREAD"


#: Pass as ``thread_id`` to match messages in any topic (the default).
#: ``thread_id=None`` means "General topic / no thread".
ANY_THREAD: Any = _AnyThread()


@dataclass(eq=False)
class EmuUser:
    """A human Telegram account played by a test."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    #: The user has written to the bot privately (the bot may now message them).
    started: bool = False
    #: The user blocked the bot (sends to them fail with 403).
    blocked: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass(eq=False)
class EmuTopic:
    """A forum topic; ``thread_id`` is the id of its ``forum_topic_created`` message."""

    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    created_by_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass(eq=False)
class EmuChat:
    """A private chat, basic group or supergroup, with the bot's membership in it."""

    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    #: For private chats: the user on the other side.
    user: EmuUser | None = None
    members: dict[int, EmuUser] = field(default_factory=dict)
    owner_id: int | None = None
    admin_ids: set[int] = field(default_factory=set)
    #: "none" = the bot has never been in the group (it cannot even see it).
    bot_status: BotStatus = "none"
    bot_can_pin: bool = False
    bot_can_manage_topics: bool = False
    migrated_to_chat_id: int | None = None
    migrated_from_chat_id: int | None = None
    topics: dict[int, EmuTopic] = field(default_factory=dict)
    #: Every message of the chat (user's, bot's, service), by id, in send order.
    messages: dict[int, EmuMessage] = field(default_factory=dict)
    next_message_id: int = 1

    @property
    def is_group(self) -> bool:
        return self.type != "private"

    @property
    def bot_is_member(self) -> bool:
        return self.bot_status in ("member", "administrator")

    @property
    def bot_is_admin(self) -> bool:
        return self.bot_status == "administrator"

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def to_dict(self) -> dict[str, Any]:
        """The ``Chat`` object embedded in messages and updates."""
        if self.type == "private":
            assert self.user is not None
            data = {"id": self.id, "type": "private", "first_name": self.user.first_name}
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
            return data
        data = {"id": self.id, "type": self.type, "title": self.title or ""}
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass(frozen=True, slots=True)
class Button:
    """One inline keyboard button (``callback_data`` or ``url`` or neither)."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(eq=False)
class EmuMessage:
    """A message in an emulated chat, sent by the bot (``sender is None``) or a user."""

    message_id: int
    chat_id: int
    date: int
    #: ``None`` when the bot sent it.
    sender: EmuUser | None = None
    kind: MessageKind = "text"
    #: Forum topic id (``None`` = General topic / not a forum).
    thread_id: int | None = None
    #: Plain text after parsing (the caption for media).
    text: str = ""
    #: The raw text/caption exactly as sent.
    html: str = ""
    entities: list[dict[str, Any]] = field(default_factory=list)
    #: Inline keyboard rows (empty when there is none).
    buttons: list[list[Button]] = field(default_factory=list)
    #: The markup as sent (inline keyboard, reply keyboard, force_reply or remove_keyboard).
    reply_markup: dict[str, Any] | None = None
    force_reply: bool = False
    selective: bool = False
    input_field_placeholder: str | None = None
    reply_to_message_id: int | None = None
    pinned: bool = False
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False
    file_id: str | None = None
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    #: Bytes of a document (uploaded or known file), else ``None``.
    document: bytes | None = None
    #: Bytes of a photo (uploaded or known file), else ``None``.
    photo: bytes | None = None
    #: The ``photo`` (list of PhotoSize) or ``document`` JSON of media messages.
    media: Any = field(default=None, repr=False)
    #: ``{"latitude", "longitude"[, "horizontal_accuracy"]}`` of a location message.
    location: dict[str, Any] | None = None
    #: ``forward_origin`` of forwarded messages.
    forward_origin: dict[str, Any] | None = None
    #: Extra fields of service messages, e.g. ``{"new_chat_members": [...]}``.
    service: dict[str, Any] | None = None
    #: ``time.monotonic()`` when it was sent / last edited.
    sent_at: float = 0.0
    edited_at: float | None = None
    #: Change counter used by ``wait_for_message(new_only=True)``.
    seq: int = 0

    @property
    def from_bot(self) -> bool:
        return self.sender is None

    @property
    def inline_keyboard(self) -> bool:
        return bool(self.buttons)

    @property
    def button_texts(self) -> list[list[str]]:
        return [[button.text for button in row] for row in self.buttons]

    @property
    def document_bytes(self) -> bytes | None:
        """Alias of :attr:`document`."""
        return self.document

    def describe(self) -> str:
        """One line for diagnostics."""
        who = "bot" if self.sender is None else f"user {self.sender.id}"
        topic = f" [topic {self.thread_id}]" if self.thread_id is not None else ""
        body = self.text if self.kind == "text" else f"<{self.kind}> {self.text}"
        if self.kind == "service" and self.service:
            body = f"<service {','.join(self.service)}>"
        flags = ""
        if self.buttons:
            flags += " buttons=" + repr(self.button_texts)
        if self.force_reply:
            flags += " force_reply"
        if self.deleted:
            flags += " (deleted)"
        if self.edits:
            flags += f" (edited x{self.edits})"
        return f"#{self.message_id} {who}{topic}: {body!r}{flags}"


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """What the bot passed to ``answerCallbackQuery``."""

    text: str | None
    show_alert: bool
    #: ``time.monotonic()`` of the answer.
    at: float
    url: str | None = None
    cache_time: int | None = None


@dataclass(eq=False)
class EmuCallbackQuery:
    """A button tap; await :meth:`wait_answered` for the bot's answer."""

    id: str
    user: EmuUser
    message: EmuMessage
    data: str
    chat_instance: str
    created_at: float
    answer: CallbackAnswer | None = None
    _answered: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    @property
    def answered_at(self) -> float | None:
        return None if self.answer is None else self.answer.at

    @property
    def answered(self) -> bool:
        return self.answer is not None

    def set_answer(self, answer: CallbackAnswer) -> None:
        """Record the bot's answer (called by the emulator) and wake waiters."""
        self.answer = answer
        self._answered.set()

    async def wait_answered(self, timeout: float = 5.0) -> CallbackAnswer:
        """Wait until the bot answers this query; raises :class:`TimeoutError`."""
        if self.answer is None:
            try:
                async with asyncio.timeout(timeout):
                    await self._answered.wait()
            except TimeoutError:
                raise TimeoutError(
                    f"callback query {self.id} (data={self.data!r}) on message "
                    f"#{self.message.message_id} in chat {self.message.chat_id} "
                    f"was not answered within {timeout}s"
                ) from None
        assert self.answer is not None
        return self.answer


@dataclass(eq=False)
class EmuFile:
    """A file the emulator can serve through ``getFile`` and the file URL."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def file_size(self) -> int | None:
        return None if self.data is None else len(self.data)


@dataclass(frozen=True, slots=True)
class RequestLog:
    """One Bot API call the bot made."""

    method: str
    chat_id: int | str | None
    status_code: int
    error_description: str | None
    #: ``time.monotonic()`` when the call finished.
    at: float


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One Bot API call with its parameters, as told to listeners (the playground's inspector).

    Messages sent or changed while the call ran name it: ``EmulatorState.current_call()``."""

    id: int
    method: str
    chat_id: int | str | None
    params: dict[str, Any]
    status_code: int
    error_description: str | None
    #: The update the bot was handling when it made the call (its ``X-Gridhorn-Update``
    #: header), ``None`` for calls made outside an update (the outbox, the scheduler).
    update_id: int | None


@dataclass
class EmuStats:
    """Counters over every Bot API call."""

    total: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    #: All 429 answers (flood limits and injected faults).
    too_many_requests: int = 0
    #: 429 answers caused by the flood limits only.
    flood_rejections: int = 0
    #: 5xx answers (injected faults and emulator bugs).
    server_errors: int = 0
    #: Calls failed on purpose by :class:`Faults`.
    faults_injected: int = 0
    #: Webhook POSTs of updates made (retries and replayed deliveries included).
    webhook_attempts: int = 0
    #: Webhook POSTs answered with a non-2xx status or failed to connect.
    webhook_failures: int = 0
    #: Updates the bot's webhook accepted (each counted once).
    webhook_delivered: int = 0


@dataclass(frozen=True)
class Faults:
    """Fail a seeded random fraction of calls before they do anything.

    Attributes:
        rate: probability (0..1) that a matching call fails.
        kinds: failure kinds to pick from: ``"429"`` (retry_after 1),
            ``"500"`` (Internal Server Error), ``"502"`` (Bad Gateway).
        seed: seed for the emulator's private RNG (``None`` = nondeterministic).
        methods: Bot API method names to affect (case-insensitive);
            ``None`` = every method except ``getUpdates``.
    """

    rate: float
    kinds: tuple[str, ...] = ("429", "500", "502")
    seed: int | None = None
    methods: frozenset[str] | None = None

    def __init__(
        self,
        rate: float,
        kinds: Iterable[str] = ("429", "500", "502"),
        seed: int | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("Faults.rate must be between 0 and 1")
        kinds = tuple(str(kind) for kind in kinds)
        unknown = set(kinds) - {"429", "500", "502"}
        if unknown or not kinds:
            raise ValueError(f"Faults.kinds must be a non-empty subset of 429/500/502, got {kinds}")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(
            self, "methods", None if methods is None else frozenset(m.lower() for m in methods)
        )

    def applies_to(self, method: str) -> bool:
        if self.methods is None:
            return method.lower() != "getupdates"
        return method.lower() in self.methods
