from datetime import time, timedelta

import pytest

from bot.cli import main
from bot.settings import SettingsError, load_settings


def test_defaults_follow_the_spec():
    settings = load_settings()
    assert settings.bot_token is None
    assert settings.timezone == "Asia/Shanghai"
    assert settings.default_locale == "zh-Hans"
    assert settings.deadlines("routine").resolve == timedelta(days=7)
    assert settings.deadlines("urgent").acknowledge == timedelta(hours=1)
    assert settings.quiet_hours is not None
    assert settings.quiet_hours.contains(time(23, 30)) and settings.quiet_hours.contains(time(6))
    assert (not settings.quiet_hours.contains(time(7))
            and not settings.quiet_hours.contains(time(12)))
    assert (settings.rate_overall_per_s, settings.rate_group_per_min,
            settings.rate_chat_per_s) == (30, 20, 1)
    assert settings.api_base_file_url == "https://api.telegram.org/file/bot"


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("GRIDHORN_SUPERADMINS", "11, 22")
    monkeypatch.setenv("GRIDHORN_DEADLINES_URGENT", "30s,1m,2m")
    monkeypatch.setenv("GRIDHORN_QUIET_HOURS", "")
    monkeypatch.setenv("GRIDHORN_HORN_RESOUND_MIN", "15")
    monkeypatch.setenv("GRIDHORN_OPINIONS_PER_HOUR", "3")
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", "sqlite:////var/lib/gridhorn/g.db")
    monkeypatch.setenv("GRIDHORN_API_BASE_URL", "http://127.0.0.1:8081/bot")
    settings = load_settings()
    assert settings.superadmins == frozenset({11, 22})
    assert settings.deadlines("urgent").acknowledge == timedelta(seconds=30)
    assert settings.quiet_hours is None
    assert settings.horn_resound_min == 15 and settings.opinions_per_hour == 3
    assert settings.sqlite_path == "/var/lib/gridhorn/g.db"
    assert settings.api_base_file_url == "http://127.0.0.1:8081/file/bot"


@pytest.mark.parametrize("variable, value", [
    ("GRIDHORN_REPORT_CRON", "every monday"),
    ("GRIDHORN_TIMEZONE", "Mars/Olympus"),
    ("GRIDHORN_DEADLINES_MAJOR", "12h,24h"),
    ("GRIDHORN_RATE_CHAT_PER_S", "fast"),
    ("GRIDHORN_SUPERADMINS", "alice"),
    ("GRIDHORN_QUIET_HOURS", "22-7"),
    ("GRIDHORN_DEFAULT_LOCALE", "fr"),
    ("GRIDHORN_HORN_RESOUND_MIN", "0"),
    ("GRIDHORN_OPINIONS_PER_HOUR", "many"),
    ("GRIDHORN_EVENT_LOOP", "trio"),
])
def test_a_bad_value_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(variable + ":")


def test_a_postgresql_url_is_taken_and_shown_without_its_password(monkeypatch):
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", "postgresql://gridhorn:s3cret@db:5432/gridhorn")
    settings = load_settings()
    assert settings.database_url == "postgresql://gridhorn:s3cret@db:5432/gridhorn"
    assert settings.database_url_shown == "postgresql://gridhorn:***@db:5432/gridhorn"


@pytest.mark.parametrize("variable, value, message", [
    ("GRIDHORN_DATABASE_URL", "mysql://gridhorn@db/gridhorn",
     "expected sqlite:///relative.db, sqlite:////absolute/path.db or "
     "postgresql://user@host:5432/database"),
    ("GRIDHORN_DATABASE_URL", "postgresql:///",
     "expected sqlite:///relative.db, sqlite:////absolute/path.db or "
     "postgresql://user@host:5432/database"),
    ("GRIDHORN_DATABASE_URL", "sqlite:///",
     "expected sqlite:///relative.db, sqlite:////absolute/path.db or "
     "postgresql://user@host:5432/database"),
    ("GRIDHORN_API_BASE_URL", "api.telegram.org/bot",
     "expected an http:// or https:// URL like https://api.telegram.org/bot"),
    ("GRIDHORN_API_BASE_URL", "ftp://127.0.0.1/bot",
     "expected an http:// or https:// URL like https://api.telegram.org/bot"),
    ("GRIDHORN_API_BASE_URL", "http:///bot",
     "expected an http:// or https:// URL like https://api.telegram.org/bot"),
])
def test_url_settings_say_what_they_expect(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"{variable}: {message}"


def test_run_without_token_says_how_to_get_one(capsys):
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "GRIDHORN_BOT_TOKEN" in err and "@BotFather" in err
    assert "Traceback" not in err


def test_run_with_a_bad_setting_prints_one_line(monkeypatch, capsys):
    monkeypatch.setenv("GRIDHORN_BOT_TOKEN", "1:x")
    monkeypatch.setenv("GRIDHORN_THEME_CRON", "61 * * * *")
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gridhorn: GRIDHORN_THEME_CRON:")


def test_the_tests_never_read_a_dotenv_file(tmp_path, monkeypatch):
    """A developer's .env (a production token) must not reach the tests: conftest points
    GRIDHORN_ENV_FILE at nothing."""
    (tmp_path / ".env").write_text("GRIDHORN_BOT_TOKEN=123:PRODUCTION\nGRIDHORN_SUPERADMINS=7\n",
                                   encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.bot_token is None and settings.superadmins == frozenset()


def test_env_file_names_the_file_to_read_and_environment_variables_win(tmp_path, monkeypatch):
    other = tmp_path / "staging.env"
    other.write_text("GRIDHORN_SUPERADMINS=7\nGRIDHORN_TIMEZONE=Asia/Hong_Kong\n", encoding="utf-8")
    monkeypatch.setenv("GRIDHORN_ENV_FILE", str(other))
    monkeypatch.setenv("GRIDHORN_TIMEZONE", "Asia/Taipei")
    settings = load_settings()
    assert settings.superadmins == frozenset({7}) and settings.timezone == "Asia/Taipei"


def test_an_env_file_that_does_not_exist_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDHORN_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"GRIDHORN_ENV_FILE: no such file: {tmp_path / 'missing.env'}"


def test_the_event_loop_is_asyncio_unless_uvloop_is_asked_for(monkeypatch):
    import asyncio

    from bot import eventloop
    assert load_settings().event_loop == "asyncio"
    monkeypatch.setenv("GRIDHORN_EVENT_LOOP", "uvloop")
    settings = load_settings()
    assert settings.event_loop == "uvloop"  # the bench extra installs it

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(which(), settings.event_loop).startswith("uvloop")
    assert eventloop.run(which(), "asyncio").startswith("asyncio")


def test_uvloop_asked_for_but_not_installed_stops_start_up_with_one_line(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    monkeypatch.setenv("GRIDHORN_EVENT_LOOP", "uvloop")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == ("GRIDHORN_EVENT_LOOP: uvloop is not installed "
                                 "(pip install 'gridhorn[uvloop]')")


def test_webhook_settings_default_and_are_read(monkeypatch):
    settings = load_settings()
    assert (settings.webhook_url, settings.webhook_secret) == (None, None)
    assert settings.listen_address == ("127.0.0.1", 8443)
    monkeypatch.setenv("GRIDHORN_WEBHOOK_URL", "https://bot.example.org/telegram/hook")
    monkeypatch.setenv("GRIDHORN_WEBHOOK_SECRET", "Abc_123-" * 32)  # 256, the longest
    monkeypatch.setenv("GRIDHORN_LISTEN", "[::1]:9443")
    settings = load_settings()
    assert settings.webhook_path == "/telegram/hook"
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "Abc_123-" * 32
    assert "Abc_123" not in repr(settings)  # a secret never lands in a log
    assert settings.listen_address == ("::1", 9443)
    settings.check_webhook()
    # the emulator: plain http, on this machine only
    assert load_settings(webhook_url="http://127.0.0.1:8081/hook").webhook_path == "/hook"


URL_HELP = ("expected an https:// URL like https://bot.example.org/telegram "
            "(http:// only on 127.0.0.1)")
SECRET_HELP = ("expected 1 to 256 characters of A-Z, a-z, 0-9, _ and - "
               "(what Telegram accepts as secret_token)")


@pytest.mark.parametrize("variable, value, message", [
    ("GRIDHORN_WEBHOOK_URL", "http://bot.example.org/hook", URL_HELP),
    ("GRIDHORN_WEBHOOK_URL", "bot.example.org/hook", URL_HELP),
    ("GRIDHORN_WEBHOOK_URL", "https:///hook", URL_HELP),
    ("GRIDHORN_WEBHOOK_URL", "https://bot.example.org:99999/hook",
     "'https://bot.example.org:99999/hook' has a bad port"),
    ("GRIDHORN_WEBHOOK_SECRET", "has space", SECRET_HELP),
    ("GRIDHORN_WEBHOOK_SECRET", "x" * 257, SECRET_HELP),
    ("GRIDHORN_WEBHOOK_SECRET", "秘密", SECRET_HELP),
    ("GRIDHORN_LISTEN", "8443", "'8443' is not an address like 127.0.0.1:8443"),
    ("GRIDHORN_LISTEN", "0.0.0.0:http", "'0.0.0.0:http' is not an address like 127.0.0.1:8443"),
    ("GRIDHORN_LISTEN", "0.0.0.0:70000",
     "'0.0.0.0:70000' is not an address like 127.0.0.1:8443"),
])
def test_webhook_settings_say_what_they_expect(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"{variable}: {message}"


@pytest.mark.parametrize("given, missing", [
    ({}, ["GRIDHORN_WEBHOOK_URL", "GRIDHORN_WEBHOOK_SECRET"]),
    ({"GRIDHORN_WEBHOOK_URL": "https://bot.example.org/hook"}, ["GRIDHORN_WEBHOOK_SECRET"]),
    ({"GRIDHORN_WEBHOOK_SECRET": "abc", "GRIDHORN_WEBHOOK_URL": " "}, ["GRIDHORN_WEBHOOK_URL"]),
])
def test_run_webhook_without_its_settings_names_them_in_one_line(monkeypatch, capsys, given,
                                                                 missing):
    monkeypatch.setenv("GRIDHORN_BOT_TOKEN", "1:x")
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "--webhook"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gridhorn: " + "; ".join(f"{name}: required with --webhook"
                                            for name in missing)]
