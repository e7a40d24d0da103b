"""Whole-stack rules: references, duplicates and remote-name collisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudsync.config.names import translate
from cloudsync.diagnostics import Diagnostics
from cloudsync.diagnostics import suggest as _suggest
from cloudsync.providers.registry import rules_for
from cloudsync.values.dependencies import dependencies, find_cycles

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration, Stack


def remote_name(decl: Declaration, target: str, provider: str) -> str:
    return decl.decl.names.get(target) or translate(decl.decl.name, provider)


def effective_readers(stack: Stack, decl: Declaration) -> list[str]:
    readers = decl.decl.readers
    return list(readers) if readers is not None else list(stack.config.defaults.readers)


def check_stack(stack: Stack, diags: Diagnostics) -> None:
    config = stack.config
    target_names = list(config.targets)
    principal_names = list(config.principals)

    for i, reader in enumerate(config.defaults.readers):
        if reader not in config.principals:
            diags.add(stack.smap.at(("defaults", "readers", i), f"unknown principal {reader!r}",
                                    hint=_suggest(reader, principal_names)))

    seen: dict[str, Declaration] = {}
    remote_seen: dict[tuple[str, str], tuple[Declaration, str]] = {}
    for decl in stack.secrets:
        d = decl.decl
        first = seen.get(d.name)
        if first is not None:
            diags.add(decl.at("name", message=f"secret {d.name!r} is declared twice (first at {first.file}:{first.line})",
                              hint="merge the two declarations or rename one"))
            continue
        seen[d.name] = decl

        targets_ok: list[str] = []
        for i, target in enumerate(d.targets):
            if target not in config.targets:
                diags.add(decl.at("targets", i, message=f"unknown target {target!r}",
                                  hint=_suggest(target, target_names)))
            elif target in targets_ok:
                diags.add(decl.at("targets", i, message=f"target {target!r} is listed twice"))
            else:
                targets_ok.append(target)

        for target in d.names:
            if target not in d.targets:
                diags.add(decl.at("names", target, key=True,
                                  message=f"name override for {target!r}, which is not one of this secret's targets",
                                  hint="add the target to 'targets' or remove the override"))

        readers = effective_readers(stack, decl)
        for i, reader in enumerate(readers):
            principal = config.principals.get(reader)
            where = ("readers", i) if d.readers is not None else ("name",)
            if principal is None:
                diags.add(decl.at(*where, message=f"unknown principal {reader!r}",
                                  hint=_suggest(reader, principal_names)))
                continue
            for target in targets_ok:
                rules = rules_for(config.targets[target].provider)
                if rules.principal_id(principal, reader) is None:
                    diags.add(decl.at(*where, message=f"principal {reader!r} has no {rules.kind} id, "
                                      f"but this secret lives in {rules.kind} target {target!r}",
                                      hint=f"add '{rules.kind}:' to principals.{reader}"))

        if d.value is not None and d.value.from_ is not None:
            source = d.value.from_.target
            if source not in config.targets:
                diags.add(decl.at("value", "from", "target", message=f"unknown target {source!r}",
                                  hint=_suggest(source, target_names)))

        if d.description is not None:
            check_description(stack, decl, d.description, targets_ok, diags)

        for target in targets_ok:
            rules = rules_for(config.targets[target].provider)
            remote = remote_name(decl, target, rules.kind)
            problem = rules.check_remote_name(remote)
            if problem:
                at: tuple[str, ...] = ("names", target) if target in d.names else ("name",)
                diags.add(decl.at(*at, message=f"{problem} (target {target!r})",
                                  hint=f"set names: {{{target}: <valid name>}} on this secret"))
                continue
            key = (target, rules.collision_key(remote))
            other = remote_seen.get(key)
            if other is not None:
                odecl, _oremote = other
                diags.add(decl.at("name", message=(
                    f"secrets {odecl.decl.name!r} ({odecl.file}:{odecl.line}) and {d.name!r} "
                    f"both map to remote name {remote!r} in target {target!r}"),
                    hint=f"rename one, or give one a names: {{{target}: ...}} override"))
            else:
                remote_seen[key] = (decl, remote)

    check_value_references(stack, seen, diags)
    check_value_cycles(seen, diags)
    check_endpoints(stack, diags)


def check_endpoints(stack: Stack, diags: Diagnostics) -> None:
    """Each target's endpoints follow its cloud's transport rule, the one its adapter enforces at connect."""
    for name, target in stack.config.targets.items():
        for problem in rules_for(target.provider).endpoint_problems(target):
            diags.add(stack.smap.at(("targets", name, *problem.field), f"target {name}: {problem.message}",
                                    hint=problem.hint))


def check_description(stack: Stack, decl: Declaration, description: str, targets: list[str],
                      diags: Diagnostics) -> None:
    """A description every target's cloud can store (Key Vault keeps 255 characters, the file allows 2,048)."""
    refused: dict[str, list[str]] = {}  # problem -> targets whose cloud refuses the description
    for target in targets:
        problem = rules_for(stack.config.targets[target].provider).check_description(description)
        if problem is not None:
            refused.setdefault(problem, []).append(target)
    for problem, where in refused.items():
        names = ", ".join(repr(t) for t in where)
        diags.add(decl.at("description", message=f"{problem} (target{'s' if len(where) > 1 else ''} {names})",
                          hint="shorten the description; a longer note can stay in the file as a YAML comment"))


def check_value_references(stack: Stack, declared: dict[str, Declaration], diags: Diagnostics) -> None:
    """A value derived from another declaration names one that exists and fits."""
    names = list(declared)
    for decl in declared.values():
        spec = decl.decl.value
        if spec is None:
            continue
        if spec.public_key_of is not None:
            ref = spec.public_key_of
            other = declared.get(ref.secret)
            if other is None:
                diags.add(decl.at("value", "public_key_of", message=f"public_key_of names {ref.secret!r}, "
                                  "which is not declared in this stack", hint=_suggest(ref.secret, names)))
            elif ref.target is not None and ref.target not in other.decl.targets:
                diags.add(decl.at("value", "public_key_of", "target", message=(
                    f"{ref.secret!r} does not live in target {ref.target!r}"),
                    hint=f"its targets: {', '.join(other.decl.targets)}"))
            elif other.decl.value is not None and other.decl.value.generate is not None \
                    and other.decl.value.generate.type == "password":
                diags.add(decl.at("value", "public_key_of", message=(
                    f"{ref.secret!r} is a generated password, which has no public half"),
                    hint="point it at a key, CA or certificate, e.g. one declared with generate: {type: ed25519}"))
            elif ref.format == "bundle" and other.decl.value is not None and other.decl.value.generate is not None \
                    and other.decl.value.generate.type != "ca":
                diags.add(decl.at("value", "public_key_of", "format", message=(
                    f"a trust bundle is made of a CA; {ref.secret!r} is not one"),
                    hint="point it at a secret declared with generate: {type: ca, ...}"))
        generate = spec.generate
        if generate is not None and generate.type == "certificate" and generate.ca is not None:
            ca = declared.get(generate.ca)
            if ca is None:
                diags.add(decl.at("value", "generate", "ca", message=(
                    f"CA {generate.ca!r} is not declared in this stack"), hint=_suggest(generate.ca, names)))
            elif ca.decl.value is None or ca.decl.value.generate is None or ca.decl.value.generate.type != "ca":
                diags.add(decl.at("value", "generate", "ca", message=(
                    f"{generate.ca!r} is not a CA (declared at {ca.file}:{ca.line})"),
                    hint="declare the CA with value: {generate: {type: ca, common_name: ...}}"))
        if spec.from_ is not None and spec.from_.target in stack.config.targets:
            other = declared.get(spec.from_.name)
            if other is decl and spec.from_.target in decl.decl.targets:
                diags.add(decl.at("value", "from", message=(
                    f"secret {decl.decl.name!r} takes its value from itself in target {spec.from_.target!r}"),
                    hint=f"remove {spec.from_.target!r} from its targets: that target is the source of truth"))


def check_value_cycles(declared: dict[str, Declaration], diags: Diagnostics) -> None:
    """Values derived from each other in a circle have no source: name every declaration on it."""
    for cycle in find_cycles(declared):
        if len(cycle) == 1:
            continue  # a value from itself is reported by check_value_references
        first = declared[cycle[0]]
        where = next(at for name, at in dependencies(first, declared) if name == cycle[1 % len(cycle)])
        chain = " -> ".join(f"{name} ({declared[name].file}:{declared[name].line})" for name in [*cycle, cycle[0]])
        diags.add(first.at(*where, message=f"the values of these secrets are derived from each other in a cycle: {chain}",
                           hint="one of them must take its value from a real source (generate, sops, env, file, "
                                "or a target no declaration in the cycle writes)"))
