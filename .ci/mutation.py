"""Mutation testing of the access path: break the code one small way at a time, run the tests that
should notice, and report every break they did not notice (``uvx nox -s mutation``).

Why a script of our own rather than mutmut or cosmic-ray: the targets live in two distributions of
a uv workspace (the core and ``plugins/auth``), the tests need pytest-asyncio, a database and the
plugins' entry points, and the mutants must be reproducible by hand from the report. Here each
mutant is one AST edit of one file, applied in a private copy of the work tree that is put first on
``PYTHONPATH`` (so the installed, editable distributions import the mutated copy), then the
targeted test selection runs with ``-x``: the first failure kills the mutant.

Operators: comparison flips (``==``/``!=``, ``<``/``<=``, ``in``/``not in``, ``is``/``is not``),
``and``/``or``, dropping ``not``, ``True``/``False``, negated ``if``/``while`` conditions,
``return x`` → ``return None``, a ``raise`` or a call statement removed, ``for x in xs`` → over
``xs[:1]`` (only the first), ``+``/``-``, and ``continue``/``break``.

Usage::

    python .ci/mutation.py [--jobs 2] [--only tokens] [--report docs/mutation-report.md]

Exit status 0 when the score (killed / non-equivalent mutants) reaches ``--min-score`` (90),
1 otherwise. Known equivalent mutants are listed, with the reason, in ``.ci/mutation-equivalent``
by key (``file:function:operator:source``), so they survive code that moves.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / ".ci" / "mutation-equivalent"
#: Distribution roots to put on PYTHONPATH inside a copy (the importable top-level folders).
IMPORT_ROOTS = (".", "plugins/auth", "plugins/catalog", "plugins/incident", "plugins/maintenance")
#: Seconds one mutant's test run may take before it counts as killed (a hang is noticed).
MUTANT_TIMEOUT = 300

#: Test files, fastest-to-fail first: ``-x`` stops at the first failure, so the order decides how
#: long a killed mutant takes, and only surviving mutants pay for the whole selection.
CORE_ACCESS = [
    "tests/test_access.py",
    "tests/test_batch_checks_first.py",
    "tests/test_orpc_protocol.py",
    "tests/test_documented_protocol.py",
]
AUTH = "plugins/auth/tests/"
#: What the auth plugin's authorization code is checked by: the target-relative rule, grants,
#: teams and the generated matrix.
AUTHZ_TESTS = [
    AUTH + "test_targets_every_name.py",
    AUTH + "test_resource_types.py",
    AUTH + "test_targets.py",
    AUTH + "test_grant_levels_access.py",
    AUTH + "test_teams.py",
    AUTH + "test_roles.py",
    AUTH + "test_users.py",
    AUTH + "test_applications.py",
    AUTH + "test_authorization_matrix.py",
]
SERVICE = "plugins/auth/checkstack_auth/service/"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    tests: list[str]
    #: Only mutate inside these functions (all when empty).
    functions: frozenset[str] = frozenset()
    #: Never mutate inside these functions (diagnostics, bookkeeping off the access path).
    skip_functions: frozenset[str] = frozenset()


TARGETS = [
    Target(
        "auth",
        "checkstack_core/auth.py",
        [
            "tests/test_principal.py",
            *CORE_ACCESS[:2],
            AUTH + "test_request_path.py",
            AUTH + "test_applications.py",
        ],
        skip_functions=frozenset({"__repr__"}),
    ),
    Target(
        "targets",
        SERVICE + "targets.py",
        AUTHZ_TESTS,
    ),
    Target(
        "backend",
        "plugins/auth/checkstack_auth/backend.py",
        [
            AUTH + "test_request_path.py",
            AUTH + "test_backend_facts.py",
            AUTH + "test_backend_paths.py",
            "tests/test_access.py",
            AUTH + "test_grant_levels_access.py",
            AUTH + "test_teams.py",
            AUTH + "test_applications.py",
            AUTH + "test_users.py",
        ],
        # lastUsedAt bookkeeping is not access; it has its own tests in test_applications.py.
        skip_functions=frozenset({"_note_use", "_touch", "flush", "_clear_cookie_header"}),
    ),
    Target(
        "dispatch",
        "checkstack_core/dispatch.py",
        [
            # Guarded rules in pairs, dotted ids, outputs, in-process calls; database faults.
            "tests/test_dispatch_paths.py",
            "tests/test_dispatch_faults.py",
            *CORE_ACCESS,
            "tests/test_hostile_input.py",
            # JSON's one number type: whole floats taken for ints, and only those.
            "tests/test_documented_protocol.py::TestWholeNumbers",
            # The pool, transactions and lost connections; ids named in denials.
            AUTH + "test_request_path.py",
            "tests/test_transactions.py",
            "plugins/incident/tests/test_access.py",
            "plugins/maintenance/tests/test_access.py",
        ],
        skip_functions=frozenset({"validation_issues"}),
    ),
    # The rest of the auth plugin's authorization code, helper by helper.
    Target(
        "common",
        SERVICE + "common.py",
        AUTHZ_TESTS,
        functions=frozenset({"is_superior", "missing_rules", "known_resource_types"}),
    ),
    Target(
        "teams",
        SERVICE + "teams.py",
        [AUTH + "test_teams.py", AUTH + "test_applications.py", AUTH + "test_targets.py"],
        functions=frozenset({"may_manage_membership", "assert_membership_rights", "_managed_by"}),
    ),
    Target(
        "grants",
        SERVICE + "grants.py",
        [
            AUTH + "test_resource_types.py",
            AUTH + "test_grant_levels_access.py",
            AUTH + "test_teams.py",
            AUTH + "test_targets.py",
            AUTH + "test_grant_events.py",
        ],
        functions=frozenset({"_check_resource_type", "grant", "revoke", "set_team_only"}),
    ),
    Target(
        "roles",
        SERVICE + "roles.py",
        [AUTH + "test_roles.py", AUTH + "test_users.py", AUTH + "test_applications.py"],
        functions=frozenset({"resolve_roles_to_give"}),
    ),
    Target(
        "last-admin",
        SERVICE + "users.py",
        [AUTH + "test_users.py", AUTH + "test_targets.py"],
        functions=frozenset({"_keep_an_administrator", "count_admins"}),
    ),
    Target(
        "throttle",
        SERVICE + "throttle.py",
        [AUTH + "test_throttle.py"],
    ),
    Target(
        "tokens",
        "plugins/auth/checkstack_auth/tokens.py",
        [AUTH + "test_tokens.py", AUTH + "test_applications.py"],
    ),
]

_FLIPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
}


@dataclass
class Mutant:
    target: str
    path: str
    index: int
    line: int
    function: str
    operator: str
    source: str
    status: str = "pending"  # killed, survived, timeout, equivalent
    seconds: float = 0.0
    reason: str = ""
    failed_test: str = ""
    end_line: int = 0

    @property
    def key(self) -> str:
        return f"{self.path}:{self.function}:{self.operator}:{self.source}"


@dataclass
class _Site:
    node: ast.AST
    operator: str
    function: str


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_logging(node: ast.Expr) -> bool:
    call = node.value
    if isinstance(call, ast.Await):
        call = call.value
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
        return False
    owner = call.func.value
    return isinstance(owner, ast.Name) and owner.id in {"logger", "logging", "log"}


def _sites(tree: ast.Module, target: Target) -> Iterator[_Site]:
    """Every mutation of ``tree``, in a deterministic order."""

    def visit(node: ast.AST, function: str) -> Iterator[_Site]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
            if node.name in target.skip_functions:
                return
            # Decorators and annotations are not behaviour worth mutating here.
            for statement in node.body:
                yield from visit(statement, function)
            return
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                yield from visit(statement, function)
            return
        allowed = not target.functions or function in target.functions
        if allowed and function:
            yield from _node_sites(node, function)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr_context):
                continue
            if isinstance(node, ast.AnnAssign) and child is node.annotation:
                continue
            yield from visit(child, function)

    for statement in tree.body:
        yield from visit(statement, "")


def _node_sites(node: ast.AST, function: str) -> Iterator[_Site]:
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            if type(op) in _FLIPS:
                yield _Site(node, f"compare[{position}]:{type(op).__name__}", function)
    elif isinstance(node, ast.BoolOp):
        yield _Site(node, f"boolop:{type(node.op).__name__}", function)
    elif isinstance(node, ast.BinOp) and type(node.op) in _FLIPS:
        yield _Site(node, f"binop:{type(node.op).__name__}", function)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield _Site(node, "drop-not", function)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield _Site(node, f"constant:{node.value}", function)
    elif isinstance(node, ast.If | ast.While | ast.IfExp):
        yield _Site(node, "negate-condition", function)
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield _Site(node, "return-none", function)
    elif isinstance(node, ast.Raise):
        yield _Site(node, "drop-raise", function)
    elif isinstance(node, ast.Expr) and not _is_docstring(node, None) and not _is_logging(node):
        if isinstance(node.value, ast.Call | ast.Await):
            yield _Site(node, "drop-call", function)
    elif isinstance(node, ast.For | ast.AsyncFor):
        yield _Site(node, "first-only", function)
    elif isinstance(node, ast.Continue):
        yield _Site(node, "continue-to-break", function)


def _apply(site: _Site) -> None:
    node, operator = site.node, site.operator
    if operator.startswith("compare["):
        assert isinstance(node, ast.Compare)
        position = int(operator[len("compare[") : operator.index("]")])
        node.ops[position] = _FLIPS[type(node.ops[position])]()  # type: ignore[call-overload]
    elif operator.startswith("boolop:"):
        assert isinstance(node, ast.BoolOp)
        node.op = _FLIPS[type(node.op)]()  # type: ignore[assignment]
    elif operator.startswith("binop:"):
        assert isinstance(node, ast.BinOp)
        node.op = _FLIPS[type(node.op)]()  # type: ignore[assignment]
    elif operator == "drop-not":
        assert isinstance(node, ast.UnaryOp)
        # ``not x`` becomes ``not not x``: the truth of ``x``, as if the ``not`` were dropped.
        node.operand = ast.UnaryOp(op=ast.Not(), operand=node.operand)
    elif operator.startswith("constant:"):
        assert isinstance(node, ast.Constant)
        node.value = not node.value
    elif operator == "negate-condition":
        assert isinstance(node, ast.If | ast.While | ast.IfExp)
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif operator == "return-none":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(value=None)
    elif operator in ("drop-raise", "drop-call"):
        # Replace in place by a no-op expression (the statement list keeps its shape).
        node.__class__ = ast.Expr
        node.__dict__.clear()
        node.value = ast.Constant(value=None)  # type: ignore[attr-defined]
    elif operator == "first-only":
        assert isinstance(node, ast.For | ast.AsyncFor)
        node.iter = ast.Subscript(
            value=ast.Call(func=ast.Name(id="list", ctx=ast.Load()), args=[node.iter], keywords=[]),
            slice=ast.Slice(upper=ast.Constant(value=1)),
            ctx=ast.Load(),
        )
    elif operator == "continue-to-break":
        node.__class__ = ast.Break
    else:  # pragma: no cover
        raise AssertionError(operator)


def mutants_of(target: Target) -> tuple[list[Mutant], str]:
    """The mutants of ``target`` and its source."""
    source = (ROOT / target.path).read_text()
    tree = ast.parse(source)
    found = []
    for index, site in enumerate(_sites(tree, target)):
        segment = ast.get_source_segment(source, site.node) or ""
        first_line = segment.strip().splitlines()[0] if segment.strip() else ""
        found.append(
            Mutant(
                target.name,
                target.path,
                index,
                getattr(site.node, "lineno", 0),
                site.function,
                site.operator,
                first_line[:120],
                end_line=getattr(site.node, "end_lineno", 0) or getattr(site.node, "lineno", 0),
            )
        )
    return found, source


def mutated_source(source: str, target: Target, index: int) -> str:
    tree = ast.parse(source)
    for position, site in enumerate(_sites(tree, target)):
        if position == index:
            _apply(site)
            ast.fix_missing_locations(tree)
            return ast.unparse(tree) + "\n"
    raise IndexError(index)


def roundtrip_source(source: str) -> str:
    return ast.unparse(ast.parse(source)) + "\n"


# -- running -----------------------------------------------------------------------------------


class Workspace:
    """A private copy of the work tree in which one mutant at a time is applied."""

    def __init__(self, base: Path, number: int) -> None:
        self.dir = base / f"worker-{number}"
        ignore = shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", "*.db"
        )
        shutil.copytree(ROOT, self.dir, ignore=ignore, symlinks=True)
        paths = [str(self.dir / root) for root in IMPORT_ROOTS]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("PYTEST_ADDOPTS", None)
        #: The fork server (.ci/mutation_fork.py) mutant runs go through, started on first use.
        self._fork: subprocess.Popen[str] | None = None

    def check_imports(self) -> None:
        """The copy, not the installed work tree, must be what the tests import."""
        code = (
            "import checkstack_core.dispatch as d, checkstack_auth.tokens as t;"
            "print(d.__file__); print(t.__file__)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for imported in out:
            if not imported.startswith(str(self.dir)):
                raise SystemExit(f"mutation: {imported} is imported from outside {self.dir}")

    def run_tests(
        self, tests: list[str], *, lines_out: Path | None = None, watch: Sequence[str] = ()
    ) -> tuple[bool, str, bool]:
        """(passed, first failing test, timed out). With ``lines_out``, also record which test
        runs which line of the ``watch`` files (:mod:`mutation_lines`) into that file."""
        env = self.env
        plugin: list[str] = []
        if lines_out is not None:
            plugin = ["-p", "mutation_lines"]
            env = {
                **env,
                "PYTHONPATH": os.pathsep.join([str(self.dir / ".ci"), env["PYTHONPATH"]]),
                "MUTATION_LINES_FILES": os.pathsep.join(str(self.dir / p) for p in watch),
                "MUTATION_LINES_OUT": str(lines_out),
            }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-header",
            "-o",
            "addopts=--strict-markers --import-mode=importlib",
            *plugin,
            *tests,
        ]
        if lines_out is None and hasattr(os, "fork"):
            returncode, stdout, timed_out = self._forked(command[3:])
        else:
            try:
                done = subprocess.run(
                    command,
                    cwd=self.dir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=MUTANT_TIMEOUT if lines_out is None else 6 * MUTANT_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                return False, "", True
            returncode, stdout, timed_out = done.returncode, done.stdout, False
        if timed_out:
            return False, "", True
        # The short summary's "FAILED path::test" (not a captured "ERROR    logger:..." line).
        failed = next(
            (
                line.split(" ", 1)[1].split(" - ")[0]
                for line in stdout.splitlines()
                if line.startswith(("FAILED ", "ERROR "))
                and line[len(line.split(" ")[0]) + 1 :][:1] != " "
            ),
            "",
        )
        if returncode != 0 and not failed:
            failed = f"(no test failed: pytest exit status {returncode})"
        return returncode == 0, failed, False

    def _forked(self, args: list[str]) -> tuple[int, str, bool]:
        """(exit code, output, timed out) of ``pytest args`` in a child of the fork server."""
        server = self._fork
        if server is None or server.poll() is not None:
            server = self._fork = subprocess.Popen(
                [sys.executable, str(self.dir / ".ci" / "mutation_fork.py")],
                cwd=self.dir,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert server.stdin is not None and server.stdout is not None
        out = self.dir.parent / f"{self.dir.name}.out"
        server.stdin.write(json.dumps({"args": args, "out": str(out)}) + "\n")
        server.stdin.flush()
        pid = json.loads(server.stdout.readline())["pid"]
        # A hang is noticed too: the child is killed once its time is up.
        timer = threading.Timer(MUTANT_TIMEOUT, os.kill, (pid, signal.SIGKILL))
        timer.start()
        try:
            returncode = json.loads(server.stdout.readline())["rc"]
        finally:
            timer.cancel()
        return returncode, out.read_text(), returncode == -signal.SIGKILL

    def close(self) -> None:
        if self._fork is not None and self._fork.stdin is not None:
            self._fork.stdin.close()
            self._fork.wait(timeout=30)

    def write(self, path: str, text: str) -> None:
        (self.dir / path).write_text(text)


@dataclass
class Run:
    mutants: list[Mutant] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_equivalent() -> dict[str, str]:
    known: dict[str, str] = {}
    if EQUIVALENT_FILE.exists():
        for line in EQUIVALENT_FILE.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, reason = line.partition(" # ")
                known[key.strip()] = reason.strip()
    return known


#: path (relative) → line → ids of the tests that run it, in the order they ran.
LineMap = dict[str, dict[int, list[str]]]


def line_map(base: Path, workers: list[Workspace]) -> tuple[LineMap, dict[str, float]]:
    """Merge what each worker's traced baseline recorded, with paths relative to the copy, and
    how long each test took."""
    merged: LineMap = {}
    durations: dict[str, float] = {}
    for number, worker in enumerate(workers):
        out = base / f"lines-{number}.json"
        if not out.exists():
            continue
        recorded = json.loads(out.read_text())
        durations.update(recorded["durations"])
        for path, lines in recorded["lines"].items():
            relative = str(Path(path).relative_to(worker.dir))
            for line, tests in lines.items():
                merged.setdefault(relative, {}).setdefault(int(line), []).extend(tests)
    return merged, durations


def tests_for(
    mutant: Mutant, target: Target, runs: LineMap, durations: dict[str, float] | None = None
) -> list[str]:
    """The tests of ``target``'s selection that run a line of ``mutant``: only they can notice
    it, so running them gives the whole selection's verdict. Fastest first (by the baseline's
    durations, then the selection's order): with ``-x`` the first failure ends the run, and any
    test that runs the line may be the one, so a quick one is tried before a slow one."""
    lines = runs.get(mutant.path, {})
    found: dict[str, None] = {}
    for line in range(mutant.line, max(mutant.line, mutant.end_line) + 1):
        found.update(dict.fromkeys(lines.get(line, [])))
    if "*" in found:
        # Run at import time or outside any test (mutation_lines.EVERY_TEST): all may notice.
        return list(target.tests)
    rank = {path: position for position, path in enumerate(target.tests)}
    chosen = [t for t in found if t.split("::")[0] in rank]
    took = durations or {}
    ordered = sorted(chosen, key=lambda t: (took.get(t, 0.0), rank[t.split("::")[0]]))
    # Named without their parameters: a parameter's id may differ from one run to the next
    # (values made at collection, e.g. a random secret), and pytest answers an id it cannot find
    # with a usage error, which would count as a kill. Every case of the test runs instead.
    return list(dict.fromkeys(t.split("[", 1)[0] for t in ordered))


def load_killed(path: Path) -> dict[tuple[str, int, str], str]:
    """(path, index, key) → first failing test, of the mutants an earlier run killed. The index
    and key together pin a mutant to the same file text (a changed file renumbers them)."""
    return {
        (m["path"], m["index"], Mutant(**m).key): m["failed_test"]
        for m in json.loads(path.read_text())
        if m["status"] in ("killed", "timeout")
    }


def save_json(run: Run, path: Path) -> None:
    path.write_text(json.dumps([asdict(m) for m in run.mutants], indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "2")))
    parser.add_argument("--only", action="append", default=[], help="target names (repeatable)")
    parser.add_argument("--report", default="docs/mutation-report.md")
    parser.add_argument(
        "--json", default=None, help="also write every mutant as JSON here (after each mutant)"
    )
    parser.add_argument(
        "--resume",
        default=None,
        help="a --json file of an earlier run: its killed mutants count as killed without running "
        "again (tests only get added, so a kill stays a kill); survivors run again",
    )
    parser.add_argument("--min-score", type=float, default=90.0)
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument(
        "--report-only",
        type=Path,
        action="append",
        default=[],
        help="write the report from --json files (repeatable, later ones win) instead of running; "
        "mutants they lack count as not run",
    )
    parser.add_argument("--minutes", type=float, default=None, help="with --report-only")
    args = parser.parse_args(argv)

    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    equivalent = load_equivalent()
    sources: dict[str, str] = {}
    run = Run()
    for target in targets:
        found, source = mutants_of(target)
        sources[target.name] = source
        run.mutants.extend(found)
    earlier = load_killed(Path(args.resume)) if args.resume else {}
    for mutant in run.mutants:
        if mutant.key in equivalent:
            mutant.status, mutant.reason = "equivalent", equivalent[mutant.key]
        elif (mutant.path, mutant.index, mutant.key) in earlier:
            mutant.status = "killed"
            mutant.failed_test = earlier[(mutant.path, mutant.index, mutant.key)]
    if args.report_only:
        # A run stopped early (or several --resume runs): report what its JSON decided.
        recorded = {
            (m["path"], m["index"], Mutant(**m).key): m
            for report in args.report_only  # later files win
            for m in json.loads(report.read_text())
            if m["status"] != "pending"
        }
        for mutant in run.mutants:
            old = recorded.get((mutant.path, mutant.index, mutant.key))
            if mutant.status == "pending" and old is not None:
                mutant.status, mutant.reason = old["status"], old["reason"]
                mutant.failed_test, mutant.seconds = old["failed_test"], old["seconds"]
        score = write_report(run, targets, Path(args.report), minutes=args.minutes)
        print(f"mutation: score {score:.1f} % (report: {args.report})")
        return 0 if score >= args.min_score else 1
    if args.list:
        for mutant in run.mutants:
            print(f"{mutant.path}:{mutant.line} {mutant.operator} {mutant.source}")
        print(f"{len(run.mutants)} mutants")
        return 0

    by_name = {t.name: t for t in targets}
    base = Path(tempfile.mkdtemp(prefix="checkstack-mutation-"))
    try:
        workers = [Workspace(base, n) for n in range(max(1, args.jobs))]
        workers[0].check_imports()
        # The unmutated files must pass: otherwise every mutant "dies" for nothing. Once for all
        # targets, every test file once, shared out among the workers, traced to learn which test
        # runs which line (of the files as they are: mutant lines are numbered in them).
        every_test = list(dict.fromkeys(t for target in targets for t in target.tests))
        for target in targets:
            # Mutants are written unparsed: the unparsed file must be the same program.
            compile(roundtrip_source(sources[target.name]), target.path, "exec")
        watch = [target.path for target in targets]
        with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
            baselines = list(
                pool.map(
                    lambda n: workers[n].run_tests(
                        every_test[n :: len(workers)],
                        lines_out=base / f"lines-{n}.json",
                        watch=watch,
                    ),
                    range(min(len(workers), len(every_test))),
                )
            )
        for passed, failed, _ in baselines:
            if not passed:
                print(f"mutation: baseline fails ({failed}); fix the suite first", flush=True)
                return 2
        runs, durations = line_map(base, workers)
        print(
            f"mutation: baselines pass; {len(run.mutants)} mutants, {len(workers)} workers",
            flush=True,
        )

        pending = [m for m in run.mutants if m.status == "pending"]
        free: list[Workspace] = list(workers)

        def test_one(mutant: Mutant) -> None:
            with run.lock:
                worker = free.pop()
            target = by_name[mutant.target]
            try:
                selection = tests_for(mutant, target, runs, durations)
                if not selection:
                    mutant.status, mutant.reason = "survived", "no test of the selection runs it"
                    return
                mutated = mutated_source(sources[target.name], target, mutant.index)
                worker.write(target.path, mutated)
                began = time.monotonic()
                passed, failed, timed_out = worker.run_tests(selection)
                mutant.seconds = round(time.monotonic() - began, 1)
                mutant.failed_test = failed
                mutant.status = "timeout" if timed_out else "survived" if passed else "killed"
            finally:
                worker.write(target.path, sources[target.name])
                with run.lock:
                    free.append(worker)
                report_progress(mutant)

        def report_progress(mutant: Mutant) -> None:
            with run.lock:
                done = sum(1 for m in run.mutants if m.status not in ("pending",))
                if args.json:
                    save_json(run, Path(args.json))
            print(
                f"[{done}/{len(run.mutants)}] {mutant.status:8} {mutant.path}:{mutant.line} "
                f"{mutant.operator} {mutant.source}",
                flush=True,
            )

        with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
            list(pool.map(test_one, pending))
        for worker in workers:
            worker.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    score = write_report(run, targets, Path(args.report))
    if args.json:
        save_json(run, Path(args.json))
    print(f"mutation: score {score:.1f} % (report: {args.report})")
    return 0 if score >= args.min_score else 1


def _score(mutants: list[Mutant]) -> tuple[int, int, float]:
    """(killed, decided non-equivalent, score %): mutants not run yet count for nothing."""
    counted = [m for m in mutants if m.status in ("killed", "timeout", "survived")]
    killed = sum(m.status in ("killed", "timeout") for m in counted)
    return killed, len(counted), 100.0 * killed / len(counted) if counted else 100.0


def write_report(
    run: Run, targets: list[Target], path: Path, *, minutes: float | None = None
) -> float:
    killed, counted, score = _score(run.mutants)
    if minutes is None:
        minutes = (time.monotonic() - run.started) / 60
    pending = sum(m.status == "pending" for m in run.mutants)
    lines = [
        "# Mutation report",
        "",
        f"Generated by `uvx nox -s mutation` (`.ci/mutation.py`) in {minutes:.1f} minutes.",
        "",
        f"**Score: {score:.1f} %** — {killed} killed of {counted} non-equivalent "
        f"mutants ({sum(m.status == 'equivalent' for m in run.mutants)} known equivalent"
        + (f"; **{pending} not run yet**, left out of the score" if pending else "")
        + ").",
        "",
        "| target | file | mutants | killed | survived | equivalent | not run | score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for target in targets:
        own = [m for m in run.mutants if m.target == target.name]
        own_killed, own_counted, own_score = _score(own)
        lines.append(
            f"| {target.name} | `{target.path}` | {len(own)} | {own_killed} | "
            f"{own_counted - own_killed} | "
            f"{sum(m.status == 'equivalent' for m in own)} | "
            f"{sum(m.status == 'pending' for m in own)} | "
            + (f"{own_score:.1f} %" if own_counted else "—")
            + " |"
        )
    survived = [m for m in run.mutants if m.status == "survived"]
    lines += ["", "## Surviving mutants", ""]
    if not survived:
        lines.append("None.")
    for mutant in survived:
        lines.append(
            f"- `{mutant.path}:{mutant.line}` in `{mutant.function}`: {mutant.operator} on "
            f"`{mutant.source}` — reason: "
            + (mutant.reason or "_to be explained (equivalent, or a test to add)_")
        )
    equivalent = [m for m in run.mutants if m.status == "equivalent"]
    lines += ["", "## Known equivalent mutants", ""]
    if not equivalent:
        lines.append("None.")
    for mutant in equivalent:
        lines.append(
            f"- `{mutant.path}:{mutant.line}` in `{mutant.function}`: {mutant.operator} on "
            f"`{mutant.source}` — {mutant.reason}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return score


if __name__ == "__main__":
    sys.exit(main())
