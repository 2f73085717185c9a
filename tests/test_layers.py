"""The layers and who may import whom (docs/architecture.md), read from the source's AST.

handlers → bot.services → storage; bot's machinery (outbox, intake, scheduler…) → storage;
services never import telegram; storage imports neither bot nor handlers; handlers speak no
SQL and reach no store; no module imports, even inside a function, a module that imports it
back (counting the imports under TYPE_CHECKING); imports inside functions only for the heavy
optional libraries loaded lazily on purpose. The playground (SPEC §17) stands on top: it may
import the emulator, bot, storage and handlers; of the rest only `bot.cli` (`gridhorn demo`)
imports it.

What services and machinery share sits below both: `bot.hooks` (wake-ups, the outbox's hook
registry), `bot.settings`, `bot.priority`, `bot.logcontext` (what a log line is about),
and the text helpers (`bot.i18n`, `bot.textsplit`, `bot.labels`, `bot.cron`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "storage", "emulator", "locales", "playground")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _resolve(name: str) -> str:
    """The module an import names: `handlers.horn` if it is one, else its nearest package."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name


@cache
def imported(module: str, with_type_checking: bool = False) -> frozenset[str]:
    """Every name this module imports at run time, at any depth (module or its attribute),
    as written, with relative imports made absolute."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_blocks(tree) if not with_type_checking else set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import x` runs pkg/__init__ whatever x is
            found |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    return frozenset(found)


def top_levels(module: str) -> set[str]:
    return {name.split(".")[0] for name in imported(module)}


def edges(module: str, with_type_checking: bool = False) -> set[str]:
    """Project modules this one imports: `from a import b` names a.b when that is a module,
    and a itself (its __init__ runs first)."""
    targets = set()
    for name in imported(module, with_type_checking):
        target = _resolve(name)
        if target and target != module:
            targets.add(target)
    return targets


def in_(prefix: str) -> list[str]:
    return sorted(m for m in modules() if m == prefix or m.startswith(prefix + "."))


def test_services_do_not_import_telegram() -> None:
    offenders = [m for m in in_("bot.services") if "telegram" in top_levels(m)]
    assert not offenders, offenders


def test_storage_speaks_only_sql() -> None:
    offenders = [m for m in in_("storage") if top_levels(m) & {"telegram", "bot", "handlers"}]
    assert not offenders, offenders


def test_services_do_not_reach_up() -> None:
    """Services stand below the handlers and the machinery that runs them."""
    allowed_bot = {"bot.services", "bot.i18n", "bot.textsplit", "bot.priority", "bot.cron",
                   "bot.labels", "bot.settings", "bot.hooks", "bot.logcontext"}
    offenders = {m: sorted(t for t in edges(m)
                           if t.startswith("handlers") or (t.startswith("bot.")
                           and not any(t == a or t.startswith(a + ".") for a in allowed_bot)))
                 for m in in_("bot.services")}
    assert not {m: t for m, t in offenders.items() if t}


def test_machinery_does_not_reach_into_services() -> None:
    """The outbox sender and the settings are below the services: they import none."""
    for module in ("bot.outbox", "bot.settings", "bot.ratelimit", "bot.intake", "bot.hooks",
                   "bot.watcher", "bot.backlog", "bot.leader"):
        assert not [t for t in edges(module) if t.startswith("bot.services")], module


def test_what_handlers_see_holds_no_store_and_no_machinery() -> None:
    """`context.services`: the services, the settings and the clock; the store, the outbox
    and what sends and schedules stay with the runtime."""
    tree = ast.parse(modules()["bot.context"].read_text(encoding="utf-8"))
    services = next(n for n in ast.walk(tree)
                    if isinstance(n, ast.ClassDef) and n.name == "Services")
    fields = {ast.unparse(n.target): ast.unparse(n.annotation) for n in services.body
              if isinstance(n, ast.AnnAssign)}
    assert not set(fields) & {"store", "outbox", "sender", "scheduler", "intake"}, fields
    assert not [a for a in fields.values()
                if any(w in a for w in ("Store", "Outbox", "Scheduler", "Intake", "Watcher",
                                        "Backlog"))], fields


#: imported inside the function that needs them, on purpose (a second and tens of megabytes
#: to load, spent only when a report is drawn; an optional extra)
LAZY = {"matplotlib", "openpyxl", "uvloop"}


def test_imports_inside_functions_only_for_heavy_optional_libraries() -> None:
    """An import inside a function hides a dependency (and often a cycle) from the reader."""
    found = []
    for module in in_("bot") + in_("handlers"):
        tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or "."]
                else:
                    continue
                found += [f"{module}: {n}" for n in names if n.split(".")[0] not in LAZY]
    assert not found, found


def test_handlers_write_no_sql_and_hold_no_store() -> None:
    """Handlers parse, call a service and render: SQL or a store handle there would put
    rules beside the services that hold them."""
    for module in in_("handlers"):
        tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
        strings = [n.value for n in ast.walk(tree)
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [s for s in strings
                    if any(w in s for w in ("SELECT ", "INSERT ", "UPDATE ", "DELETE FROM"))
                    ], module
        attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not attributes & {"store", "sender", "outbox", "transaction"}, module
        assert not [t for t in edges(module) if t.startswith("storage")
                    and t != "storage.models"], module


def test_only_the_cli_imports_the_playground() -> None:
    """The playground runs the product for show; the product never leans on it, so that
    `gridhorn run` works the same with it gone (imports under TYPE_CHECKING count too)."""
    offenders = sorted(m for m in modules() if not m.startswith("playground")
                       and m != "bot.cli"
                       and "playground" in {n.split(".")[0] for n in imported(m, True)})
    assert not offenders, offenders


def test_the_playground_imports_only_what_it_shows() -> None:
    """Of the project, the playground reaches the emulator, bot, storage and handlers."""
    allowed = {"playground", "emulator", "bot", "storage", "handlers"}
    assert in_("playground")
    offenders = {m: sorted(t for t in edges(m, with_type_checking=True)
                           if t.split(".")[0] not in allowed)
                 for m in in_("playground")}
    assert not {m: t for m, t in offenders.items() if t}


def test_no_import_cycles() -> None:
    """Counted with the imports inside functions and under TYPE_CHECKING: a cycle hidden in a
    function is still two modules that cannot be read one without the other."""
    graph = {m: edges(m, with_type_checking=True) for m in modules()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" → ".join(c) for c in cycles)


def test_services_do_not_pull_in_telegram_indirectly() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in in_("bot.services")) +
            "bad = sorted(m for m in sys.modules if m == 'telegram' or m.startswith('telegram.'))\n"
            "print(','.join(bad[:3]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"services import telegram via: {result.stdout}"
