"""docs/leak-response.md runs as written: its stack and every command block marked
``<!-- runbook -->``, in order, on the local provider, in a temporary stack folder."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from cloudsync.providers.local import LocalStore
from tests.conftest import files_containing

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "leak-response.md"
BIN = Path(sys.executable).parent
# A marker line, then a fenced block (indented inside a list item or not).
BLOCK = re.compile(r"^[ \t]*<!-- runbook(?:: (?P<file>[\w.-]+))? -->\n[ \t]*```(?P<lang>\w+)\n(?P<body>.*?)^[ \t]*```",
                   re.M | re.S)


def _blocks() -> list[tuple[str | None, str, str]]:
    found = []
    for match in BLOCK.finditer(DOC.read_text()):
        indent = len(match.group("body")) - len(match.group("body").lstrip(" "))
        body = "".join(line[indent:] if line.strip() else line for line in match.group("body").splitlines(True))
        found.append((match.group("file"), match.group("lang"), body))
    return found


def _digest(stack: Path, store: str, name: str) -> str:
    db = LocalStore(stack / ".cloudsync" / f"{store}.db")
    try:
        return hashlib.sha256(db.get_value(name).reveal()).hexdigest()[:16]
    finally:
        db.close()


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_the_runbook_is_found_in_the_doc_and_linked_from_the_readme() -> None:
    blocks = _blocks()
    assert [f for f, _, _ in blocks if f] == ["cloudsync.yaml"]
    commands = "".join(body for f, lang, body in blocks if lang == "sh")
    for needed in ("--replace payments/webhook-signing-key --grace 0", "cloudsync access --principal",
                   "cloudsync drift", "cloudsync apply leak.plan"):
        assert needed in commands
    assert "docs/leak-response.md" in (ROOT / "README.md").read_text()


def test_every_command_of_the_runbook_runs_on_the_local_provider(tmp_path: Path, canary: str) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "NO_COLOR": "1", "STRIPE_KEY": canary})
    env.pop("CI", None)  # an operator's machine: the plan key file is allowed
    blocks = _blocks()
    for name, _, body in blocks:
        if name:
            (stack / name).write_text(body)
    setup = _run("cloudsync apply --auto-approve", stack, env)  # the stack before the leak
    assert setup.returncode == 0, setup.stdout + setup.stderr
    before = {s: _digest(stack, s, "payments/webhook-signing-key") for s in ("local", "backup")}

    outputs = []
    for name, lang, body in blocks:
        if name or lang != "sh":
            continue
        result = _run(body, stack, env)
        assert result.returncode == 0, f"{body}\n{result.stdout}{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout + result.stderr)

    after = {s: _digest(stack, s, "payments/webhook-signing-key") for s in ("local", "backup")}
    assert after["local"] == after["backup"] != before["local"]  # replaced in every target
    assert _digest(stack, "backup", "payments/webhook-signing-key-copy") == after["local"]  # the copy followed
    refused = [o for o in outputs if "refused, as it should be" in o]
    assert refused and "an external system rotates it" in refused[0] and "variable STRIPE_KEY" in refused[0]
    assert (stack / "access.json").is_file()
    assert not [o[:60] for o in outputs if canary in o]
    assert files_containing(stack, canary, skip=lambda p: p.suffix == ".db") == []
