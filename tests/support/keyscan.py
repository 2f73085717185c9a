"""Find every catalog key the source passes to a text helper, through the AST.

The helpers are `t`, `tn` (plural), `plain` (report files), `Refused` and `Key`, and every
function that hands one of its own parameters on to a helper as the key (`reply`, …): found
by following calls until nothing new turns up. A key argument must be one the reader can
see: a string literal, a choice between literals (`"a" if x else "b"`), a table of literals
(`TITLE[kind]` or `views.TITLE[kind]`: a dict defined at the top of a module, imported from one
or reached through an imported module), a constant of the module, a loop over literals or over
such a table, or the helper's own key parameter handed on.

Keys carried in data are declared so: a class field (a table's row, an answer) or a function's
return annotated with `CatalogKey` (bot/i18n.py). Every value written to such a field (each
constructor argument and the field's default) and every value such a function returns must be
one of the kinds above; reading the field (`step.reporter`, `tap.key`, `row.refusals.get(s)`)
or calling the function is then trusted, as its keys were counted where they were written.
Anything else is reported as unresolved.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# name → (the key's parameter, its position); Key: a value of a Refused, to be translated
SEEDS = {"t": ("key", 1), "tn": ("key", 1), "plain": ("key", 1), "Refused": ("key", 0),
         "Key": ("key", 0)}
PLURAL_HELPERS = {"tn"}
# keys that travel inside a Refused (its key, its Key values) to where they are read: checked
# where the Refused or Key is made. (function, argument as written)
CARRIED = {("refusal_text", "refusal.key"), ("refusal_text", "v")}
KEY_TYPE = "CatalogKey"


@dataclass
class Helper:
    name: str
    param: str          # the key's parameter
    position: int       # its position among the arguments of a call (self not counted)
    plural: bool


@dataclass
class Scan:
    helpers: dict[str, Helper] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    plural_keys: set[str] = field(default_factory=set)
    unresolved: list[tuple[str, str]] = field(default_factory=list)   # (file:line, source)


@dataclass
class Module:
    path: str
    tree: ast.Module
    tables: dict[str, ast.expr]        # top-level names bound to a dict/tuple/list literal
    imports: dict[str, tuple[str, str]]   # local name → (module, name)


@dataclass
class Carrier:
    """A class with fields that hold catalog keys."""

    module: Module
    fields: list[str]                  # in the order its constructor takes them
    keyed: dict[str, ast.expr | None]  # key field → its default


def _declares_key(annotation: ast.expr | None) -> bool:
    return annotation is not None and any(
        isinstance(n, ast.Name) and n.id == KEY_TYPE for n in ast.walk(annotation))


def _carriers(modules: dict[str, Module]) -> dict[str, Carrier]:
    carriers = {}
    for module in modules.values():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.ClassDef):
                continue
            fields = [f for f in node.body if isinstance(f, ast.AnnAssign)
                      and isinstance(f.target, ast.Name) and "ClassVar" not in
                      ast.unparse(f.annotation)]
            keyed = {f.target.id: f.value for f in fields
                     if isinstance(f.target, ast.Name) and _declares_key(f.annotation)}
            if keyed:
                carriers[node.name] = Carrier(
                    module, [f.target.id for f in fields if isinstance(f.target, ast.Name)],
                    keyed)
    return carriers


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _default(node: ast.expr) -> ast.expr | None:
    """A field's default as written: `field(default=x)` or `field(default_factory=lambda: x)`
    stand for x."""
    if isinstance(node, ast.Call) and _name(node) == "field":
        for keyword in node.keywords:
            if keyword.arg == "default":
                return keyword.value
            if keyword.arg == "default_factory" and isinstance(keyword.value, ast.Lambda):
                return keyword.value.body
        return None
    return node


def _params(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [a.arg for a in function.args.posonlyargs + function.args.args]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _key_argument(call: ast.Call, helper: Helper) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == helper.param:
            return keyword.value
    if len(call.args) > helper.position and not any(
            isinstance(a, ast.Starred) for a in call.args[:helper.position + 1]):
        return call.args[helper.position]
    return None


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _enclosing(tree: ast.Module) -> dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Each node → its innermost function."""
    owner: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for function in sorted(_functions(tree), key=lambda f: f.lineno):   # outer ones first
        for node in ast.walk(function):
            owner[node] = function
    return owner


def _load(root: Path, folders: tuple[str, ...]) -> dict[str, Module]:
    modules = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), relative)
            tables: dict[str, ast.expr] = {}
            imports: dict[str, tuple[str, str]] = {}
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                        isinstance(node.targets[0], ast.Name):
                    tables[node.targets[0].id] = node.value
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                        and node.value is not None:
                    tables[node.target.id] = node.value
                elif isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        imports[alias.asname or alias.name] = (node.module, alias.name)
            dotted = relative[:-3].replace("/", ".").removesuffix(".__init__")
            modules[dotted] = Module(relative, tree, tables, imports)
    return modules


class _Resolver:
    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules
        self.carried = {name for carrier in _carriers(modules).values()
                        for name in carrier.keyed}
        self.returning = {f.name for module in modules.values()
                          for f in _functions(module.tree) if _declares_key(f.returns)}

    def module_of(self, module: Module, name: str) -> Module | None:
        """The module an imported name stands for (`from bot.services import views`)."""
        if name in module.imports:
            return self.modules.get(".".join(module.imports[name]))
        return None

    def table(self, module: Module, name: str) -> ast.expr | None:
        if name in module.tables:
            return module.tables[name]
        if name in module.imports:
            source, original = module.imports[name]
            if source in self.modules:
                return self.table(self.modules[source], original)
        return None

    def subscripted(self, node: ast.expr, module: Module) -> ast.expr | None:
        """The table `TABLE` or `views.TABLE` names."""
        if isinstance(node, ast.Name):
            return self.table(module, node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            source = self.module_of(module, node.value.id)
            return self.table(source, node.attr) if source is not None else None
        return None

    def is_carried(self, node: ast.expr) -> bool:
        """A read of a key field: `step.reporter`, `step.refusals[s]`, `step.refusals.get(s)`."""
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "get":
            node = node.func.value
        return isinstance(node, ast.Attribute) and node.attr in self.carried

    def literals(self, node: ast.expr) -> set[str] | None:
        """The strings a literal, or a dict/tuple/list of literals, holds (dict: its values)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Constant) and node.value is None:
            return set()
        if isinstance(node, ast.Call) and _name(node) == "MappingProxyType" and \
                len(node.args) == 1:
            return self.literals(node.args[0])
        items: list[ast.expr | None]
        if isinstance(node, ast.Dict):
            items = list(node.values)
        elif isinstance(node, ast.Tuple | ast.List):
            items = list(node.elts)
        else:
            return None
        found: set[str] = set()
        for item in items:
            inner = self.literals(item) if item is not None else None
            if inner is None:
                return None
            found |= inner
        return found

    def keys(self, node: ast.expr, module: Module,
             function: ast.FunctionDef | ast.AsyncFunctionDef | None,
             helper_params: set[str]) -> set[str] | None:
        """The keys `node` may be, or None when it cannot be told from the source."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if _is_none(node):
            return set()                # a key field or a return that holds no key
        if isinstance(node, ast.IfExp):
            body = self.keys(node.body, module, function, helper_params)
            other = self.keys(node.orelse, module, function, helper_params)
            return None if body is None or other is None else body | other
        if isinstance(node, ast.Subscript):
            table = self.subscripted(node.value, module)
            if isinstance(table, ast.Dict):
                return self.literals(table)
        if self.is_carried(node):
            if isinstance(node, ast.Call) and len(node.args) == 2:   # its default
                return self.keys(node.args[1], module, function, helper_params)
            return set()                # counted where written
        if isinstance(node, ast.Call) and _name(node) in self.returning:
            return set()                # its returns are checked
        if isinstance(node, ast.Dict) or isinstance(node, ast.Call) and \
                _name(node) == "MappingProxyType":
            return self.literals(node)  # a key field that maps to keys
        if isinstance(node, ast.Name):
            if node.id in helper_params:
                return set()            # handed on: its callers are checked
            local = self._local(node.id, module, function, helper_params)
            if local is not None:
                return local
            constant = self.table(module, node.id)
            return None if constant is None else \
                self.keys(constant, module, None, set())
        return None

    def _local(self, name: str, module: Module,
               function: ast.FunctionDef | ast.AsyncFunctionDef | None,
               helper_params: set[str]) -> set[str] | None:
        """A name bound in the function: by assignments, or as a loop's (or comprehension's)
        variable over literals."""
        if function is None:
            return None
        found: set[str] = set()
        bound = False
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == name for t in node.targets):
                value = self.keys(node.value, module, function, helper_params)
                if value is None:
                    return None
                found, bound = found | value, True
            elif isinstance(node, ast.For | ast.comprehension):
                values = self._loop(name, node.target, node.iter, module)
                if values is False:
                    continue
                if values is None:
                    return None
                found, bound = found | values, True
        return found if bound else None

    def _loop(self, name: str, target: ast.expr, iterable: ast.expr,
              module: Module) -> set[str] | Literal[False] | None:
        """The strings a loop binds to `name`; False when it does not bind it."""
        if isinstance(iterable, ast.Name):
            iterable = self.table(module, iterable.id) or iterable
        if isinstance(target, ast.Name):
            return (self.literals(iterable) if target.id == name else False)
        if isinstance(target, ast.Tuple):
            places = [i for i, e in enumerate(target.elts)
                      if isinstance(e, ast.Name) and e.id == name]
            if not places:
                return False
            if not isinstance(iterable, ast.Tuple | ast.List):
                return None
            found: set[str] = set()
            for row in iterable.elts:
                if not isinstance(row, ast.Tuple) or len(row.elts) != len(target.elts):
                    return None
                value = self.literals(row.elts[places[0]])
                if value is None:
                    return None
                found |= value
            return found
        return False


def _discover(modules: dict[str, Module]) -> dict[str, Helper]:
    """The seeds, and every function that hands a parameter on to a helper as its key."""
    helpers = {name: Helper(name, param, position, name in PLURAL_HELPERS)
               for name, (param, position) in SEEDS.items()}
    changed = True
    while changed:
        changed = False
        for module in modules.values():
            for function in _functions(module.tree):
                if function.name in helpers:
                    continue
                params = _params(function)
                for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                    helper = helpers.get(_name(call) or "")
                    argument = _key_argument(call, helper) if helper else None
                    if helper and isinstance(argument, ast.Name) and argument.id in params:
                        helpers[function.name] = Helper(function.name, argument.id,
                                                        params.index(argument.id), helper.plural)
                        changed = True
                        break
    return helpers


def _written_keys(modules: dict[str, Module]) -> \
        list[tuple[Module, ast.expr, ast.FunctionDef | ast.AsyncFunctionDef | None]]:
    """Every value written to a key field, or returned as a key, with where it is."""
    written: list[tuple[Module, ast.expr, ast.FunctionDef | ast.AsyncFunctionDef | None]] = []
    carriers = _carriers(modules)
    for carrier in carriers.values():
        for default in carrier.keyed.values():
            value = _default(default) if default is not None else None
            if value is not None:
                written.append((carrier.module, value, None))
    for module in modules.values():
        owner = _enclosing(module.tree)
        for call in (n for n in ast.walk(module.tree) if isinstance(n, ast.Call)):
            made = carriers.get(_name(call) or "")
            if made is None:
                continue
            given = dict(zip(made.fields, call.args, strict=False))
            given |= {k.arg: k.value for k in call.keywords if k.arg is not None}
            written += [(module, value, owner.get(call)) for name, value in given.items()
                        if name in made.keyed]
        for function in _functions(module.tree):
            if _declares_key(function.returns):
                written += [(module, node.value, function) for node in ast.walk(function)
                            if isinstance(node, ast.Return) and node.value is not None]
    return written


def scan(root: Path, folders: tuple[str, ...]) -> Scan:
    modules = _load(root, folders)
    result = Scan(helpers=_discover(modules))
    resolver = _Resolver(modules)
    for module, value, function in _written_keys(modules):
        keys = resolver.keys(value, module, function, set())
        if keys is None:
            result.unresolved.append((f"{module.path}:{value.lineno}", ast.unparse(value)))
        else:
            result.keys |= keys
    for module in modules.values():
        owner = _enclosing(module.tree)
        for call in (n for n in ast.walk(module.tree) if isinstance(n, ast.Call)):
            helper = result.helpers.get(_name(call) or "")
            if helper is None:
                continue
            argument = _key_argument(call, helper)
            if argument is None:
                continue
            function = owner.get(call)
            if function is not None and (function.name, ast.unparse(argument)) in CARRIED:
                continue
            mine = result.helpers.get(function.name) if function is not None else None
            handed_on = {mine.param} if mine is not None else set()
            keys = resolver.keys(argument, module, function, handed_on)
            if keys is None:
                result.unresolved.append((f"{module.path}:{call.lineno}",
                                          ast.unparse(argument)))
                continue
            result.keys |= keys
            if helper.plural:
                result.plural_keys |= keys
    return result
