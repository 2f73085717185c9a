"""What the repositories may ask of a database: the interface both stores implement.

`storage.db.SqliteDatabase` (the embedded default) and `storage.pg.PgDatabase` (PostgreSQL,
SPEC §16) provide it; the repositories are typed against it only. The SQL they pass is
written with `?` (or `:name`) placeholders in the dialect both engines share; the rare
statement that cannot be shared asks `dialect` ("sqlite" or "postgresql").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any] | dict[str, Any]


class DatabaseUnavailable(Exception):
    """A database server that cannot be reached or refuses us; the text is the reason, in
    one line (no password: the driver never says it)."""


class Row(Protocol):
    """A result row: by column name (`row["id"]`) and by position (`row[0]`), like
    sqlite3.Row; `keys()` names the columns, so `dict(row)` works."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> list[str]: ...


class Database(Protocol):
    """An open store's statements and transactions.

    Outside a transaction a statement sees the last commit; a write statement outside one
    runs in a transaction of its own. Inside `transaction()` every statement, reads included,
    runs in that transaction. Nested `transaction()` blocks join the outermost one: it alone
    commits (or rolls back), and `after_commit` callbacks run after that commit.
    """

    dialect: Dialect
    #: how many updates the intake handles at once on this database
    handler_slots: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def migrate(self) -> int: ...

    @property
    def in_transaction(self) -> bool: ...

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[None]: ...

    def alone(self) -> AbstractContextManager[None]: ...

    async def lock_row(self, table: str, row_id: int) -> None:
        """Inside a transaction: no other transaction changes the row or locks it until this
        one ends (SQLite: its one writer holds the whole database already)."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...

    def notify(self, channel: str) -> None:
        """Tell the listeners on `channel` (other processes) once the current transaction
        commits: PostgreSQL's NOTIFY; nothing on SQLite, whose one process is told in memory."""
        ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement; an INSERT returns the new row's id (0: none)."""
        ...

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchall_long(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchval(self, sql: str, params: Params = ()) -> Any: ...
