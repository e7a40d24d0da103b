"""`pip install cloudsync` installs an unrelated project: everything must name cloudsync-secrets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NAME = "cloudsync-secrets"
# `cloudsync[aws]`, `pip install cloudsync` — the taken name used as a distribution.
TAKEN = re.compile(r"(?<![\w./-])cloudsync\[|pip install\s+['\"]?cloudsync(?![\w-])")


def test_the_distribution_and_its_extras_use_the_free_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == NAME
    extras = project["optional-dependencies"]
    assert extras["all"] == [f"{NAME}[aws,gcp,azure]"] and f"{NAME}[all]" in extras["test"]
    assert project["scripts"] == {"cloudsync": "cloudsync.cli:run"}  # the command keeps its name


def test_workflows_and_the_action_install_the_free_name() -> None:
    specs = [yaml.safe_load(p.read_text()) for p in (ROOT / ".github" / "workflows").glob("cloudsync-*.yml")]
    # YAML 1.1 reads the key `on` as true.
    defaults = [spec[True]["workflow_call"]["inputs"]["install"]["default"] for spec in specs]
    defaults.append(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]["install"]["default"])
    assert len(defaults) == 4 and all(d == f"{NAME}[all]" for d in defaults), defaults


def test_no_document_tells_users_to_install_the_taken_name() -> None:
    files = [ROOT / "README.md", ROOT / "action.yml", ROOT / ".pre-commit-hooks.yaml",
             *(ROOT / "docs").rglob("*.md"), *(ROOT / ".github").rglob("*.yml"), *(ROOT / "examples").rglob("*.yml"),
             *(ROOT / "examples").rglob("*.md"), *(ROOT / "cloudsync").rglob("*.py")]
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in TAKEN.finditer(p.read_text())]
    assert offenders == []
    assert f"pip install '{NAME}[all]'" in (ROOT / "README.md").read_text()
