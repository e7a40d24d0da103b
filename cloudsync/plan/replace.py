"""`--replace`: which generated secrets get a new value now, and why the others cannot.

A selector is a secret name, an address (``target:secret``) or a glob of either
(``payments/*``, ``aws-prod:*``). A generated value is one value shared by all its targets,
so a selector always names whole secrets: an address replaces its secret everywhere it
lives. Only values cloudsync makes can be replaced by it; a value from a source it does not
control (env, sops, file, another target, an external rotator) is refused with a hint naming
where to change it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import timedelta
from fnmatch import fnmatchcase

from cloudsync.config.durations import parse_duration
from cloudsync.config.loader import Declaration, Stack
from cloudsync.config.models import rotation_owner
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.safe_text import NAME_LIMIT, safe_text

MAX_SELECTORS = 200  # each is matched against every declared name
MAX_SELECTOR_CHARS = 600  # a target name (128) + ':' + a secret name, with room for glob characters
_GLOB = frozenset("*?[")


def parse_grace(text: str) -> timedelta:
    """``--grace``: a duration (``1d``, ``12h``, ``90min``) or ``0`` (retire the old value at once)."""
    if text.strip() in ("0", "0s", "0m", "0h", "0d"):
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CloudsyncError(Diagnostic(f"--grace: {exc}", hint=getattr(exc, "hint", None)
                                        or "e.g. --grace 0 (a confirmed leak), 1d, 12h")) from None


def replacements(stack: Stack, targets: Iterable[str], selectors: Sequence[str]) -> frozenset[str]:
    """The secrets ``selectors`` name, all generated and wholly inside ``targets``; every problem at once."""
    if not selectors:
        return frozenset()
    if len(selectors) > MAX_SELECTORS:
        raise CloudsyncError(Diagnostic(f"--replace given {len(selectors)} times; at most {MAX_SELECTORS}",
                                        hint="use a glob such as 'payments/*'"))
    chosen: set[str] = set()
    problems: list[Diagnostic] = []
    for selector in selectors:
        matched, diags = _select(stack, selector)
        chosen |= matched
        problems += diags
    planned = set(targets)
    for name in sorted(chosen):
        decl = stack.by_name[name]
        left_out = [t for t in decl.decl.targets if t not in planned]
        if left_out:
            problems.append(decl.at("targets", message=(
                f"--replace {name}: it also lives in {', '.join(left_out)}, which this plan leaves out; "
                "one generated value is shared by all its targets"),
                hint="plan without --target (or with every target it is in)"))
    if problems:
        raise CloudsyncError(problems)
    return frozenset(chosen)


def _select(stack: Stack, selector: str) -> tuple[set[str], list[Diagnostic]]:
    shown = safe_text(selector, NAME_LIMIT)
    if not selector or len(selector) > MAX_SELECTOR_CHARS:
        return set(), [Diagnostic(f"--replace '{shown}': not a secret name or address",
                                  hint="e.g. --replace payments/db-password or --replace aws-prod:payments/db-password")]
    target, _, pattern = selector.rpartition(":")
    names = [d.decl.name for d in stack.secrets if not target or _in_target(d, target)]
    if target and not any(fnmatchcase(t, target) for t in stack.config.targets):
        return set(), [Diagnostic(f"--replace '{shown}': no target '{safe_text(target, NAME_LIMIT)}'",
                                  hint=_suggest(target, list(stack.config.targets), "targets"))]
    globbed = bool(_GLOB & set(selector))
    matched = [n for n in names if fnmatchcase(n, pattern)]
    if not matched:
        return set(), [Diagnostic(f"--replace '{shown}': no declared secret matches",
                                  hint=_suggest(pattern, names, "secrets"))]
    refusals = [(name, refusal) for name in matched if (refusal := refuse(stack.by_name[name])) is not None]
    if refusals and (not globbed or len(refusals) == len(matched)):
        # A name the operator typed is replaced or refused; a glob takes the generated secrets it matches.
        return set(), [refusal for _, refusal in refusals[:20]]
    refused = {name for name, _ in refusals}
    return {n for n in matched if n not in refused}, []


def _in_target(decl: Declaration, target: str) -> bool:
    return any(fnmatchcase(t, target) for t in decl.decl.targets)


def refuse(decl: Declaration) -> Diagnostic | None:
    """Why cloudsync cannot make a new value for ``decl`` (None: it can, the value is generated)."""
    d = decl.decl
    spec = d.value
    name = d.name
    if spec is None:
        return decl.at("name", message=f"cannot replace {name}: it declares no value; its value is written outside "
                                       "cloudsync", hint="make a new value where it is written (and revoke the "
                                                         "old one at its issuer)")
    kind = spec.kind
    sources: dict[str, tuple[str, str]] = {
        "env": (f"the environment variable {spec.env}",
                f"set {spec.env} to the new credential in the job that runs cloudsync, then plan: every target "
                "it is in gets a `value` update"),
        "sops": (f"the sops file {spec.sops} (key {spec.key})",
                 f"write the new credential with `sops edit {spec.sops}` (key {spec.key}), then plan"),
        "file": (f"the file {spec.file}", f"have the tool that writes {spec.file} write the new credential, then plan"),
    }
    if rotation_owner(d.rotation) == "external":
        first = f"; its first value came from {sources[kind][0]}" if kind in sources else ""
        return decl.at("rotation", message=f"cannot replace {name}: an external system rotates it "
                                           f"(rotation: {{by: external}}) and cloudsync never overwrites its value{first}",
                       hint="revoke it and make a new one at its issuer or rotator (e.g. `aws secretsmanager "
                            "rotate-secret`), which writes the new version; `cloudsync drift` then shows it as expected")
    if kind == "generate":
        return None
    if kind == "from" and spec.from_ is not None:
        source = f"{spec.from_.target}:{spec.from_.name}"
        return decl.at("value", "from", message=f"cannot replace {name}: it copies {source}, a value cloudsync "
                                                "does not make here",
                       hint=f"replace {source} at its source (`--replace {spec.from_.name}` if this stack generates "
                            "it); its copies follow in the same apply")
    if kind == "public_key_of" and spec.public_key_of is not None:
        other = spec.public_key_of.secret
        return decl.at("value", "public_key_of", message=f"cannot replace {name}: it is the public half of {other}",
                       hint=f"--replace {other}; its public half follows in the same apply")
    source, hint = sources.get(kind, (f"its {kind} source", "change it at its source, then plan"))
    return decl.at("value", message=f"cannot replace {name}: its value comes from {source}, which cloudsync does "
                                    "not control", hint=hint + " (and revoke the old one at its issuer)")


def _suggest(word: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(word[:NAME_LIMIT], choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    listed = ", ".join(sorted(choices)[:10]) + (", …" if len(choices) > 10 else "")
    return f"declared {what}: {listed or 'none'}"
