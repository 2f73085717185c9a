"""The emulated Bot API methods.

Each handler takes the request's :class:`~emulator.params.Params`, validates
them the way Telegram does (raising :class:`~emulator.errors.ApiError`), changes
the :class:`~emulator.state.EmulatorState` and returns the ``result`` JSON.
Only ``getUpdates``, ``setWebhook`` and ``deleteWebhook`` await (the long poll; stopping the
webhook's deliveries); everything else is synchronous, so a handler's checks and its effects
are atomic with respect to other requests.
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import ApiError, bad_request, forbidden, too_many_requests
from .html import HtmlParseError, parse_html, strip_formatted, utf16_len
from .models import Button, CallbackAnswer, EmuChat, EmuFile, EmuMessage, EmuTopic, MessageKind
from .params import Params, UploadedFile
from .state import (
    TOPIC_ICON_COLORS,
    EmulatorState,
    admin_member_dict,
    document_dict,
    photo_size_dict,
)
from .webhook import WebhookConfig

__all__ = ["BotApi"]

Handler = Callable[[Params], Any]
MediaKind = Literal["photo", "document"]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_TEXT = 200
MAX_LONG_POLL = 50.0

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note",
        "upload_video_note",
    }
)  # fmt: skip
_BUTTON_ACTIONS = frozenset(
    {
        "callback_data", "url", "web_app", "login_url", "switch_inline_query",
        "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
        "callback_game", "pay",
    }
)  # fmt: skip
_SCOPES = frozenset(
    {
        "default", "all_private_chats", "all_group_chats", "all_chat_administrators",
        "chat", "chat_administrators", "chat_member",
    }
)  # fmt: skip
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_URL = re.compile(r"^(https?|tg|ton)://\S+$", re.IGNORECASE)


@dataclass
class _Markup:
    """A validated ``reply_markup``."""

    raw: dict[str, Any] | None = None
    buttons: list[list[Button]] = field(default_factory=list)
    force_reply: bool = False
    selective: bool = False
    placeholder: str | None = None

    @property
    def inline_rows(self) -> list[Any] | None:
        if not self.buttons or self.raw is None:
            return None
        rows: list[Any] = self.raw["inline_keyboard"]
        return rows


class BotApi:
    """Bot API method handlers bound to one :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "logOut": self.trivial,
            "close": self.trivial,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMyName": self.set_profile("name", 64),
            "getMyName": self.get_profile("name"),
            "setMyDescription": self.set_profile("description", 512),
            "getMyDescription": self.get_profile("description"),
            "setMyShortDescription": self.set_profile("short_description", 120),
            "getMyShortDescription": self.get_profile("short_description"),
            "sendMessage": self.send_message,
            "sendPhoto": self.send_photo,
            "sendDocument": self.send_document,
            "copyMessage": self.copy_message,
            "forwardMessage": self.forward_message,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "pinChatMessage": self.pin_chat_message,
            "unpinChatMessage": self.unpin_chat_message,
            "unpinAllChatMessages": self.unpin_all_chat_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "createForumTopic": self.create_forum_topic,
            "editForumTopic": self.edit_forum_topic,
            "closeForumTopic": self.close_forum_topic,
            "reopenForumTopic": self.reopen_forum_topic,
            "getChat": self.get_chat,
            "getChatMember": self.get_chat_member,
            "getChatAdministrators": self.get_chat_administrators,
            "getChatMemberCount": self.get_chat_member_count,
            "leaveChat": self.leave_chat,
            "sendChatAction": self.send_chat_action,
            "getFile": self.get_file,
        }
        self._table = {name.lower(): (name, handler) for name, handler in handlers.items()}

    def lookup(self, method: str) -> tuple[str, Handler] | None:
        """``(canonical name, handler)`` for a case-insensitive method name."""
        return self._table.get(method.lower())

    # ================================================================== helpers

    def _lookup_chat(self, ref: int | str | None) -> EmuChat:
        st = self.state
        chat: EmuChat | None = None
        if isinstance(ref, str):
            name = ref[1:].lower()
            candidates = [c for c in st.chats.values() if c.username and c.username.lower() == name]
            candidates.sort(key=lambda c: c.migrated_to_chat_id is not None)
            chat = candidates[0] if candidates else None
        elif ref is not None:
            chat = st.chats.get(ref)
            if chat is None and ref in st.users:
                chat = st.private_chat(st.users[ref])
        if chat is None:
            raise bad_request("chat not found")
        return chat

    @staticmethod
    def _group_kind(chat: EmuChat) -> str:
        return "supergroup chat" if chat.type == "supergroup" else "group chat"

    def _readable_chat(self, params: Params, name: str = "chat_id") -> EmuChat:
        """A chat the bot may look at (getChat, getChatMember, deleteMessage...)."""
        return self._check_readable(self._lookup_chat(params.chat_id(name)))

    def _check_readable(self, chat: EmuChat) -> EmuChat:
        if chat.is_group:
            if chat.bot_status == "none":
                raise bad_request("chat not found")
            if chat.bot_status == "kicked":
                raise forbidden(f"bot was kicked from the {self._group_kind(chat)}")
            if chat.bot_status == "left":
                raise forbidden(f"bot is not a member of the {self._group_kind(chat)}")
        return chat

    def _writable_chat(self, params: Params, name: str = "chat_id") -> EmuChat:
        """A chat the bot may post into, or the error Telegram answers."""
        chat = self._lookup_chat(params.chat_id(name))
        if chat.migrated_to_chat_id is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to_chat_id},
            )
        if chat.type == "private":
            assert chat.user is not None
            if chat.user.blocked:
                raise forbidden("bot was blocked by the user")
            if not chat.user.started:
                raise forbidden("bot can't initiate conversation with a user")
            return chat
        return self._check_readable(chat)  # looked up once

    def _flood(self, chat: EmuChat) -> None:
        limiter = self.state.limiter
        if limiter is None:
            return
        retry_after = limiter.try_acquire(chat.id, is_group=chat.is_group)
        if retry_after is not None:
            self.state.stats.flood_rejections += 1
            raise too_many_requests(retry_after)

    def _reply_target(self, chat: EmuChat, params: Params) -> EmuMessage | None:
        message_id: int | None = None
        allow_missing = params.boolean("allow_sending_without_reply")
        reply_parameters = params.structured(
            "reply_parameters", what="reply parameters JSON object"
        )
        if reply_parameters is not None:
            if not isinstance(reply_parameters, dict):
                raise bad_request("can't parse reply parameters JSON object")
            reply_params = Params(reply_parameters)
            message_id = reply_params.integer("message_id")
            allow_missing = reply_params.boolean("allow_sending_without_reply", allow_missing)
            if "chat_id" in reply_params:
                other = self._lookup_chat(reply_params.chat_id())
                if other is not chat:
                    raise bad_request("replies to other chats are not supported by the emulator")
        else:
            message_id = params.integer("reply_to_message_id")
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None or target.deleted:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _thread(self, chat: EmuChat, params: Params, reply_to: EmuMessage | None) -> int | None:
        thread_id = params.integer("message_thread_id")
        if not chat.is_forum:
            return None  # reply threads of ordinary groups are not emulated
        if thread_id is None and reply_to is not None:
            thread_id = reply_to.thread_id
        if thread_id is None:
            return None
        topic = chat.topics.get(thread_id)
        if topic is None:
            raise bad_request("message thread not found")
        if topic.closed and not (chat.bot_is_admin and chat.bot_can_manage_topics):
            raise bad_request("TOPIC_CLOSED")
        return thread_id

    def _format(
        self, text: str, parse_mode: str | None, raw_entities: Any, *, caption: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        """Parse ``text`` like Telegram; returns plain text and entities."""
        entities: list[dict[str, Any]]
        if raw_entities is not None:
            plain, entities = text, self._explicit_entities(text, raw_entities)
        elif parse_mode:
            mode = parse_mode.lower()
            if mode == "html":
                try:
                    parsed = parse_html(text, strict_entities=self.state.strict_html_entities)
                except HtmlParseError as error:
                    raise bad_request(f"can't parse entities: {error}") from None
                plain, entities = parsed.text, self._resolve_mentions(parsed.entities)
            elif mode in ("markdown", "markdownv2"):
                plain, entities = text, []  # not emulated: stored verbatim
            else:
                raise bad_request("unsupported parse_mode")
        else:
            plain, entities = text, []
        plain, entities = strip_formatted(plain, entities)
        length = utf16_len(plain)
        if caption:
            if length > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
        else:
            if not plain:
                raise bad_request("message text is empty")
            if length > MAX_TEXT_LENGTH:
                raise bad_request("message is too long")
        return plain, entities

    def _explicit_entities(self, text: str, raw: Any) -> list[dict[str, Any]]:
        what = "can't parse entities JSON object"
        if not isinstance(raw, list):
            raise bad_request(what)
        total = utf16_len(text)
        entities: list[dict[str, Any]] = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise bad_request(what)
            offset, length = item.get("offset"), item.get("length")
            if (
                not isinstance(offset, int)
                or not isinstance(length, int)
                or offset < 0
                or length < 0
            ):
                raise bad_request(what)
            if length == 0 or offset >= total:
                continue
            entities.append({**item, "length": min(length, total - offset)})
        entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return entities

    def _resolve_mentions(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        resolved: list[dict[str, Any]] = []
        for entity in entities:
            if entity["type"] == "text_mention":
                user = self.state.users.get(entity["user_id"])
                if user is None:
                    continue  # Telegram drops mentions of users the bot cannot see
                entity = {k: v for k, v in entity.items() if k != "user_id"}
                entity["user"] = user.to_dict()
            resolved.append(entity)
        return resolved

    def _markup(self, params: Params, *, inline_only: bool = False) -> _Markup:
        raw = params.structured("reply_markup", what="reply keyboard markup JSON object")
        if raw is None:
            return _Markup()
        if not isinstance(raw, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in raw:
            return _Markup(raw=raw, buttons=self._inline_buttons(raw["inline_keyboard"]))
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in raw:
            rows = raw["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    text = button if isinstance(button, str) else (button or {}).get("text")
                    if not isinstance(text, str) or not text:
                        raise bad_request("keyboard button text must be non-empty")
            return _Markup(raw=raw, selective=bool(raw.get("selective")))
        if raw.get("force_reply") is True:
            placeholder = raw.get("input_field_placeholder")
            if placeholder is not None and (
                not isinstance(placeholder, str) or len(placeholder) > 64
            ):
                raise bad_request("input field placeholder must be 0-64 characters")
            return _Markup(
                raw=raw,
                force_reply=True,
                selective=bool(raw.get("selective")),
                placeholder=placeholder,
            )
        if raw.get("remove_keyboard") is True:
            return _Markup(raw=raw, selective=bool(raw.get("selective")))
        raise bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _inline_buttons(rows: Any) -> list[list[Button]]:
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard markup JSON object")
        parsed: list[list[Button]] = []
        for row in rows:
            parsed_row: list[Button] = []
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request("can't parse inline keyboard button JSON object")
                text = button.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise bad_request("inline keyboard button text must be non-empty")
                actions = [key for key in button if key in _BUTTON_ACTIONS]
                if not actions:
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and (
                    not isinstance(data, str) or not 1 <= len(data.encode()) <= 64
                ):
                    raise bad_request("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and (not isinstance(url, str) or not _URL.match(url)):
                    raise bad_request("BUTTON_URL_INVALID")
                parsed_row.append(Button(text, data, url))
            if parsed_row:
                parsed.append(parsed_row)
        return parsed

    def _new_bot_message(
        self,
        chat: EmuChat,
        kind: MessageKind,
        *,
        thread_id: int | None,
        reply_to: EmuMessage | None,
        markup: _Markup,
        text: str = "",
        html: str = "",
        entities: list[dict[str, Any]] | None = None,
    ) -> EmuMessage:
        message = self.state.new_message(
            chat, None, kind, text=text, html=html, entities=entities, thread_id=thread_id,
            reply_to=None if reply_to is None else reply_to.message_id)
        self._apply_markup(message, markup)  # in the same step: no one sees it without
        return message

    @staticmethod
    def _apply_markup(message: EmuMessage, markup: _Markup) -> None:
        message.reply_markup = markup.raw
        message.buttons = markup.buttons
        message.force_reply = markup.force_reply
        message.selective = markup.selective
        message.input_field_placeholder = markup.placeholder

    def _input_file(
        self, params: Params, name: str, kind: MediaKind
    ) -> tuple[EmuFile, bytes | None]:
        """``(EmuFile, bytes)`` for an uploaded file, a known file_id or a URL."""
        st = self.state
        value = params.file(name)
        if value is None or value == "":
            raise bad_request(f"there is no {name} in the request")
        if isinstance(value, UploadedFile):
            mime = value.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(value.filename)[0] or mime
            emu_file = st.register_file(kind, value.data, file_name=value.filename, mime_type=mime)
            return emu_file, value.data
        known = st.files.get(value)
        if known is not None:
            return known, known.data
        if value.lower().startswith(("http://", "https://")):
            file_name = value.rsplit("/", 1)[-1] or None
            return st.register_file(kind, None, file_name=file_name), None
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _bot_message(self, chat: EmuChat, params: Params, missing: str) -> EmuMessage:
        message_id = params.required_integer(
            "message_id", missing="message identifier is not specified"
        )
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise bad_request(missing)
        return message

    def _editable(self, params: Params) -> tuple[EmuChat, EmuMessage]:
        if "inline_message_id" in params:
            raise bad_request("inline messages are not supported by the emulator")
        chat = self._writable_chat(params)
        message = self._bot_message(chat, params, "message to edit not found")
        if message.sender is not None or message.kind == "service":
            raise bad_request("message can't be edited")
        return chat, message

    def _finish_edit(self, message: EmuMessage) -> dict[str, Any]:
        message.edits += 1
        message.edit_date = int(time.time())
        message.edited_at = time.monotonic()
        self.state.touch(message)
        return self.state.message_to_dict(message)

    @staticmethod
    def _current_inline(message: EmuMessage) -> list[Any] | None:
        if not message.buttons or message.reply_markup is None:
            return None
        rows: list[Any] = message.reply_markup["inline_keyboard"]
        return rows

    def _needs_manage_topics(self, chat: EmuChat, topic: EmuTopic | None, action: str) -> None:
        if chat.bot_is_admin and chat.bot_can_manage_topics:
            return
        if topic is not None and topic.created_by_bot:
            return
        raise bad_request(f"not enough rights to {action} a topic")

    def _forum_topic(self, chat: EmuChat, params: Params) -> EmuTopic:
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        thread_id = params.required_integer("message_thread_id", missing="message thread not found")
        topic = chat.topics.get(thread_id)
        if topic is None:
            raise bad_request("message thread not found")
        return topic

    def _scope_key(self, params: Params) -> str:
        """The key used in ``emu.commands`` for a ``scope`` parameter.

        ``"default"``, ``"all_private_chats"``, ``"all_group_chats"``,
        ``"all_chat_administrators"``, ``"chat:<chat_id>"``,
        ``"chat_administrators:<chat_id>"`` or ``"chat_member:<chat_id>:<user_id>"``.
        """
        scope = params.structured("scope", what="BotCommandScope JSON object")
        if scope is None:
            return "default"
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
            raise bad_request("can't parse BotCommandScope JSON object")
        scope_type: str = scope["type"]
        if scope_type in ("chat", "chat_administrators", "chat_member"):
            scope_params = Params(scope)
            chat = self._lookup_chat(scope_params.chat_id())
            if scope_type == "chat_member":
                user_id = scope_params.required_integer("user_id")
                if chat.type == "private":
                    raise bad_request("can't use chat_member scope in private chats")
                return f"chat_member:{chat.id}:{user_id}"
            return f"{scope_type}:{chat.id}"
        return scope_type

    @staticmethod
    def _language(params: Params) -> str:
        language = params.string("language_code") or ""
        if language and not _LANGUAGE.match(language):
            raise bad_request("invalid language code specified")
        return language

    # ================================================================== bot & updates

    def trivial(self, params: Params) -> bool:
        return True

    def get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self.state.bot_user_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.state.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self.state.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.integer("offset")
        limit = params.integer("limit") or 100
        timeout = min(max(params.number("timeout", 0.0), 0.0), MAX_LONG_POLL)
        allowed = self._allowed_updates(params)
        if allowed is not None:
            self.state.set_allowed_updates(allowed)
        batch = await self.state.poll_updates(offset, min(max(limit, 1), 100), timeout)
        if batch is None:
            raise ApiError(409, WEBHOOK_CONFLICT if self.state.webhook is not None else CONFLICT)
        return batch

    @staticmethod
    def _allowed_updates(params: Params) -> list[str] | None:
        allowed = params.structured("allowed_updates", what="allowed_updates JSON object")
        if allowed is None:
            return None
        if not isinstance(allowed, list) or not all(isinstance(kind, str) for kind in allowed):
            raise bad_request("can't parse allowed_updates JSON object")
        return allowed

    async def set_webhook(self, params: Params) -> bool:
        st = self.state
        url = (params.string("url") or "").strip()
        if not url:  # Telegram: an empty URL removes the webhook
            await st.delete_webhook()
            return True
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if parts.hostname not in ("127.0.0.1", "::1", "localhost"):
            # a real Telegram would post there; the emulator never leaves this machine
            raise bad_request("bad webhook: the emulator posts only to 127.0.0.1")
        secret = params.string("secret_token")
        if secret is not None and not _SECRET_TOKEN.match(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = self._allowed_updates(params)
        if params.boolean("drop_pending_updates"):
            st.drop_pending_updates()
        if allowed is not None:
            st.set_allowed_updates(allowed)
        await st.delete_webhook()  # a new URL or secret: deliveries start over
        st.set_webhook(WebhookConfig(url=url, secret_token=secret,
                                     max_connections=max_connections, allowed_updates=allowed))
        return True

    async def delete_webhook(self, params: Params) -> bool:
        await self.state.delete_webhook()
        if params.boolean("drop_pending_updates"):
            self.state.drop_pending_updates()
        return True

    def get_webhook_info(self, params: Params) -> dict[str, Any]:
        st = self.state
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(st.pending_updates()),
        }
        hook = st.webhook
        if hook is not None:
            info["url"] = hook.url
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    def set_my_commands(self, params: Params) -> bool:
        raw = params.structured("commands", what="commands JSON object")
        if raw is None:
            raise bad_request("commands is empty")
        if not isinstance(raw, list):
            raise bad_request("can't parse commands JSON object")
        if len(raw) > 100:
            raise bad_request("too many commands specified")
        commands: list[tuple[str, str]] = []
        for item in raw:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command, description = item.get("command"), item.get("description")
            if not isinstance(command, str) or not isinstance(description, str):
                raise bad_request("can't parse BotCommand JSON object")
            command = command.removeprefix("/")
            if not _COMMAND.match(command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            commands.append((command, description))
        key = (self._scope_key(params), self._language(params))
        if commands:
            self.state.commands[key] = commands
        else:
            self.state.commands.pop(key, None)
        return True

    def get_my_commands(self, params: Params) -> list[dict[str, str]]:
        key = (self._scope_key(params), self._language(params))
        return [
            {"command": command, "description": description}
            for command, description in self.state.commands.get(key, [])
        ]

    def delete_my_commands(self, params: Params) -> bool:
        key = (self._scope_key(params), self._language(params))
        self.state.commands.pop(key, None)
        return True

    def set_profile(self, field_name: str, max_length: int) -> Handler:
        def handler(params: Params) -> bool:
            value = params.string(field_name) or ""
            if len(value) > max_length:
                raise bad_request(f"bot {field_name.replace('_', ' ')} is too long")
            key = (field_name, self._language(params))
            if value:
                self.state.bot_profile[key] = value
            else:
                self.state.bot_profile.pop(key, None)
            return True

        return handler

    def get_profile(self, field_name: str) -> Handler:
        def handler(params: Params) -> dict[str, str]:
            language = self._language(params)
            profile = self.state.bot_profile
            value = profile.get((field_name, language)) or profile.get((field_name, ""))
            if value is None and field_name == "name":
                value = self.state.bot_first_name
            return {field_name: value or ""}

        return handler

    # ================================================================== sending

    def send_message(self, params: Params) -> dict[str, Any]:
        chat = self._writable_chat(params)
        reply_to = self._reply_target(chat, params)
        thread_id = self._thread(chat, params, reply_to)
        text = params.string("text") or ""
        if not text:
            raise bad_request("message text is empty")
        plain, entities = self._format(
            text, params.string("parse_mode"), params.structured("entities"), caption=False
        )
        markup = self._markup(params)
        self._flood(chat)
        message = self._new_bot_message(
            chat, "text", thread_id=thread_id, reply_to=reply_to, markup=markup,
            text=plain, html=text, entities=entities,
        )  # fmt: skip
        return self.state.message_to_dict(message)

    def _send_media(self, params: Params, kind: MediaKind) -> dict[str, Any]:
        chat = self._writable_chat(params)
        reply_to = self._reply_target(chat, params)
        thread_id = self._thread(chat, params, reply_to)
        emu_file, data = self._input_file(params, kind, kind)
        caption = params.string("caption") or ""
        plain, entities = self._format(
            caption,
            params.string("parse_mode"),
            params.structured("caption_entities"),
            caption=True,
        )
        markup = self._markup(params)
        self._flood(chat)
        message = self._new_bot_message(
            chat, kind, thread_id=thread_id, reply_to=reply_to, markup=markup,
            text=plain, html=caption, entities=entities,
        )  # fmt: skip
        message.file_id = emu_file.file_id
        message.file_unique_id = emu_file.file_unique_id
        if kind == "photo":
            message.photo = data
            message.media = [photo_size_dict(emu_file)]
        else:
            message.document = data
            message.file_name = emu_file.file_name
            message.mime_type = emu_file.mime_type
            message.media = document_dict(emu_file)
        return self.state.message_to_dict(message)

    def send_photo(self, params: Params) -> dict[str, Any]:
        return self._send_media(params, "photo")

    def send_document(self, params: Params) -> dict[str, Any]:
        return self._send_media(params, "document")

    def _source_message(self, params: Params, missing: str) -> EmuMessage:
        source_chat = self._readable_chat(params, "from_chat_id")
        message_id = params.required_integer(
            "message_id", missing="message identifier is not specified"
        )
        source = source_chat.messages.get(message_id)
        if source is None or source.deleted or source.kind == "service":
            raise bad_request(missing)
        return source

    def _clone(
        self, source: EmuMessage, chat: EmuChat, params: Params, *, markup: _Markup,
        text: str, html: str, entities: list[dict[str, Any]],
    ) -> EmuMessage:  # fmt: skip
        reply_to = self._reply_target(chat, params)
        thread_id = self._thread(chat, params, reply_to)
        self._flood(chat)
        message = self._new_bot_message(
            chat, source.kind, thread_id=thread_id, reply_to=reply_to, markup=markup,
            text=text, html=html, entities=entities,
        )  # fmt: skip
        for name in ("file_id", "file_unique_id", "file_name", "mime_type", "document", "photo"):
            setattr(message, name, getattr(source, name))
        message.media = source.media
        return message

    def copy_message(self, params: Params) -> dict[str, Any]:
        source = self._source_message(params, "message to copy not found")
        chat = self._writable_chat(params)
        text, html, entities = source.text, source.html, list(source.entities)
        if source.kind != "text" and "caption" in params:
            html = params.string("caption") or ""
            text, entities = self._format(
                html,
                params.string("parse_mode"),
                params.structured("caption_entities"),
                caption=True,
            )
        message = self._clone(
            source,
            chat,
            params,
            markup=self._markup(params),
            text=text,
            html=html,
            entities=entities,
        )
        return {"message_id": message.message_id}

    def forward_message(self, params: Params) -> dict[str, Any]:
        source = self._source_message(params, "message to forward not found")
        chat = self._writable_chat(params)
        message = self._clone(
            source, chat, params, markup=_Markup(), text=source.text, html=source.html,
            entities=list(source.entities),
        )  # fmt: skip
        origin_user = (
            self.state.bot_user_dict() if source.sender is None else source.sender.to_dict()
        )
        message.forward_origin = source.forward_origin or {
            "type": "user",
            "date": source.date,
            "sender_user": origin_user,
        }
        return self.state.message_to_dict(message)

    # ================================================================== editing

    def edit_message_text(self, params: Params) -> dict[str, Any]:
        chat, message = self._editable(params)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text = params.string("text") or ""
        if not text:
            raise bad_request("message text is empty")
        return self._edit_formatted(chat, message, params, text, "entities", caption=False)

    def edit_message_caption(self, params: Params) -> dict[str, Any]:
        chat, message = self._editable(params)
        if message.kind not in ("photo", "document"):
            raise bad_request("there is no caption in the message to edit")
        caption = params.string("caption") or ""
        return self._edit_formatted(chat, message, params, caption, "caption_entities",
                                    caption=True)

    def _edit_formatted(self, chat: EmuChat, message: EmuMessage, params: Params, text: str,
                        entities_field: str, *, caption: bool) -> dict[str, Any]:
        """The shared end of a text or caption edit: parse, refuse a no-op, count, apply."""
        plain, entities = self._format(
            text, params.string("parse_mode"), params.structured(entities_field), caption=caption
        )
        markup = self._markup(params, inline_only=True)
        if (
            plain == message.text
            and entities == message.entities
            and markup.inline_rows == self._current_inline(message)
        ):
            raise bad_request(NOT_MODIFIED)
        self._flood(chat)
        message.text, message.html, message.entities = plain, text, entities
        self._apply_markup(message, markup)
        return self._finish_edit(message)

    def edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        chat, message = self._editable(params)
        markup = self._markup(params, inline_only=True)
        if markup.inline_rows == self._current_inline(message):
            raise bad_request(NOT_MODIFIED)
        self._flood(chat)
        self._apply_markup(message, markup)
        return self._finish_edit(message)

    def delete_message(self, params: Params) -> bool:
        chat = self._readable_chat(params)
        message = self._bot_message(chat, params, "message to delete not found")
        if message.sender is not None and chat.is_group and not chat.bot_is_admin:
            raise bad_request("message can't be deleted")
        message.deleted = True
        self.state.touch(message)
        return True

    # ================================================================== pins

    def _pin_rights(self, chat: EmuChat) -> None:
        if chat.is_group and not (chat.bot_is_admin and chat.bot_can_pin):
            raise bad_request("not enough rights to manage pinned messages in the chat")

    def pin_chat_message(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        self._pin_rights(chat)
        message = self._bot_message(chat, params, "message to pin not found")
        self._flood(chat)
        message.pinned = True
        self.state.touch(message)
        return True

    def unpin_chat_message(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        self._pin_rights(chat)
        if "message_id" in params:
            message = self._bot_message(chat, params, "message to unpin not found")
        else:
            pinned = [m for m in chat.messages.values() if m.pinned and not m.deleted]
            if not pinned:
                return True
            message = pinned[-1]
        message.pinned = False
        self.state.touch(message)
        return True

    def unpin_all_chat_messages(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        self._pin_rights(chat)
        for message in chat.messages.values():
            if message.pinned:
                message.pinned = False
                self.state.touch(message)
        return True

    # ================================================================== callbacks

    def answer_callback_query(self, params: Params) -> bool:
        st = self.state
        query = st.callback_queries.get(params.string("callback_query_id") or "")
        now = time.monotonic()
        if (
            query is None
            or query.answer is not None
            or now - query.created_at > st.callback_timeout
        ):
            raise bad_request(QUERY_TOO_OLD)
        text = params.string("text")
        if text is not None and len(text) > MAX_CALLBACK_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        st.answer_callback(
            query,
            CallbackAnswer(
                text=text,
                show_alert=params.boolean("show_alert"),
                at=now,
                url=params.string("url"),
                cache_time=params.integer("cache_time"),
            ),
        )
        return True

    # ================================================================== forum topics

    def create_forum_topic(self, params: Params) -> dict[str, Any]:
        chat = self._writable_chat(params)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        if not (chat.bot_is_admin and chat.bot_can_manage_topics):
            raise bad_request("not enough rights to create a topic")
        name = params.string("name") or ""
        if not 1 <= len(name) <= 128:
            raise bad_request("TOPIC_NAME_INVALID: topic name must be 1-128 characters")
        icon_color = params.integer("icon_color")
        if icon_color is None:
            icon_color = TOPIC_ICON_COLORS[0]
        elif icon_color not in TOPIC_ICON_COLORS:
            raise bad_request("TOPIC_ICON_COLOR_INVALID")
        emoji = params.string("icon_custom_emoji_id") or None
        topic = self.state.open_topic(chat, name, icon_color, emoji, creator=None)
        return topic.to_dict()

    def edit_forum_topic(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        topic = self._forum_topic(chat, params)
        self._needs_manage_topics(chat, topic, "edit")
        name = params.string("name")
        emoji = params.string("icon_custom_emoji_id")
        if name is not None and not 1 <= len(name) <= 128:
            raise bad_request("TOPIC_NAME_INVALID: topic name must be 1-128 characters")
        new_name = topic.name if name is None else name
        new_emoji = topic.icon_custom_emoji_id if emoji is None else (emoji or None)
        if new_name == topic.name and new_emoji == topic.icon_custom_emoji_id:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.name, topic.icon_custom_emoji_id = new_name, new_emoji
        return True

    def _set_topic_closed(self, params: Params, closed: bool) -> bool:
        chat = self._writable_chat(params)
        topic = self._forum_topic(chat, params)
        self._needs_manage_topics(chat, topic, "close" if closed else "reopen")
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        return True

    def close_forum_topic(self, params: Params) -> bool:
        return self._set_topic_closed(params, True)

    def reopen_forum_topic(self, params: Params) -> bool:
        return self._set_topic_closed(params, False)

    # ================================================================== chats

    def get_chat(self, params: Params) -> dict[str, Any]:
        chat = self._readable_chat(params)
        info: dict[str, Any] = {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        pinned = [m for m in chat.messages.values() if m.pinned and not m.deleted]
        if pinned:
            info["pinned_message"] = self.state.message_to_dict(pinned[-1])
        return info

    def _member_dict(self, chat: EmuChat, user_id: int) -> dict[str, Any]:
        st = self.state
        if user_id == st.bot_id:
            return st.bot_member_dict(chat)
        user = st.users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        user_dict = user.to_dict()
        if chat.type == "private":
            if chat.user is user:
                return {"status": "member", "user": user_dict}
            return {"status": "left", "user": user_dict}
        if chat.owner_id == user_id:
            return {"status": "creator", "user": user_dict, "is_anonymous": False}
        if user_id in chat.admin_ids:
            member = admin_member_dict(
                user_dict, can_pin=True, can_manage_topics=True, forum=chat.is_forum
            )
            member["can_promote_members"] = True
            return member
        if user_id in chat.members:
            return {"status": "member", "user": user_dict}
        return {"status": "left", "user": user_dict}

    def get_chat_member(self, params: Params) -> dict[str, Any]:
        chat = self._readable_chat(params)
        return self._member_dict(chat, params.required_integer("user_id", missing="user not found"))

    def get_chat_administrators(self, params: Params) -> list[dict[str, Any]]:
        chat = self._readable_chat(params)
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        ids = ([chat.owner_id] if chat.owner_id is not None else []) + sorted(chat.admin_ids)
        admins = [self._member_dict(chat, user_id) for user_id in dict.fromkeys(ids)]
        if chat.bot_is_admin:
            admins.append(self.state.bot_member_dict(chat))
        return admins

    def get_chat_member_count(self, params: Params) -> int:
        chat = self._readable_chat(params)
        if chat.type == "private":
            return 2
        return len(chat.members) + (1 if chat.bot_is_member else 0)

    def leave_chat(self, params: Params) -> bool:
        chat = self._readable_chat(params)
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        old = self.state.bot_member_dict(chat)
        chat.bot_status = "left"
        chat.bot_can_pin = chat.bot_can_manage_topics = False
        self.state.emit_my_chat_member(chat, self.state.actor_for(chat, None), old)
        return True

    def send_chat_action(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        self._thread(chat, params, None)
        action = params.string("action")
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def get_file(self, params: Params) -> dict[str, Any]:
        file_id = params.string("file_id") or ""
        emu_file = self.state.files.get(file_id)
        if emu_file is None:
            raise bad_request("invalid file_id")
        result: dict[str, Any] = {
            "file_id": emu_file.file_id,
            "file_unique_id": emu_file.file_unique_id,
        }
        if emu_file.data is not None:
            result["file_size"] = emu_file.file_size
            result["file_path"] = emu_file.file_path
        return result
