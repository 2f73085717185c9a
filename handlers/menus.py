"""Command menus (setMyCommands) per language and per scope (SPEC §3)."""

from __future__ import annotations

from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
)
from telegram.ext import ExtBot

from bot.i18n import DEFAULT_LOCALE, t

# Each feature adds its commands here as it lands.
PRIVATE = ("start", "opinion", "my", "me", "tickets", "ticket", "invite", "lang", "help",
           "cancel")
GROUP = ("help", "lang")
ADMINS = ("bind", "unbind", "joinlink", "tickets", "ticket", "lang", "help")
# schedules and reports (SPEC §6)
PRIVATE += ("theme", "report", "board", "patrol")
GROUP += ("theme",)
ADMINS += ("theme", "report", "board", "patrol")
# the assembly horn and volunteers (SPEC §5)
PRIVATE += ("horn", "horns", "horn_close", "volunteer")
GROUP += ("horns",)
ADMINS += ("horns", "horn_close")
# staff at work (SPEC §11): people administration, staff intake
PRIVATE += ("people", "revoke", "audit", "intake")
PRIVATE += ("backup", "away", "back")  # AB岗
PRIVATE += ("points", "redeem")  # the time bank's shop 爱心银行 (SPEC §13)
PRIVATE += ("meeting", "meetings")  # meetings (SPEC §12)
PRIVATE += ("checkpoints",)  # patrol checkpoints (SPEC §13)
PRIVATE += ("privacy", "mydata", "forget")  # personal data (SPEC §14)
# evaluation and the annual assessment (SPEC §12)
PRIVATE += ("evaluations", "assess")
ADMINS += ("evaluations", "assess")
PRIVATE += ("unit", "report_in", "posts", "resources", "talent", "units")  # SPEC §10
SCOPES = ((BotCommandScopeDefault(), PRIVATE), (BotCommandScopeAllPrivateChats(), PRIVATE),
          (BotCommandScopeAllGroupChats(), GROUP),
          (BotCommandScopeAllChatAdministrators(), ADMINS))
# Telegram's menus know two-letter codes only; None is the menu for everyone else (in the
# default language of the settings).
MENU_LOCALES = (("zh", "zh-Hans"), ("en", "en"))


# each command's line in the menu
DESCRIPTION = {
    "start": "menu.start", "opinion": "menu.opinion", "my": "menu.my", "me": "menu.me",
    "tickets": "menu.tickets", "ticket": "menu.ticket", "invite": "menu.invite",
    "lang": "menu.lang", "help": "menu.help", "cancel": "menu.cancel", "bind": "menu.bind",
    "unbind": "menu.unbind", "joinlink": "menu.joinlink", "theme": "menu.theme",
    "report": "menu.report", "board": "menu.board", "patrol": "menu.patrol", "horn": "menu.horn",
    "horns": "menu.horns", "horn_close": "menu.horn_close", "volunteer": "menu.volunteer",
    "people": "menu.people", "revoke": "menu.revoke", "audit": "menu.audit",
    "intake": "menu.intake",
    "backup": "menu.backup", "away": "menu.away", "back": "menu.back",
    "points": "menu.points", "redeem": "menu.redeem",
    "meeting": "menu.meeting", "meetings": "menu.meetings",
    "checkpoints": "menu.checkpoints",
    "privacy": "menu.privacy", "mydata": "menu.mydata", "forget": "menu.forget",
    "evaluations": "menu.evaluations", "assess": "menu.assess",
    "unit": "menu.unit", "report_in": "menu.report_in", "posts": "menu.posts",
    "resources": "menu.resources", "talent": "menu.talent", "units": "menu.units",
}


def commands_for(locale: str, names: tuple[str, ...]) -> list[BotCommand]:
    return [BotCommand(name, t(locale, DESCRIPTION[name])) for name in names]


async def set_command_menus(bot: ExtBot, default_locale: str = DEFAULT_LOCALE) -> None:
    for scope, names in SCOPES:
        for language, locale in ((None, default_locale), *MENU_LOCALES):
            await bot.set_my_commands(commands_for(locale, names), scope=scope,
                                      language_code=language)
