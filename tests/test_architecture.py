"""Architecture rules, read from the source with `ast` (nothing here imports the apps).

Layers, lowest first; an app may import itself and lower layers, never a higher layer or a
sibling of its own layer:

    accounts (0) <- uploads (1) <- hashing (2) <- review (3) <- api, chatbot (4)

moderation_site.admin, .bulk, .errors, .http, .logs, .metrics and .registry are a base layer any app
may import;
any other moderation_site module (settings, urls, celery, ...) sits above the apps and is
off limits.

Also: no first-party import inside a function (apart from `if TYPE_CHECKING:` blocks and
Django's AppConfig.ready() in apps.py), no import cycle between first-party modules, and no
machine-specific index or wheel-folder lines in requirements/.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

LAYERS = {"accounts": 0, "uploads": 1, "hashing": 2, "review": 3, "api": 4, "chatbot": 4}
PROJECT = "moderation_site"
PROJECT_BASE = {
    f"{PROJECT}.{name}"
    for name in ("admin", "bulk", "errors", "http", "logs", "metrics", "registry")
}
FIRST_PARTY = {*LAYERS, PROJECT}

LAYER_ADVICE = (
    "Layers, lowest first: accounts(0) <- uploads(1) <- hashing(2) <- review(3) <- api, "
    "chatbot(4). An app may import its own modules, apps of lower layers and "
    + ", ".join(sorted(PROJECT_BASE))
    + ". To fix one: move the code both need down into the importing app or a lower one, or "
    "turn the dependency around (the higher app calls down, passes the object in, or listens "
    "to a signal the lower app sends)."
)
FUNCTION_ADVICE = (
    "Move each to the top of its module. If that makes an import cycle, break the cycle "
    "(see test_no_import_cycles_between_modules) instead of hiding it in a function. "
    "Allowed: type-only imports under `if TYPE_CHECKING:`, and signal wiring in "
    "AppConfig.ready() in apps.py."
)
CYCLE_ADVICE = (
    "Break one edge of each: move the piece both modules need into a third module they can "
    "both import, or pass it in as an argument. Edges come from module-level imports only."
)


@dataclass(frozen=True)
class Import:
    path: str  # file, relative to the repository
    line: int
    statement: str  # as written, e.g. "from .models import Policy"
    targets: tuple[str, ...]  # absolute first-party or third-party modules it names
    function: str | None  # the enclosing function, None at module level
    type_checking: bool  # under `if TYPE_CHECKING:`
    in_ready: bool  # inside an AppConfig.ready() method of an apps.py

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Module:
    name: str
    path: str
    is_package: bool
    imports: list[Import] = field(default_factory=list)


def module_name(path: str) -> tuple[str, bool]:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(module: str | None, level: int, name: str, is_package: bool) -> str | None:
    """The absolute module of `from <level dots><module> import ...` written in `name`."""
    if level == 0:
        return module
    package = name.split(".") if is_package else name.split(".")[:-1]
    if level - 1 > len(package) - 1:
        return None  # beyond the top-level package: Python refuses it too
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, mod: Module, known: set[str] | None):
        self.mod = mod
        self.known = known
        self.functions: list[str] = []
        self.classes: list[str] = []
        self.type_checking = 0
        self.ready = 0

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        is_ready = (
            not self.functions
            and bool(self.classes)
            and node.name == "ready"
            and Path(self.mod.path).name == "apps.py"
        )
        self.functions.append(node.name)
        self.ready += is_ready
        self.generic_visit(node)
        self.ready -= is_ready
        self.functions.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _record(self, node: ast.stmt, targets: list[str]) -> None:
        self.mod.imports.append(
            Import(
                path=self.mod.path,
                line=node.lineno,
                statement=ast.unparse(node),
                targets=tuple(targets),
                function=".".join(self.classes[-1:] + self.functions) if self.functions else None,
                type_checking=self.type_checking > 0,
                in_ready=self.ready > 0,
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        self._record(node, [alias.name for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _absolute(node.module, node.level, self.mod.name, self.mod.is_package)
        if base is None:
            return
        targets = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            # `from package import name` imports the submodule when there is one; the
            # project's base modules count by name even before they exist on disk.
            if (self.known is not None and sub in self.known) or sub in PROJECT_BASE:
                targets.append(sub)
            else:
                targets.append(base)
        self._record(node, list(dict.fromkeys(targets)))


def parse(path: str, source: str, known: set[str] | None = None) -> Module:
    """The imports of one file; `known` names the first-party modules, to spot submodules."""
    name, is_package = module_name(path)
    mod = Module(name=name, path=path, is_package=is_package)
    _Collector(mod, known).visit(ast.parse(source, filename=path))
    return mod


def parse_all(sources: dict[str, str]) -> dict[str, Module]:
    """Every file of {relative path: source}, keyed by module name."""
    known = {module_name(path)[0] for path in sources}
    modules = [parse(path, source, known) for path, source in sources.items()]
    return {mod.name: mod for mod in modules}


def read_sources(repo: Path = REPO) -> dict[str, str]:
    """Every .py file of the apps and of moderation_site, migrations left out."""
    sources = {}
    for top in sorted(FIRST_PARTY):
        folder = repo / top
        if not folder.is_dir():
            continue  # api/ and chatbot/ do not exist yet
        for file in sorted(folder.rglob("*.py")):
            rel = file.relative_to(repo)
            if "migrations" in rel.parts:
                continue
            sources[rel.as_posix()] = file.read_text(encoding="utf-8")
    return sources


def _top(module: str) -> str:
    return module.split(".")[0]


def _first_party(module: str) -> bool:
    return _top(module) in FIRST_PARTY


def _is_app_module(module: str) -> bool:
    return _top(module) in LAYERS


# --- the checks, each returning the offences as lines a person can act on ---------------


def layer_violations(modules: dict[str, Module]) -> list[str]:
    found = []
    for mod in modules.values():
        if not _is_app_module(mod.name):
            continue
        app, layer = _top(mod.name), LAYERS[_top(mod.name)]
        for imp in mod.imports:
            for target in imp.targets:
                other = _top(target)
                if other == app or not _first_party(target):
                    continue
                if other == PROJECT:
                    if not any(target == b or target.startswith(b + ".") for b in PROJECT_BASE):
                        found.append(
                            f"{imp.where}: `{imp.statement}` — {app} imports {target}, a project "
                            "module above the apps (not admin, errors, http or registry): move "
                            f"what {app} needs into one of those or into {app}"
                        )
                elif LAYERS[other] >= layer:
                    kind = "a sibling of the same layer" if LAYERS[other] == layer else "upward"
                    found.append(
                        f"{imp.where}: `{imp.statement}` — {app} (layer {layer}) imports "
                        f"{target} (layer {LAYERS[other]}): {kind}"
                    )
    return found


def function_level_imports(modules: dict[str, Module]) -> list[str]:
    found = []
    for mod in modules.values():
        if not _is_app_module(mod.name):
            continue
        for imp in mod.imports:
            if imp.function is None or imp.type_checking or imp.in_ready:
                continue
            first_party = [t for t in imp.targets if _first_party(t)]
            if first_party:
                found.append(f"{imp.where}: `{imp.statement}` inside {imp.function}()")
    return found


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, Import]]:
    """module -> {imported first-party module: the import}, for imports run at import time."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for mod in modules.values():
        for imp in mod.imports:
            if imp.function is not None or imp.type_checking:
                continue
            for target in imp.targets:
                # `import a.b.c` where only a.b is ours on disk: the nearest existing module.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != mod.name:
                    graph[mod.name].setdefault(target, imp)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:  # recursion depth is bounded by the number of modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [c for c in components if len(c) > 1]


def _shortest_cycle(graph: dict[str, dict[str, Import]], members: list[str]) -> list[str]:
    inside = set(members)
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return paths[node] + [start]
            if nxt in inside and nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start} in {members}")  # cannot happen in an SCC


def import_cycles(modules: dict[str, Module]) -> list[str]:
    graph = import_graph(modules)
    found = []
    for members in _strongly_connected(graph):
        cycle = _shortest_cycle(graph, members)
        steps = "\n".join(
            f"      {a} -> {b}   ({graph[a][b].where}: `{graph[a][b].statement}`)"
            for a, b in zip(cycle, cycle[1:])
        )
        knot = ", ".join(members)
        tangled = f"\n      all modules in this knot: {knot}" if len(members) > 2 else ""
        found.append(f"{' -> '.join(cycle)}\n{steps}{tangled}")
    return found


def _fail_if(found: list[str], title: str, advice: str) -> None:
    if found:
        listing = "\n  ".join(found)
        pytest.fail(f"{len(found)} {title}:\n  {listing}\n{advice}", pytrace=False)


# --- the tests ---------------------------------------------------------------------------


def _modules() -> dict[str, Module]:
    return parse_all(read_sources())


def test_apps_import_only_downward():
    _fail_if(layer_violations(_modules()), "import(s) break the layers", LAYER_ADVICE)


def test_no_first_party_imports_inside_functions():
    found = function_level_imports(_modules())
    _fail_if(found, "first-party import(s) inside functions", FUNCTION_ADVICE)


def test_no_import_cycles_between_modules():
    _fail_if(import_cycles(_modules()), "import cycle(s) between modules", CYCLE_ADVICE)


def test_the_checker_reads_the_apps():
    sources = read_sources()
    app_files = [path for path in sources if path.split("/")[0] in LAYERS]
    assert len(app_files) > 20, f"read only {len(app_files)} app files under {REPO}"
    assert all(path.split("/")[0] in FIRST_PARTY for path in sources)
    assert not any("/migrations/" in p for p in sources)


def test_the_checker_flags_what_it_should():
    modules = parse_all(
        {
            "accounts/__init__.py": "",
            "accounts/fake.py": (
                "from review.models import Policy\n"  # upward
                "from moderation_site.http import wants_json\n"  # base layer: fine
                "from moderation_site import settings\n"  # project module: not fine
                "from . import other\n"
                "def f():\n"
                "    from .other import thing\n"  # function level
                "if TYPE_CHECKING:\n"
                "    from .other import Thing\n"  # type-only: fine
            ),
            "accounts/other.py": "from accounts import fake\n",  # cycle with fake
            "accounts/apps.py": (
                "class C:\n    def ready(self):\n        from . import signals\n"  # fine
            ),
            "api/views.py": "import chatbot.views\n",  # sibling
            "chatbot/views.py": "",
            "review/__init__.py": "",
            "review/models.py": "from accounts import roles\n",  # downward: fine
        }
    )
    layers = layer_violations(modules)
    assert [line.split(":")[:2] for line in layers] == [
        ["accounts/fake.py", "1"],
        ["accounts/fake.py", "3"],
        ["api/views.py", "1"],
    ], layers
    assert "upward" in layers[0] and "sibling" in layers[2]

    functions = function_level_imports(modules)
    assert [line.split(" ")[0] for line in functions] == ["accounts/fake.py:6:"], functions

    cycles = import_cycles(modules)
    assert len(cycles) == 1 and cycles[0].startswith("accounts.fake -> accounts.other"), cycles
    assert import_graph(modules)["accounts.fake"].keys() >= {"accounts.other"}


def test_requirements_have_no_machine_specific_lines():
    files = sorted((REPO / "requirements").glob("*.txt")) + sorted(
        (REPO / "requirements").glob("*.in")
    )
    assert files, "no requirements/*.txt or *.in found"
    options = ("--extra-index-url", "--index-url", "--find-links", "-f ", "-i ")
    found = []
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if text.startswith(options) or "file://" in text:
                found.append(f"{file.relative_to(REPO)}:{number}: {text}")
    _fail_if(
        found,
        "machine-specific line(s) in requirements/",
        "Give package indexes and wheel folders to pip where it runs instead (command line, "
        "PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS, pip.conf), so the files work on any machine.",
    )


def _pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            found[name.split("[")[0].lower()] = version
    return found


def test_the_installed_requirements_pin_every_runtime_requirement():
    """`make install` installs requirements/dev.txt alone (compiled from dev.in, which
    includes base.in): a package pinned in base.txt but missing from dev.txt is in no venv
    the Makefile makes, and the first import of it stops the server."""
    runtime = _pins(REPO / "requirements" / "base.txt")
    installed = _pins(REPO / "requirements" / "dev.txt")
    differ = [
        f"{name}=={version} (dev.txt: {installed.get(name, 'missing')})"
        for name, version in sorted(runtime.items())
        if installed.get(name) != version
    ]
    _fail_if(
        differ,
        "runtime pin(s) missing or different in requirements/dev.txt",
        "Add each base.txt pin to dev.txt with the same version.",
    )
