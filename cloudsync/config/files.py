"""The one way cloudsync reads a file a stack names: inside the stack, regular, bounded.

A stack comes from a pull request, and git stores symlinks: ``secrets/x.yaml`` can point
at ``/dev/zero`` and ``value: {file: ...}`` at ``/proc/self/environ``. Every path is
therefore resolved (symlinks followed) and must land inside the stack folder — or inside
a directory the stack names in ``files: {allow: [...]}`` of ``cloudsync.yaml``, where a
reviewer sees it — and must be a regular file no larger than the reader's cap. Devices,
FIFOs and folders are refused before they are opened for reading, so nothing blocks or
streams forever.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloudsync.config.limits import MAX_FILE_BYTES, shown
from cloudsync.config.yamlsource import YamlError
from cloudsync.diagnostics import Diagnostic

ALLOW_HINT = "files are read only from inside the stack folder; a directory outside it must be named in " \
             "cloudsync.yaml under files: {allow: [DIR]}"
# Pseudo-filesystems whose "files" are the host's memory, processes and devices: never allowed.
FORBIDDEN_DIRS = (Path("/proc"), Path("/sys"), Path("/dev"))


class FileRefused(Exception):
    """A path a stack names may not be read; the message never holds the file's content."""

    def __init__(self, message: str, hint: str | None = None, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.reason = reason or message  # the message without the file's name, for a caller that names it


@dataclass(frozen=True)
class FileScope:
    """Where one stack may read files: its folder, and the directories its ``files.allow`` names."""

    root: Path
    allowed: tuple[Path, ...] = ()

    @classmethod
    def of(cls, root: Path, allow: Sequence[str] = ()) -> FileScope:
        """The scope of the stack in ``root`` (paths resolved; ``allow`` entries relative to it)."""
        real = realpath(root)
        return cls(real, tuple(realpath(real / a) for a in allow))

    def resolve(self, path: str | Path, *, outside: bool = True, what: str = "file",
                shown_as: str | None = None) -> Path:
        """The real path of ``path`` (relative to the stack folder); FileRefused when it leaves the scope.

        ``outside=False`` keeps to the stack folder itself, ignoring ``files.allow`` (the
        stack's own declarations and policies always live in it).
        """
        name = path_text(shown_as if shown_as is not None else path)
        if "\0" in str(path):
            raise FileRefused(f"{what} path {name} holds a NUL character")
        real = realpath(self.root / path)
        dirs = (self.root, *self.allowed) if outside else (self.root,)
        if any(real.is_relative_to(d) for d in FORBIDDEN_DIRS) or not any(real.is_relative_to(d) for d in dirs):
            raise FileRefused(f"{what} {name} resolves to {path_text(real)}, outside the stack folder",
                              hint=ALLOW_HINT if outside else "keep the stack's own files inside its folder")
        return real

    def check(self, path: str | Path, *, limit: int | None, outside: bool = True, what: str = "file") -> Path:
        """Resolve ``path`` and, when it exists, check it is a regular file within ``limit`` (no read).

        ``limit=None``: any size (a local store grows with its secrets).
        """
        real = self.resolve(path, outside=outside, what=what)
        try:
            info = real.stat()
        except FileNotFoundError:
            return real
        except OSError as exc:
            raise FileRefused(f"cannot read {what} {path_text(path)}: {exc.strerror or exc.__class__.__name__}") from None
        _check_stat(info, path, limit, what)
        return real

    def read_bytes(self, path: str | Path, *, limit: int, outside: bool = True, what: str = "file") -> bytes:
        """The bytes of ``path``: inside the scope, a regular file, at most ``limit`` bytes."""
        return read_regular(self.resolve(path, outside=outside, what=what), limit=limit, shown_as=path, what=what)


def read_regular(real: Path, *, limit: int, shown_as: str | Path | None = None, what: str = "file") -> bytes:
    """Read an already resolved path: a regular file of at most ``limit`` bytes, else FileRefused."""
    name = shown_as if shown_as is not None else real
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the path was resolved,
        # a symlink swapped in since is refused rather than followed.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise FileRefused(f"cannot read {what} {path_text(name)}: {reason}", reason=f"cannot read it: {reason}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_stat(os.fstat(fd), name, limit, what)
        data = handle.read(limit + 1)  # /proc and growing files report a size that is not the truth
    if len(data) > limit:
        raise _too_large(name, limit, what)
    return data


def read_yaml_text(path: Path, display: str, *, within: Path) -> str:
    """The text of a YAML file of the stack or a policy folder; YamlError (with a diagnostic) when refused."""
    try:
        real = FileScope(realpath(within)).resolve(path.absolute(), outside=False, shown_as=display)
        return read_regular(real, limit=MAX_FILE_BYTES, shown_as=display).decode("utf-8")
    except FileRefused as exc:
        raise YamlError([Diagnostic(exc.message, file=display, hint=exc.hint)]) from None
    except UnicodeDecodeError as exc:
        raise YamlError([Diagnostic(f"the file is not UTF-8 text (byte {exc.start})", file=display,
                                    hint="save it as UTF-8")]) from None


def realpath(path: Path) -> Path:
    """``path`` with every symlink followed, absolute.

    Not ``Path.resolve()``: on a symlink loop it raises RuntimeError; here the loop is left
    in the path, and opening it fails with ELOOP like any unreadable file.
    """
    return Path(os.path.realpath(path))


def path_text(path: str | Path) -> str:
    """A path for a message: bounded, control characters escaped."""
    return shown(str(path))[1:-1]


def _check_stat(info: os.stat_result, name: str | Path, limit: int | None, what: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{what} {path_text(name)} is not a regular file (a folder, device, FIFO or socket)",
                          hint="point it at a plain file", reason="it is not a regular file")
    if limit is not None and info.st_size > limit:
        raise _too_large(name, limit, what)


def _too_large(name: str | Path, limit: int, what: str) -> FileRefused:
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return FileRefused(f"{what} {path_text(name)} is larger than {size}", reason=f"it is larger than {size}",
                       hint="a stack's files are small; check the path names the file you meant")
