"""Per-change lines: plain and escaped off a terminal, styled by rich on one."""

from __future__ import annotations

import io

from rich.console import Console

from cloudsync.console import print_line


def test_off_a_terminal_a_line_is_written_plain_with_controls_escaped() -> None:
    stream = io.StringIO()
    print_line(Console(file=stream, force_terminal=False), "  ok      update  local:app/\x1b[31mred\x07", "green")
    written = stream.getvalue()
    assert written.endswith("\n") and written.count("\n") == 1
    assert "\x1b" not in written and "\x07" not in written
    assert written.startswith("  ok      update  local:app/")


def test_on_a_terminal_rich_prints_the_line_styled_and_still_escaped() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, color_system="standard")
    from cloudsync.console import _EscapeControls

    console.push_render_hook(_EscapeControls())
    print_line(console, "  FAILED  create  local:app/x\x07", "red")
    written = stream.getvalue()
    assert "\x1b[31m" in written  # styled
    assert "\x07" not in written
