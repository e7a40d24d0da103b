"""Fuzz the stack loader: any stack folder ends in success or in diagnostics — nothing else.

In process, ``load_stack`` over three kinds of input: stacks built from the file format's
own vocabulary with hostile values in every place, raw YAML token soup (anchors, aliases,
tags, flow and block structure), and a real stack edited at random. Through the CLI,
``validate`` in a subprocess under a 1 GiB memory cap and a timeout: exit 0 or 1, never a
traceback, a signal or a hang. Scaled by ``CLOUDSYNC_FUZZ_EXAMPLES`` (see conftest).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from tests.fuzz.conftest import CASE_SECONDS, FUZZ, FUZZ_CLI
from tests.fuzz.figures import child_memory, timed
from tests.sandbox import run_bounded

# --- what a stack is made of ---------------------------------------------------------------------

KEYS = ["version", "stack", "targets", "principals", "defaults", "policy", "drift", "files", "secrets", "provider",
        "path", "region", "project", "vault_url", "endpoint", "labels", "name", "description", "value", "generate",
        "env", "sops", "key", "from", "file", "public_key_of", "target", "rotation", "expires", "readers", "names",
        "length", "type", "every", "by", "allow", "dirs", "parameters", "disabled", "ignore", "aws", "gcp", "azure",
        "local", "<<", "secret", "format", "ca", "common_name"]
HOSTILE_TEXT = ["", " ", "\n", "app/db\n", "a\0b", "\x1b[2J", "No changes.\r", "../../etc/hostname", "/proc/self/environ",
                "/dev/zero", "/", ".", "..", "secrets", "*", "${HOME}", "%s%n", "\u202e", "\ufeff", "x" * 300,
                "local", "aws", "gcp", "azure", "30d", "0d", "999999d", "app/db", "payments/db-password", "true",
                "1.0", "0x10", "~", "null", "2027-13-45", "CS001", "us-east-1", "acme-prod"]
PATHS = ["out/token.txt", "../../etc/hostname", "/proc/self/environ", "/dev/zero", "/etc/passwd", ".", "..",
         "secrets", "cloudsync.yaml", "a\0b", "a\nb", "", "x" * 5000, ".cloudsync/local.db", "/run/secrets"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.dates(), st.text(max_size=12), st.sampled_from(HOSTILE_TEXT),
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(HOSTILE_TEXT), st.text(max_size=8), st.integers(-3, 3))
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


def sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-formed thing, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, trees)


texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=16))
paths = st.one_of(st.sampled_from(PATHS), st.text(max_size=20))
target = st.one_of(
    st.fixed_dictionaries({"provider": st.just("local")}, optional={"path": paths, "labels": trees}),
    st.fixed_dictionaries({"provider": st.just("aws"), "region": sometimes(st.just("us-east-1"))},
                          optional={"endpoint": texts, "recovery_window_days": scalars}),
    st.fixed_dictionaries({"provider": st.just("gcp"), "project": sometimes(st.just("acme-prod"))}),
    st.fixed_dictionaries({"provider": st.just("azure"), "vault_url": sometimes(st.just("https://a.vault.azure.net"))}),
    st.fixed_dictionaries({"provider": texts}),
)
value = st.one_of(
    st.fixed_dictionaries({"generate": sometimes(st.fixed_dictionaries({}, optional={
        "length": scalars, "type": texts, "charset": texts, "require": trees, "exclude": texts}))}),
    st.fixed_dictionaries({"env": texts}),
    st.fixed_dictionaries({"file": paths}),
    st.fixed_dictionaries({"sops": paths, "key": texts}),
    st.fixed_dictionaries({"from": sometimes(st.fixed_dictionaries({"target": texts, "name": texts}))}),
    st.fixed_dictionaries({"public_key_of": sometimes(texts)}),
    scalars,
)
secret = sometimes(st.fixed_dictionaries(
    {"name": sometimes(texts), "targets": sometimes(st.lists(st.sampled_from(["local", "aws", "nope"]) | texts,
                                                             max_size=3))},
    optional={"value": value, "labels": sometimes(st.dictionaries(texts, texts, max_size=3)),
              "readers": sometimes(st.lists(texts, max_size=3)), "names": sometimes(st.dictionaries(texts, texts,
                                                                                                    max_size=2)),
              "rotation": sometimes(texts), "expires": sometimes(texts), "description": texts,
              "deletion_protection": scalars}))
principal = sometimes(st.fixed_dictionaries({}, optional={"aws": texts, "gcp": texts, "azure": texts}))
stacks = st.fixed_dictionaries(
    {"version": st.one_of(st.just(1), scalars), "stack": st.one_of(st.just("demo"), texts),
     "targets": sometimes(st.dictionaries(st.sampled_from(["local", "aws", "gcp", "azure"]) | texts, target,
                                          min_size=1, max_size=3))},
    optional={"secrets": sometimes(st.lists(secret, max_size=4)),
              "principals": sometimes(st.dictionaries(texts, principal, max_size=3)),
              "defaults": sometimes(st.fixed_dictionaries({}, optional={"readers": trees, "labels": trees,
                                                                       "rotation": texts})),
              "policy": sometimes(st.fixed_dictionaries({}, optional={"parameters": trees, "disabled": trees,
                                                                     "dirs": st.lists(paths, max_size=2)})),
              "files": sometimes(st.fixed_dictionaries({"allow": st.lists(paths, max_size=2)})),
              "drift": trees})


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


# YAML's own machinery, as tokens: anchors, aliases, tags, flow and block structure, odd scalars.
TOKENS = ["\n", "\n  ", "\n    ", "- ", ": ", ", ", "[", "]", "{", "}", "&a ", "&b ", "*a", "*b", "!!bool ",
          "!!int ", "!!str ", "!!map ", "!!seq ", "!!set ", "!!binary ", "!!python/object:os.system ", "!x ", "! ",
          "? ", "<<: ", "|", ">", "---\n", "...\n", "#", '"', "'", "\\0", "\\x1b", "version: 1\n", "stack: demo\n",
          "targets: {local: {provider: local}}\n", "secrets:\n", "  - name: app/db\n    targets: [local]\n",
          "    value: ", "{file: ", "{generate: {length: ", "maybe", "1e999", "0x" + "f" * 20, "2027-01-31", "~",
          "null", "yes", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\t", "\ufeff", "\x85"]
HEADER = "version: 1\nstack: demo\ntargets: {local: {provider: local}}\n"
soup = st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=40).map("".join)

SAMPLE = """\
version: 1
stack: quickstart
targets:
  local: {provider: local, path: .cloudsync/local.db}
principals:
  payments-api: {}
defaults:
  labels: &labels {owner: team-payments}
  rotation: 90d
policy: {parameters: {CS001: {public_members: [a, b]}}}
secrets:
  - name: payments/db-password
    description: Postgres password
    targets: [local]
    labels: *labels
    value: {generate: {length: 32}}
    rotation: {every: 30d, by: cloudsync}
    readers: [payments-api]
  - name: payments/token
    targets: [local]
    value: {file: out/token.txt}
    names: {local: payments-token}
"""
edits = st.lists(st.tuples(st.integers(0, len(SAMPLE)), st.integers(0, 8), st.sampled_from(TOKENS) | st.text(max_size=3)),
                 min_size=1, max_size=6)


def edited(changes: list[tuple[int, int, str]]) -> str:
    text = SAMPLE
    for at, cut, insert in changes:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut:]
    return text


# --- the property --------------------------------------------------------------------------------


def check(diag: Diagnostic) -> None:
    """A diagnostic a user can read: a message, bounded, no raw control characters."""
    text = diag.render()
    assert diag.message, diag
    assert len(text) < 4000, text[:200]
    assert not any(c in text for c in "\0\x1b\r"), repr(text[:200])


def loads_or_diagnoses(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            stack = load_stack(root)
        except CloudsyncError as exc:
            assert exc.diagnostics
            for diag in exc.diagnostics:
                check(diag)
        else:
            for diag in stack.warnings:
                check(diag)


@FUZZ
@given(stacks, st.one_of(st.none(), st.lists(secret, max_size=3)))
def test_structured_stacks(data: dict[str, Any], more: list[Any] | None) -> None:
    files = {"cloudsync.yaml": dump(data)}
    if more is not None:
        files["secrets/more.yaml"] = dump({"secrets": more})
    with timed("loader: structured", files):
        loads_or_diagnoses(files)


@FUZZ
@given(soup)
def test_yaml_token_soup(text: str) -> None:
    with timed("loader: token soup", text):
        loads_or_diagnoses({"cloudsync.yaml": HEADER + text})


@FUZZ
@given(edits)
def test_edited_stack(changes: list[tuple[int, int, str]]) -> None:
    with timed("loader: edited", changes):
        loads_or_diagnoses({"cloudsync.yaml": edited(changes)})


@FUZZ_CLI
@given(st.one_of(stacks.map(dump), soup.map(lambda t: HEADER + t), edits.map(edited)))
def test_validate_cli(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, timed("cli: validate", text):
        (Path(tmp) / "cloudsync.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        result = run_bounded("validate", "-C", tmp, timeout=CASE_SECONDS)
        child_memory("cli: validate", result.max_rss_mib)
        assert not result.timed_out, text[:300]
        assert result.signal is None, (result.code, text[:300])
        assert result.code in (0, 1), result.output[-2000:]
        assert "Traceback" not in result.output and "internal error" not in result.output, result.output[-2000:]
        if result.code == 1:
            assert ": error: " in result.stderr or "error: " in result.stderr
