"""What the policy engine works with: policies, waivers, violations and the report."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from cloudsync.diagnostics import Diagnostic

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Parameter:
    """A policy parameter: a typed default that a stack may override."""

    name: str
    default: Any
    description: str = ""


@dataclass(frozen=True)
class Policy:
    """One policy as written (its CEL sources), with where it was defined."""

    id: str
    title: str
    severity: Severity
    rule: str
    message: str
    match: str | None = None
    rationale: str = ""
    fix: str = ""
    parameters: tuple[Parameter, ...] = ()
    file: str = ""
    line: int = 0
    builtin: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}


@dataclass(frozen=True)
class Waiver:
    """A time-limited, justified exception to one policy for named secrets."""

    policy: str
    secrets: tuple[str, ...]
    reason: str
    expires: date
    targets: tuple[str, ...] = ("*",)
    file: str = ""
    line: int = 0

    def covers(self, policy: str, secret: str, target: str) -> bool:
        """Whether this waiver names the violation (expiry is checked separately)."""
        return (policy == self.policy
                and any(fnmatch.fnmatchcase(secret, glob) for glob in self.secrets)
                and any(fnmatch.fnmatchcase(target, glob) for glob in self.targets))

    def active(self, today: date) -> bool:
        """A waiver waives through its expiry date, inclusive."""
        return today <= self.expires

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "secrets": list(self.secrets), "targets": list(self.targets),
                "reason": self.reason, "expires": self.expires.isoformat(), "file": self.file, "line": self.line}


@dataclass(frozen=True)
class Violation:
    """A secret × target that does not comply with a policy."""

    policy: str
    title: str
    severity: Severity
    address: str
    secret: str
    target: str
    message: str
    file: str | None
    line: int | None
    waiver: Waiver | None = None

    def as_dict(self) -> dict[str, Any]:
        """The plan JSON contract keys, then extra keys."""
        data: dict[str, Any] = {"policy": self.policy, "severity": self.severity, "address": self.address,
                                "message": self.message, "file": self.file, "line": self.line,
                                "title": self.title, "secret": self.secret, "target": self.target}
        if self.waiver is not None:
            data["waiver"] = {"reason": self.waiver.reason, "expires": self.waiver.expires.isoformat(),
                              "file": self.waiver.file, "line": self.waiver.line}
        return data


@dataclass
class PolicyReport:
    """The outcome of evaluating policies: only un-waived violations block."""

    violations: list[Violation] = field(default_factory=list)
    waived: list[Violation] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)  # the enabled policies, for SARIF and JUnit
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # effective, per policy
    evaluated: int = 0  # secret × target documents evaluated

    @property
    def blocking(self) -> bool:
        """Any un-waived violation of severity error."""
        return any(v.severity == "error" for v in self.violations)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]
