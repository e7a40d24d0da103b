"""The shipped pre-commit hooks, run by pre-commit itself on a snapshot of this checkout.

pre-commit builds the hooks' environment the way a user's machine would (`language: python`:
a virtualenv with this repository installed, its dependencies from the package index), so
this test needs the index pip is configured with. `try-repo` builds it in a throw-away store
on every call; the later runs use a `.pre-commit-config.yaml` (as a user would) and one store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args], cwd=cwd,
                   check=True, capture_output=True)


def _snapshot(dest: Path) -> Path:
    """This checkout, uncommitted changes included, as one commit: `try-repo` on a dirty tree makes
    a new commit (so a new hook environment) on every call; one snapshot installs once."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # cloudsync/_policies -> ../policies: the wheel's built-in pack
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "snapshot")
    return dest


def _pre_commit(sample: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSYNC_", "PRE_COMMIT"))}
    env.update({"PRE_COMMIT_HOME": str(home), "NO_COLOR": "1", "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return subprocess.run([str(BIN / "pre-commit"), *args], cwd=sample, env=env,
                          capture_output=True, text=True, timeout=540, check=False)


def test_manifest_declares_both_hooks_on_stack_files_only() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"cloudsync-validate", "cloudsync-policy-check"}
    assert all(h["pass_filenames"] is False for h in hooks.values())


def test_hooks_pass_a_good_stack_fail_a_broken_one_and_skip_other_files(tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    shutil.copytree(ROOT / "examples" / "quickstart", sample, ignore=shutil.ignore_patterns(".cloudsync"))
    (sample / "README.md").write_text("notes\n")
    _git(sample, "init", "-q")
    _git(sample, "add", "-A")
    _git(sample, "commit", "-qm", "a stack")
    home = tmp_path / "pre-commit-home"
    hooks = _snapshot(tmp_path / "cloudsync")

    good = _pre_commit(sample, home, "try-repo", str(hooks), "--all-files")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "cloudsync validate" in good.stdout and "cloudsync policy check" in good.stdout
    assert good.stdout.count("Passed") == 2

    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hooks, check=True, capture_output=True, text=True).stdout.strip()
    (sample / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{
        "repo": str(hooks), "rev": rev, "hooks": [{"id": "cloudsync-validate"}, {"id": "cloudsync-policy-check"}]}]}))
    unrelated = _pre_commit(sample, home, "run", "--files", "README.md")
    assert unrelated.returncode == 0 and unrelated.stdout.count("Skipped") == 2, unrelated.stdout

    config = sample / "cloudsync.yaml"
    config.write_text(config.read_text().replace("readers: [", "readers: [nobody-declared, ", 1))
    assert "nobody-declared" in config.read_text()
    broken = _pre_commit(sample, home, "run", "--files", "cloudsync.yaml")
    assert broken.returncode == 1
    assert "cloudsync.yaml:" in broken.stdout and "unknown principal 'nobody-declared'" in broken.stdout
    assert broken.stdout.count("Failed") == 2
