"""Every case the fuzzer (or an issue) found stays fixed: ``regressions/*.yaml``.

Each file is a ``cloudsync.yaml`` whose first line says what loading it must give:
``# expect: <text of one diagnostic's message>`` or ``# expect: valid``. A new finding
is added by saving the falsifying example there with that line on top.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError

REGRESSIONS = Path(__file__).parent / "regressions"
CASES = sorted(REGRESSIONS.glob("*.yaml"))


def test_there_are_regression_cases() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_regression(case: Path, tmp_path: Path) -> None:
    text = case.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith("# expect: "), f"{case.name} must start with '# expect: ...'"
    expected = first[len("# expect: "):]
    (tmp_path / "cloudsync.yaml").write_text(text, encoding="utf-8")
    if expected == "valid":
        load_stack(tmp_path)
        return
    with pytest.raises(CloudsyncError) as info:
        load_stack(tmp_path)
    messages = [d.message for d in info.value.diagnostics]
    assert any(expected in m for m in messages), messages
