"""Run every benchmark and write the figures to ``benchmarks/RESULTS.md``.

    python benchmarks/run_all.py [--sizes 1000,10000] [--only core_plan,aws_plan] [--skip fuzz]
                                 [--out benchmarks/RESULTS.md] [--timeout 1800]

Each module of this folder is imported; one with a function ``rows(sizes) -> list[dict]``
gives a table (one column per key, in the first row's order); a ``rows`` whose first
parameter is not ``sizes`` is called with its own defaults. Any other is run as
``python benchmarks/<name>.py`` in a child process (with ``--sizes`` when its source
accepts that option) and its printed output is kept as it is. A module that fails, or runs
past ``--timeout``, is reported as such and the others still run. The file starts with the
machine (CPU model, cores, Python) and the date, so figures are never read without them.

With ``--only`` and an existing file, only those modules' sections are replaced, each
headed by when it ran and the load average then; the other sections stay as they were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import inspect
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Not benchmarks: this runner, and the long fuzz campaign (a test of bounds, run on its own).
NOT_RUN = {"run_all", "fuzz", "__init__"}


def modules() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in NOT_RUN and not p.stem.startswith("_"))


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {"CPU": model, "cores": str(cores), "Python": platform.python_version(),
            "OS": f"{platform.system()} {platform.release()}", "load average at start": load}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_\n"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(k, "")).replace("|", "\\|").replace("\n", " ") for k in keys) + " |")
    return "\n".join(lines) + "\n"


def _run_main(name: str, sizes: list[int], timeout: float) -> tuple[str, str]:
    """Run a module without ``rows`` as a script; its output as a fenced block, and a status."""
    path = HERE / f"{name}.py"
    args = [sys.executable, str(path)]
    if '"--sizes"' in path.read_text(encoding="utf-8"):
        args += ["--sizes", ",".join(map(str, sizes))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return f"```\n{out.strip()}\n```\n", f"stopped after {timeout:g} s"
    text = done.stdout.strip() or "(no output)"
    status = "ok" if done.returncode == 0 else f"exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}"
    return f"```\n{text}\n```\n", status


def run_one(name: str, sizes: list[int], timeout: float) -> str:
    """One section of RESULTS.md."""
    start = time.perf_counter()
    print(f"running {name} ...", file=sys.stderr, flush=True)
    try:
        module = _load(name)
        doc = (inspect.getdoc(module) or "").splitlines()
        title = doc[0] if doc else name
        maker: Callable[..., list[dict[str, Any]]] | None = getattr(module, "rows", None)
        if callable(maker):
            # rows(sizes) by convention; a rows() whose first parameter is something else runs with its defaults.
            first = next(iter(inspect.signature(maker).parameters), None)
            body, status = _table(maker(sizes) if first == "sizes" else maker()), "ok"
        else:
            body, status = _run_main(name, sizes, timeout)
    except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others' figures
        traceback.print_exc()
        title, body, status = name, "", f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"
    took = time.perf_counter() - start
    print(f"  {name}: {status} ({took:.0f} s)", file=sys.stderr, flush=True)
    return f"## {name}: {title}\n\n{body}\n_{status}; took {took:.0f} s; source: `benchmarks/{name}.py`_\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of secrets")
    parser.add_argument("--only", default="", help="comma-separated module names (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated module names to leave out")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per module run as a script")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = [n for n in (args.only.split(",") if args.only else modules()) if n and n not in args.skip.split(",")]
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; there are: {', '.join(modules())}")
    sys.path[:0] = [str(ROOT), str(HERE)]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [f"# Benchmark results\n\nWritten by `python benchmarks/run_all.py` on {when}.\n",
            "| machine | |\n|---|---|",
            *[f"| {k} | {v} |" for k, v in machine().items()], "",
            f"Sizes: N = {', '.join(f'{n:,}' for n in sizes)}. Wall times depend on what else the machine runs: "
            "read them with the load average above.\n"]
    load = machine()["load average at start"]
    sections = [run_one(name, sizes, args.timeout) for name in names]
    if args.only and args.out.exists():
        rerun = {name: section.replace("\n\n", f"\n\n_Rerun alone on {when}, load average {load}._\n\n", 1)
                 for name, section in zip(names, sections, strict=True)}
        args.out.write_text(_replaced(args.out.read_text(encoding="utf-8"), rerun), encoding="utf-8")
    else:
        args.out.write_text("\n".join(head) + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _replaced(text: str, sections: dict[str, str]) -> str:
    """``text`` (a RESULTS.md) with the sections of ``sections``' modules replaced (or added at the end)."""
    head, *parts = text.split("\n## ")
    kept = {part.split(":", 1)[0]: "## " + part.rstrip("\n") + "\n" for part in parts}
    kept.update(sections)
    return head + "\n" + "\n".join(kept.values())


if __name__ == "__main__":
    sys.exit(main())
