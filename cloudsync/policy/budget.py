"""What a policy may cost: static limits at load time, time and memory budgets when it runs.

Policies come from the stack's own ``policies/`` folder, so a pull request can add one.
The CEL binding counts no cost, and nested comprehensions multiply: eight nested
``all()`` over ten-element lists are 10^8 steps, minutes of CPU. Two layers hold:

1. Static limits, checked before anything compiles: an expression's length, its bracket
   nesting (the parser recurses) and how deeply comprehensions nest. They fail fast with a
   diagnostic at the expression's line, but cannot bound cost alone (the cost of
   ``principals.all(a, principals.all(b, ...))`` depends on the data).
2. Budgets, enforced by the operating system: every expression runs in a child process
   (:mod:`cloudsync.policy.celworker`) that is killed when a rule runs longer than its
   budget, when the run's budget is spent, and cannot grow past its memory budget. A
   thread could not do this: it cannot be killed, and CEL holds the interpreter lock.
   The child is started once per process and reused, so the price is one start-up.

A rule that spends its budget is not a pass: the caller turns it into a violation of that
policy (fail closed) and says which budget it spent. Budgets are the operator's, not the
stack's: they come from the environment (``CLOUDSYNC_POLICY_RULE_SECONDS``,
``CLOUDSYNC_POLICY_RUN_SECONDS``, ``CLOUDSYNC_POLICY_MEMORY_MB``), never from files a pull
request can change.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.policy.frames import read_frame, write_frame

if TYPE_CHECKING:
    from cloudsync.policy.references import Problem

MAX_EXPRESSION_CHARS = 4096
MAX_NESTING = 32  # brackets of any kind
MAX_COMPREHENSION_DEPTH = 3  # the built-in pack needs 2
CHECK_SECONDS = 2.0  # a load-time check runs on a one-element sample: a legitimate rule takes microseconds

_ENV = {"rule_seconds": "CLOUDSYNC_POLICY_RULE_SECONDS", "run_seconds": "CLOUDSYNC_POLICY_RUN_SECONDS",
        "memory_mb": "CLOUDSYNC_POLICY_MEMORY_MB"}


@dataclass(frozen=True)
class Budget:
    """Per rule (one policy over one run's documents), per run (all policies), and memory."""

    rule_seconds: float = 10.0
    run_seconds: float = 120.0
    memory_mb: int = 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Budget:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[Diagnostic] = []
        for name, var in _ENV.items():
            text = environ.get(var, "").strip()
            if not text:
                continue
            try:
                value = int(text) if name == "memory_mb" else float(text)
            except ValueError:
                value = 0
            if not 0 < value <= (1 << 20 if name == "memory_mb" else 86_400):
                problems.append(Diagnostic(f"{var} must be a positive number, got {text[:40]!r}",
                                           hint="seconds for the time budgets, MiB for the memory budget"))
                continue
            values[name] = value
        if problems:
            raise CloudsyncError(problems)
        return cls(**values)


@dataclass(frozen=True)
class Spent:
    """A task that did not finish, and why (shown to the user)."""

    reason: str


# --- static limits -------------------------------------------------------------------------


def static_problems(source: str) -> list[Problem]:
    """Limits an expression breaks before it is compiled: length, nesting, comprehension depth."""
    # Imported here: references reads the input schema, which imports the stack's models, and
    # prestart() must start the evaluator before those imports, not after them.
    from cloudsync.policy.references import MACROS, Problem, tokenize

    if len(source) > MAX_EXPRESSION_CHARS:
        return [Problem(f"the expression is {len(source)} characters long; at most {MAX_EXPRESSION_CHARS} are allowed",
                        0, "split the policy, or move long literal lists into a parameter")]
    tokens = tokenize(source)
    opened: list[bool] = []  # per open bracket: is it a comprehension's parenthesis
    depth = deepest = 0
    deepest_at = 0
    for i, tok in enumerate(tokens):
        if tok.text in "([{":
            macro = tok.text == "(" and i >= 2 and tokens[i - 1].text in MACROS and tokens[i - 2].text == "."
            opened.append(macro)
            depth += macro
            if len(opened) > MAX_NESTING:
                return [Problem(f"brackets nest more than {MAX_NESTING} deep", tok.offset, "simplify the expression")]
            if depth > deepest:
                deepest, deepest_at = depth, tokens[i - 1].offset
        elif tok.text in ")]}" and opened:
            depth -= opened.pop()
    if deepest > MAX_COMPREHENSION_DEPTH:
        return [Problem(f"comprehensions ({', '.join(sorted(MACROS))}) nest {deepest} deep; at most "
                        f"{MAX_COMPREHENSION_DEPTH} are allowed, because each level multiplies the cost",
                        deepest_at, "test membership with 'in', or split the rule")]
    return []


# --- the evaluator process -----------------------------------------------------------------


class _Worker:
    """One child process running :mod:`celworker`, and a thread that reads its answers.

    A plain interpreter started with ``-P -m``, not multiprocessing's spawn (which re-runs
    the caller's main script) or fork (which copies the parent's threads mid-lock); ``-P``
    keeps the working directory, which is the stack under review, off ``sys.path``.
    """

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        if not sys.executable:
            raise CloudsyncError(Diagnostic("cannot start the policy evaluator: no Python interpreter path",
                                            hint="policies run in a child process of the same interpreter"))
        # The child imports this very cloudsync, wherever it was imported from here.
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-P", "-m", "cloudsync.policy.celworker", str(memory_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            raise CloudsyncError(Diagnostic(f"cannot start the policy evaluator: {exc.__class__.__name__}",
                                            hint="policies run in a child process; check process limits")) from None
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = self.process.stdin
        self.answers: queue.Queue[tuple[float, tuple[Any, ...]]] = queue.Queue()  # (arrival, message)
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True,
                         name="cloudsync-cel-answers").start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            while True:
                message = read_frame(stream)
                self.answers.put((time.monotonic(), message))
        except (EOFError, OSError, pickle.UnpicklingError):
            self.answers.put((time.monotonic(), ("died",)))
        finally:
            stream.close()

    def send(self, message: Any) -> bool:
        try:
            write_frame(self.requests, message)
        except (OSError, ValueError):
            return False
        return True

    def receive(self, timeout: float) -> tuple[float, tuple[Any, ...]] | None:
        """When the next message arrived, and the message; None when ``timeout`` passed; ``("died",)`` when the
        child is gone."""
        try:
            return self.answers.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(OSError):
            self.requests.close()
        self.process.wait()

    def why_died(self, budget: Budget) -> str:
        try:
            code = self.process.wait(1)
        except subprocess.TimeoutExpired:
            code = None
        how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
        return (f"the evaluator stopped ({how}): it ran out of its {budget.memory_mb} MiB memory budget "
                "(CLOUDSYNC_POLICY_MEMORY_MB), or the CEL runtime crashed")


_lock = threading.Lock()
_worker: _Worker | None = None
_holder: Batch | None = None  # the batch whose part the evaluator was sent last


def _ready_worker(memory_mb: int) -> _Worker:
    global _worker
    if _worker is not None and (_worker.memory_mb != memory_mb or _worker.process.poll() is not None):
        _retire()
    if _worker is None:
        _worker = _Worker(memory_mb)
    return _worker


def _retire() -> None:
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


atexit.register(_retire)


def evaluator_cpu_seconds() -> float | None:
    """CPU time the running evaluator has used (for benchmarks); None when unknown (no child, no /proc)."""
    worker = _worker
    if worker is None:
        return None
    try:
        with open(f"/proc/{worker.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


def prestart(budget: Budget | None = None) -> None:
    """Start the evaluator now, so its start-up overlaps with reading the files.

    Without ``budget``, the environment's; a bad setting is left for the load to report.
    """
    if budget is None:
        try:
            budget = Budget.from_env()
        except CloudsyncError:
            return
    with _lock:
        _ready_worker(budget.memory_mb)


def run_tasks(setup: Mapping[str, Any] | None, tasks: Sequence[tuple[Any, ...]], budget: Budget, *,
              rule_seconds: float | None = None, rule_setting: str = "(CLOUDSYNC_POLICY_RULE_SECONDS)") -> list[Any]:
    """Run ``tasks`` in the evaluator; each result, or a :class:`Spent` for a task past a budget.

    A task gets ``rule_seconds`` (default: the budget's), all of them together the run's
    budget. A task that overruns or crashes the child is Spent; the child is replaced and
    the tasks after it still run. Interrupted (Ctrl-C), the child is ended and the
    interruption goes on.
    """
    batch = Batch(budget, rule_seconds=rule_seconds, rule_setting=rule_setting)
    batch.submit(setup, tasks)
    return batch.collect()


class Batch:
    """Tasks the evaluator runs while the caller goes on; their results are collected later.

    A batch is sent in parts: the first part's setup holds documents, a later part's setup
    adds columns to them (the plan's changes, once the plan exists) and the tasks that read
    them. The evaluator converts and evaluates the first part while the caller builds the
    plan. Each part is collected before the next is sent, so a rule that hangs is always
    waited for with its timeout, never by a write to a full pipe. Budgets are as in
    :func:`run_tasks`; a task's time runs from the answer before it (stamped when it arrives),
    so a part collected late is judged by when the evaluator finished, not by when it was read.
    """

    def __init__(self, budget: Budget, *, rule_seconds: float | None = None,
                 rule_setting: str = "(CLOUDSYNC_POLICY_RULE_SECONDS)") -> None:
        self.budget = budget
        self.per_task = budget.rule_seconds if rule_seconds is None else rule_seconds
        self.overrun = Spent(f"it ran longer than its budget of {self.per_task:g} s {rule_setting}")
        self.run_spent = Spent(f"the run's policy budget of {budget.run_seconds:g} s (CLOUDSYNC_POLICY_RUN_SECONDS) "
                               "was spent before it ran")
        self.deadline = time.monotonic() + budget.run_seconds
        self.setup: dict[str, Any] | None = None  # every part's setup: what a replacement evaluator is sent
        self.tasks: list[tuple[Any, ...]] = []
        self.results: list[Any] = []  # in task order; the tasks after them are in flight or unsent
        self.worker: _Worker | None = None  # the evaluator holding this batch's documents
        self.in_flight = 0  # tasks sent to it whose answers were not read yet
        self.part_size = 0  # tasks of the part in flight
        self.ready_due = False  # the answer to the part's setup was not read yet
        self.last = 0.0  # when the previous answer arrived

    def submit(self, setup: Mapping[str, Any] | None, tasks: Sequence[tuple[Any, ...]]) -> None:
        """Send a part: ``setup`` (merged into the documents already sent) and its ``tasks``."""
        with _lock, _retiring_on_interrupt():
            self._collect()
            if setup is not None:  # a part's columns join the earlier parts' columns
                merged = dict(self.setup or {})
                for key, value in setup.items():
                    before = merged.get(key)
                    merged[key] = {**before, **value} if isinstance(before, dict) and isinstance(value, dict) else value
                self.setup = merged
            self.tasks += tasks
            self._send(setup)

    def collect(self) -> list[Any]:
        """Every task's result (or :class:`Spent`), waiting for those still running."""
        with _lock, _retiring_on_interrupt():
            self._collect()
        return list(self.results)

    def _send(self, part: Mapping[str, Any] | None) -> None:
        global _holder
        if _holder is not None and _holder is not self and _holder.waiting():
            _retire()  # another batch's answers are still coming: its evaluator cannot take ours
        unanswered = self.tasks[len(self.results):]
        if not unanswered and part is None:
            return
        worker = _ready_worker(self.budget.memory_mb)
        # A fresh evaluator (the first part, or one replaced) gets every document sent so far.
        message = ("more", part, unanswered) if worker is self.worker else ("job", self.setup, unanswered)
        self.worker, _holder = worker, self
        self.in_flight, self.ready_due, self.part_size = len(unanswered), True, len(unanswered)
        if not worker.send(message):
            self.ready_due = True  # the answer will be "died"

    def waiting(self) -> bool:
        return self.worker is not None and self.worker is _worker and (self.ready_due or self.in_flight > 0)

    def _collect(self) -> None:
        while len(self.results) < len(self.tasks):
            if time.monotonic() >= self.deadline and not self.waiting():
                self.results += [self.run_spent] * (len(self.tasks) - len(self.results))
                return
            if not self.waiting():
                self._send(None)  # the evaluator was replaced: the unanswered tasks go to the new one
            self._read_part()

    def _drop_worker(self) -> None:
        _retire()
        self.worker, self.in_flight, self.ready_due = None, 0, False

    def _read_part(self) -> None:
        """Read the answers of the part in flight; on a failure, fill in why and drop the evaluator."""
        worker = self.worker
        assert worker is not None
        if self.ready_due:
            got = worker.receive(self.deadline - time.monotonic())
            message = got[1] if got is not None else None
            if message is None or message[0] != "ready":
                # Nothing of this part ran: its documents could not be set up, or the run's time is gone.
                if message is None:
                    why = self.run_spent
                elif message[0] == "setup_failed":
                    why = Spent(f"its input could not be given to CEL: {message[1]}")
                else:
                    why = Spent(worker.why_died(self.budget))
                self._drop_worker()
                self.results += [why] * (len(self.tasks) - len(self.results))
                return
            assert got is not None
            self.last, self.ready_due = got[0], False
        while self.in_flight:
            until = min(self.last + self.per_task, self.deadline)
            got = worker.receive(until - time.monotonic())
            if got is None:
                self._drop_worker()
                if self.deadline <= self.last + self.per_task:
                    self.results.append(Spent("it was still running when the run's policy budget of "
                                              f"{self.budget.run_seconds:g} s (CLOUDSYNC_POLICY_RUN_SECONDS) was spent"))
                    self.results += [self.run_spent] * (len(self.tasks) - len(self.results))
                else:
                    self.results.append(self.overrun)  # the tasks after it go to a new evaluator
                return
            stamp, message = got
            if message[0] == "died":
                self.results.append(Spent(worker.why_died(self.budget)))
                self._drop_worker()
                return
            kind, index, result = message
            assert index == self.part_size - self.in_flight, "the evaluator answers tasks in order"
            if stamp > self.last + self.per_task:
                result = self.overrun  # it finished, but after its budget (read late, while the caller worked)
            elif kind == "failed":
                result = Spent(f"the evaluator failed: {result}")
            self.results.append(result)
            self.last = stamp
            self.in_flight -= 1


@contextlib.contextmanager
def _retiring_on_interrupt() -> Iterator[None]:
    try:
        yield
    except BaseException:
        _retire()  # mid-job: its state is unknown, a fresh child serves the next call
        raise
