"""Every kind of mistake in the desired-state files gets one diagnostic at file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError, Diagnostic

HEADER = """\
version: 1
stack: payments
targets:
  local: {provider: local}
  aws-prod: {provider: aws, region: us-east-1}
  gcp-prod: {provider: gcp, project: acme-prod}
  azure-prod: {provider: azure, vault_url: "https://acme.vault.azure.net"}
principals:
  api:
    aws: arn:aws:iam::123456789012:role/api
    gcp: serviceAccount:api@acme-prod.iam.gserviceaccount.com
    azure: 00000000-0000-0000-0000-000000000001
"""


def problems(folder: Path) -> list[Diagnostic]:
    with pytest.raises(CloudsyncError) as info:
        load_stack(folder)
    return info.value.diagnostics


def only(folder: Path) -> Diagnostic:
    found = problems(folder)
    assert len(found) == 1, [d.render() for d in found]
    return found[0]


def test_valid_stack_loads_with_positions(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/db-password
    targets: [local, aws-prod]
    value: {generate: {length: 32}}
    readers: [api]
""", {"secrets/more.yaml": """\
secrets:
  - name: payments/api-key
    targets: [gcp-prod]
    value: {env: API_KEY}
"""})
    stack = load_stack(folder)
    assert [(d.decl.name, Path(d.file).name, d.line) for d in stack.secrets] == [
        ("payments/db-password", "cloudsync.yaml", 14),
        ("payments/api-key", "more.yaml", 2),
    ]


def test_yaml_syntax_error_points_at_the_line(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + "secrets:\n  - name: [unclosed\n")
    diag = only(folder)
    assert diag.file is not None and diag.file.endswith("cloudsync.yaml")
    assert diag.line == 15 and "YAML syntax error" in diag.message
    assert "flow sequence started at line 14" in diag.message


def test_unknown_key_suggests_the_right_one(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A}
    descripton: typo
""")
    diag = only(folder)
    assert (diag.line, diag.col) == (17, 5)
    assert diag.message == "unknown key 'descripton'" and diag.hint == "did you mean 'description'?"


def test_a_key_of_another_mapping_is_not_suggested_as_its_own_correction(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {from: {target: local, name: payments/b, secret: x}}
""")
    diag = only(folder)
    assert diag.message == "unknown key 'secret'"
    assert diag.hint == "'secret' is not a key of this mapping; see `cloudsync schema` for the keys allowed here"


def test_unknown_target_key_and_provider(write_stack: Callable[..., Path]) -> None:
    folder = write_stack("""\
version: 1
stack: payments
targets:
  aws-prod: {provider: aws, regoin: us-east-1}
  other: {provider: awz}
""")
    found = {(d.line, d.message, d.hint) for d in problems(folder)}
    assert (4, "unknown key 'regoin'", "did you mean 'region'?") in found
    assert (5, "unknown provider 'awz'", "did you mean 'aws'?") in found


def test_wrong_type(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {generate: {length: many}}
""")
    diag = only(folder)
    assert diag.line == 16 and "length" in diag.message and "integer" in diag.message


def test_bad_duration(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A}
    rotation: 3 weeks
""")
    diag = only(folder)
    assert diag.line == 17 and "bad duration '3 weeks'" in diag.message


def test_duplicate_secret_names_name_the_first(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A}
""", {"secrets/dup.yaml": """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: B}
"""})
    diag = only(folder)
    assert diag.file is not None and diag.file.endswith("dup.yaml") and diag.line == 2
    assert "declared twice" in diag.message and "cloudsync.yaml:14" in diag.message


def test_unknown_target_and_principal_references(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [lcoal]
    value: {env: A}
    readers: [apii]
""")
    found = {(d.line, d.message, d.hint) for d in problems(folder)}
    assert found == {
        (15, "unknown target 'lcoal'", "did you mean 'local'?"),
        (17, "unknown principal 'apii'", "did you mean 'api'?"),
    }


def test_plaintext_literal_value_is_an_error(write_stack: Callable[..., Path], canary: str) -> None:
    folder = write_stack(HEADER + f"""\
secrets:
  - name: payments/a
    targets: [local]
    value: "{canary}"
""")
    diag = only(folder)
    assert diag.line == 16 and "plaintext literal values are not allowed" in diag.message
    assert canary not in diag.render()


def test_invalid_label(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A}
    labels: {Env: Prod}
""")
    diag = only(folder)
    assert diag.line == 17 and "invalid label key 'Env'" in diag.message


def test_reserved_label(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A}
    labels: {managed-by: me}
""")
    assert "reserved" in only(folder).message


def test_remote_name_collision_names_both_declarations(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/db_password
    targets: [azure-prod]
    value: {env: A}
  - name: payments/db.password
    targets: [azure-prod, aws-prod]
    value: {env: B}
""")
    diag = only(folder)
    assert diag.line == 17
    assert "'payments/db_password'" in diag.message and "cloudsync.yaml:14" in diag.message
    assert "'payments/db.password'" in diag.message and "'payments--db-password'" in diag.message


def test_azure_collisions_are_case_insensitive(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: Payments/Key
    targets: [azure-prod]
    value: {env: A}
  - name: payments/key
    targets: [azure-prod]
    value: {env: B}
""")
    assert "both map to remote name" in only(folder).message


def test_name_override_avoids_a_collision(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/db_password
    targets: [azure-prod]
    value: {env: A}
  - name: payments/db.password
    targets: [azure-prod]
    value: {env: B}
    names: {azure-prod: payments-db-password-2}
""")
    assert len(load_stack(folder).secrets) == 2


def test_invalid_override_for_the_cloud(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [azure-prod]
    value: {env: A}
    names: {azure-prod: has_underscore}
""")
    diag = only(folder)
    assert diag.line == 17 and "not valid in azure" in diag.message


def test_principal_without_an_id_for_the_cloud(write_stack: Callable[..., Path]) -> None:
    folder = write_stack("""\
version: 1
stack: payments
targets:
  aws-prod: {provider: aws, region: us-east-1}
principals:
  api: {gcp: "serviceAccount:api@p.iam.gserviceaccount.com"}
secrets:
  - name: payments/a
    targets: [aws-prod]
    value: {env: A}
    readers: [api]
""")
    diag = only(folder)
    assert diag.line == 11 and "has no aws id" in diag.message and diag.hint == "add 'aws:' to principals.api"


def test_value_needs_exactly_one_source(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A, generate: {}}
""")
    diag = only(folder)
    assert diag.line == 16 and "exactly one source" in diag.message


def test_every_problem_in_one_run(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    value: {env: A}
    colour: red
  - name: "bad name!"
    targets: [local]
    value: {env: B}
""", {"secrets/x.yaml": "secrets:\n  - name: ok/one\n    targets: [nowhere]\n    value: {env: C}\n"})
    lines = sorted((Path(d.file or "").name, d.line) for d in problems(folder))
    assert lines == [("cloudsync.yaml", 17), ("cloudsync.yaml", 18), ("x.yaml", 3)]


def test_duplicate_yaml_key(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    name: payments/b
    targets: [local]
    value: {env: A}
""")
    diag = only(folder)
    assert diag.line == 15 and "duplicate key 'name'" in diag.message


def test_missing_required_key(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    value: {env: A}
""")
    diag = only(folder)
    assert diag.line == 14 and diag.message == "missing required key 'targets'"


def test_missing_stack_file(tmp_path: Path) -> None:
    diag = only(tmp_path)
    assert "no cloudsync.yaml" in diag.message and diag.hint is not None


# --- patterns match whole values (issue 11) ------------------------------------------------------


def test_a_trailing_newline_does_not_make_a_second_secret(write_stack: Callable[..., Path]) -> None:
    """`$` matched before a final newline: "payments/a\\n" loaded as a second secret beside "payments/a"."""
    folder = write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
  - name: "payments/a\\n"
    targets: [local]
""")
    diag = only(folder)
    assert diag.message.startswith("invalid secret name 'payments/a\\n'") and diag.line == 16


@pytest.mark.parametrize("labels", ['{"env\\n": prod}', '{env: "prod\\n"}'])
def test_a_trailing_newline_in_a_label(write_stack: Callable[..., Path], labels: str) -> None:
    diag = only(write_stack(HEADER + f"""\
secrets:
  - name: payments/a
    targets: [local]
    labels: {labels}
"""))
    assert "invalid" in diag.message and "\\n" in diag.message and diag.line == 16


def test_a_trailing_newline_in_a_name_override(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [aws-prod]
    names: {aws-prod: "payments-a\\n"}
"""))
    assert "remote name 'payments-a\\n' is not valid in aws" in diag.message


def test_a_trailing_newline_in_a_duration(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [local]
    expires: "30d\\n"
"""))
    assert diag.message.startswith("expires: bad duration '30d\\n'") and diag.line == 16


def test_an_empty_name_override_is_refused(write_stack: Callable[..., Path]) -> None:
    """`names: {t: ""}` was silently ignored (the translated name was used)."""
    diag = only(write_stack(HEADER + """\
secrets:
  - name: payments/a
    targets: [aws-prod]
    names: {aws-prod: ""}
"""))
    assert "empty name override for target 'aws-prod'" in diag.message and diag.line == 16


@pytest.mark.parametrize("version", ["true", "1.0", '"1"'])
def test_version_is_the_integer_one(write_stack: Callable[..., Path], version: str) -> None:
    diag = only(write_stack(HEADER.replace("version: 1", f"version: {version}")))
    assert diag.message.startswith("invalid version") and "expected the integer 1" in diag.message
    assert (diag.line, diag.col) == (1, 10)
