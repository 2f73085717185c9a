"""The playground page's own words (SPEC §17): its chrome and hints, sent to the page by
`/api/world` as `strings`. Every key is written out here so tests/test_i18n.py sees it used."""

from __future__ import annotations

from bot.i18n import t

PAGE_KEYS: tuple[str, ...] = (
    "playground.title",
    "playground.language",
    "playground.lang_zh_hans",
    "playground.lang_zh_hant",
    "playground.lang_en",
    "playground.tour_play",
    "playground.tour_pause",
    "playground.tour_step",
    "playground.tour_progress",
    "playground.tour_idle",
    "playground.speed",
    "playground.reset",
    "playground.transcript_save",
    "playground.transcript_replay",
    "playground.replay_running",
    "playground.replay_ok",
    "playground.replay_failed",
    "playground.replay_error",
    "playground.clock",
    "playground.inspector",
    "playground.inspector_message",
    "playground.inspector_log",
    "playground.inspector_hint",
    "playground.inspector_no_calls",
    "playground.inspector_params",
    "playground.inspector_update",
    "playground.inspector_no_update",
    "playground.log_empty",
    "playground.close",
    "playground.add_column",
    "playground.remove_column",
    "playground.person",
    "playground.no_chats",
    "playground.back",
    "playground.topics",
    "playground.topic_general",
    "playground.members",
    "playground.bot_label",
    "playground.pinned",
    "playground.edited",
    "playground.reply",
    "playground.inspect",
    "playground.composer_placeholder",
    "playground.force_reply_placeholder",
    "playground.replying_to",
    "playground.send",
    "playground.send_photo",
    "playground.photo",
    "playground.document",
    "playground.ok",
    "playground.error",
    "playground.disconnected",
    "playground.loading",
)


def page_strings(lang: str) -> dict[str, str]:
    """Every text of the page in `lang` by key, placeholders (`{step}`) left for the page."""
    return {key: t(lang, key) for key in PAGE_KEYS}
