"""The CEL evaluator process: compiles and runs policy expressions for its parent.

The CEL binding has no cost limit, and an expression that runs cannot be stopped from
Python: the Rust runtime holds the interpreter lock and a thread cannot be killed. So
every expression is compiled and run here, in a child process that the parent
(:mod:`cloudsync.policy.budget`) kills when a budget is spent. This module imports
nothing of cloudsync but the pipe's framing, and of the CEL package only its compiled
extension (see :func:`_cel_extension`), so the child starts in a few tens of milliseconds.

Protocol (length-prefixed pickles over the child's stdin and stdout): the parent sends
``("job", setup, tasks)``; the child answers ``("ready",)`` once the setup's documents are in a CEL context (or
``("setup_failed", why)``), then ``("done", i, result)`` for each task in order. A later
``("more", setup, tasks)`` adds the setup's columns to the job's documents (the plan's
changes, sent once the plan exists) and is answered the same way.

How a policy stays fast: the binding rebuilds its environment whenever a variable
changes, so swapping the document per evaluation would copy everything each time.
Instead every document goes into one context built once (``cs__S`` secrets,
``cs__Ts``/``cs__Tt``/``cs__Tc``/``cs__Tr`` the secret, target, change and remote of each
secret × target entry, ``cs__TG`` targets, ``cs__P`` parameters), and each policy runs
as a batch program, ``cs__chunk.filter(cs__i, !(match ? rule : true))``, over chunks of
indices that arrive through the variable resolver (which does not rebuild anything).
When a batch raises, its documents are judged one by one and each failing one says why.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import signal
import sys
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from cloudsync.policy.frames import read_frame, write_frame

if TYPE_CHECKING:
    import cel


def _cel_extension() -> Any:
    """The ``cel`` package's Rust extension, without running the package's ``__init__``.

    ``import cel`` also imports the package's own command-line tool (typer, rich,
    prompt_toolkit, pygments): ~0.2 s of CPU per evaluator start, for nothing this module
    calls. The evaluator needs ``compile`` and ``Context``, both in the extension
    ``cel.cel``; the package is entered as a bare namespace so only the extension loads.
    Where the package was already imported (tests in one process), it is used as is.
    """
    if "cel" not in sys.modules:
        spec = importlib.util.find_spec("cel")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("the CEL runtime (package common-expression-language) is not installed")
        package = types.ModuleType("cel")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["cel"] = package
    return importlib.import_module("cel.cel")


_cel = _cel_extension()

CHUNK = 128  # documents per batch: bounds CEL's quadratic filter cost when many violate
# Never swallowed while failing closed (a pyo3 PanicException derives from BaseException).
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


def describe(exc: BaseException) -> str:
    """An exception as one short line."""
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}"[:160] if exc.args else "no such key"
    first = (str(exc).splitlines() or [""])[0].strip()
    if len(first) > 160:
        first = first[:157] + "..."
    name = exc.__class__.__name__
    return f"{name}: {first}" if first else name


def compile_source(source: str) -> cel.Program:
    program: cel.Program = _cel.compile(source)
    return program


# --- load-time checks ----------------------------------------------------------------------


def check(source: str, doc: dict[str, Any] | None) -> tuple[str, ...]:
    """Compile ``source`` and run it on a sample ``doc``.

    ``("syntax", text)``; ``("value", type name)``; ``("error", exception class, text)``;
    ``("compiled",)`` when no document was given.
    """
    try:
        program = compile_source(source)
    except ValueError as exc:
        return ("syntax", str(exc))
    if doc is None:
        return ("compiled",)
    try:
        result = program.execute(_cel.Context(doc))
    except BaseException as exc:
        if isinstance(exc, FATAL):
            raise
        return ("error", exc.__class__.__name__, str(exc))
    return ("value", type(result).__name__)


# --- policy evaluation ---------------------------------------------------------------------


def _context(constants: Mapping[str, Any], resolve: Callable[[str], Any]) -> cel.Context:
    ctx: cel.Context = _cel.Context()
    for name, value in constants.items():
        ctx.add_variable(name, value)
    ctx.set_variable_resolver(resolve)
    return ctx


class Runner:
    """One job's documents in CEL contexts, and the policies run over them."""

    def __init__(self, setup: Mapping[str, Any]) -> None:
        self.constants: dict[str, Any] = dict(setup["constants"])
        self.secrets: list[dict[str, Any]] = setup["secrets"]
        self.targets: list[dict[str, Any]] = setup["targets"]
        self.columns: dict[str, list[Any]] = setup["columns"]
        self.params: list[dict[str, Any]] = setup["params"]
        self.batch_input: dict[str, Any] = {}
        self.batch = _context({**self.constants, **self.columns, "cs__S": self.secrets, "cs__TG": self.targets,
                               "cs__P": self.params}, self.batch_input.get)
        self.single_input: dict[str, Any] = {}
        self.single: cel.Context | None = None  # built on first need: it converts the constants again

    def extend(self, setup: Mapping[str, Any]) -> None:
        """Add columns (the plan's changes and remotes) to the documents already converted."""
        for name, column in setup.get("columns", {}).items():
            self.columns[name] = column
            self.batch.add_variable(name, column)

    def policy(self, spec: Mapping[str, Any]) -> dict[int, str]:
        """Items (secret or entry indices) whose rule is not true: "" when false, else why."""
        per_target: bool = spec["per_target"]
        count = len(self.columns["cs__Ts"]) if per_target else len(self.secrets)
        try:
            batch = compile_source(spec["batch"])
        except ValueError:  # pragma: no cover - the rewrite keeps valid CEL valid; judge one by one if not
            batch = None
        programs = {part: compile_source(spec[part]) for part in ("match", "rule") if spec[part] is not None}
        found: dict[int, str] = {}
        for lo in range(0, count, CHUNK):
            chunk = list(range(lo, min(lo + CHUNK, count)))
            failing = self._batch(batch, chunk)
            if failing is not None:
                found.update(dict.fromkeys(failing, ""))
                continue
            for item in chunk:  # the batch raised: judge its documents one by one
                outcome = self._single(programs, item, per_target, spec["k"])
                if outcome is not None:
                    found[item] = outcome
        return found

    def _batch(self, program: cel.Program | None, chunk: list[int]) -> list[int] | None:
        if program is None:
            return None
        self.batch_input["cs__chunk"] = chunk
        try:
            failing = program.execute(self.batch)
        except BaseException as exc:
            if isinstance(exc, FATAL):
                raise
            return None
        return list(failing)

    def _variables(self, item: int, per_target: bool, k: int) -> dict[str, Any]:
        params = dict(self.params[k])
        if not per_target:
            return {"secret": self.secrets[item], "params": params}
        cols = self.columns
        # A policy that reads neither change nor remote may run before the plan gives those columns.
        changes, remotes = cols.get("cs__Tc"), cols.get("cs__Tr")
        return {"secret": self.secrets[cols["cs__Ts"][item]], "target": self.targets[cols["cs__Tt"][item]],
                "change": changes[item] if changes is not None else None,
                "remote": remotes[item] if remotes is not None else None, "params": params}

    def _single(self, programs: Mapping[str, cel.Program], item: int, per_target: bool, k: int) -> str | None:
        """One document: None when compliant or not matched; "" when the rule is false; else why it failed."""
        if self.single is None:
            self.single = _context({**self.constants, "change": None, "remote": None}, self.single_input.get)
        self.single_input.clear()
        self.single_input.update(self._variables(item, per_target, k))
        part = "match"
        try:
            if "match" in programs:
                matched = programs["match"].execute(self.single)
                if matched is False:
                    return None
                if matched is not True:
                    return f"its match gave a {type(matched).__name__} value, not true or false"
            part = "rule"
            result = programs["rule"].execute(self.single)
        except BaseException as exc:
            if isinstance(exc, FATAL):
                raise
            return f"its {part} failed: {describe(exc)}"
        if result is True:
            return None
        if result is False:
            return ""
        return f"its rule gave a {type(result).__name__} value, not true or false"


# --- the child's loop ----------------------------------------------------------------------


def _confine(memory_mb: int) -> BinaryIO:
    """Ignore Ctrl-C (the parent ends this process), write nothing stray, cap the address space.

    Returns the stream that answers go to: the original stdout, moved to another
    descriptor, so nothing printed (nor a Rust abort message on stderr) mixes with them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        with open("/proc/self/statm", encoding="ascii") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = in_use + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    except (ImportError, OSError, ValueError):  # pragma: no cover - no /proc or no RLIMIT_AS (macOS, Windows)
        pass
    return answers


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer jobs until the parent closes the pipe (or kills this process)."""
    # Unpickling a job's documents allocates hundreds of thousands of containers, and the
    # cyclic collector walks them all again and again on the way (0.4 s of 0.42 s for the
    # documents of 10,000 secrets). Jobs make no cycles worth waiting for: the collector
    # runs once as each job starts instead. A job's documents stay until the next job, since
    # a later part ("more") adds to them.
    gc.disable()
    runner: Runner | None = None
    while True:
        try:
            kind, setup, tasks = read_frame(requests)
        except (EOFError, OSError):
            return
        try:
            if kind == "job":
                runner = None
                gc.collect()  # the previous job's documents
                runner = Runner(setup) if setup is not None else None
            elif runner is None:
                raise ValueError("more documents for a job this evaluator does not hold")
            elif setup is not None:
                runner.extend(setup)
        except Exception as exc:  # noqa: BLE001 - a document CEL cannot hold fails the job closed, with why
            runner = None
            write_frame(answers, ("setup_failed", describe(exc)))
            continue
        write_frame(answers, ("ready",))
        for i, task in enumerate(tasks):
            try:
                result = check(task[1], task[2]) if task[0] == "check" else runner.policy(task[1])  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - this task fails closed; the next ones still run
                write_frame(answers, ("failed", i, describe(exc)))
            else:
                write_frame(answers, ("done", i, result))
        del setup, tasks

if __name__ == "__main__":
    serve(sys.stdin.buffer, _confine(int(sys.argv[1])))
