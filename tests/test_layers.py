"""Services and storage never import telegram; storage never imports bot or handlers."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_services_do_not_import_telegram():
    offenders = [p.name for p in (ROOT / "bot" / "services").glob("*.py")
                 if "telegram" in imports(p)]
    assert not offenders, offenders


def test_storage_speaks_only_sql():
    offenders = [p.name for p in (ROOT / "storage").rglob("*.py")
                 if imports(p) & {"telegram", "bot", "handlers"}]
    assert not offenders, offenders


def test_handlers_do_not_write_sql():
    offenders = [p.name for p in (ROOT / "handlers").glob("*.py")
                 if any(word in p.read_text(encoding="utf-8")
                        for word in ("SELECT ", "INSERT ", "UPDATE ", "DELETE FROM"))]
    assert not offenders, offenders


def test_handlers_reach_the_store_only_through_services():
    """Handlers parse, call a service and render: reading or writing the store (or opening a
    transaction) there would put rules beside the services that hold them."""
    offenders = [p.name for p in (ROOT / "handlers").glob("*.py")
                 if ".store." in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_services_do_not_pull_in_telegram_indirectly():
    import subprocess
    import sys

    modules = sorted(f"bot.services.{p.stem}" for p in (ROOT / "bot" / "services").glob("*.py")
                     if p.stem != "__init__")
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "bad = sorted(m for m in sys.modules if m == 'telegram' or m.startswith('telegram.'))\n"
            "print(','.join(bad[:3]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"services import telegram via: {result.stdout}"
