"""Evaluate the built-in policy pack over 10,000 secrets × 3 targets and print the speed.

Usage: python benchmarks/policy_eval.py [--secrets N] [--repeat R]

The stack is written to a temporary folder and loaded like any other (so the figures
include nothing of loading: only :func:`cloudsync.policy.evaluate`). A tenth of the
secrets break some policy, so violation building and waivers are exercised too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cloudsync.config.loader import load_stack
from cloudsync.policy import evaluate
from cloudsync.policy.budget import evaluator_cpu_seconds

HEADER = """\
version: 1
stack: bench
targets:
  aws-prod: {provider: aws, region: us-east-1}
  gcp-prod: {provider: gcp, project: acme-prod}
  azure-prod: {provider: azure, vault_url: "https://acme-prod.vault.azure.net"}
principals:
"""

PRINCIPAL = """\
  svc{i}-prod:
    aws: arn:aws:iam::123456789012:role/svc{i}
    gcp: serviceAccount:svc{i}@acme-prod.iam.gserviceaccount.com
    azure: 00000000-0000-0000-0000-{i:012d}
"""

SECRET = """\
  - name: team{team}/secret-{i}
    description: benchmark secret {i}
    targets: [aws-prod, gcp-prod, azure-prod]
    labels: {{env: prod, owner: team-{team}}}
    value: {{generate: {{length: {length}}}}}
    rotation: {rotation}
    expires: 90d
    deletion_protection: true
    readers: [svc{a}-prod, svc{b}-prod]
"""

WAIVERS = """\
waivers:
  - policy: CS012
    secrets: ["team0/*"]
    reason: benchmark waiver
    expires: 2999-12-31
"""


def write_stack(root: Path, secrets: int, principals: int = 50) -> None:
    parts = [HEADER]
    parts += [PRINCIPAL.format(i=i) for i in range(principals)]
    parts.append("secrets:\n")
    for i in range(secrets):
        bad = i % 10 == 0
        parts.append(SECRET.format(i=i, team=i % 20, length=16 if bad else 32, rotation="400d" if bad else "30d",
                                   a=i % principals, b=(i + 1) % principals))
    (root / "cloudsync.yaml").write_text("".join(parts))
    (root / "policies").mkdir()
    (root / "policies" / "waivers.yaml").write_text(WAIVERS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_stack(root, args.secrets)
        started = time.perf_counter()
        stack = load_stack(root)
        load_seconds = time.perf_counter() - started
        timings = []
        cpu = []
        report = None
        for _ in range(args.repeat):
            # CEL runs in the evaluator process: its CPU counts too (Linux; 0 where unknown).
            started, cpu_started = time.perf_counter(), time.process_time() + (evaluator_cpu_seconds() or 0.0)
            report = evaluate(stack)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() + (evaluator_cpu_seconds() or 0.0) - cpu_started)
    assert report is not None
    best, median = min(timings), statistics.median(timings)
    documents = report.evaluated
    policies = len(report.policies)
    print(f"stack: {args.secrets} secrets x 3 targets = {documents} documents, {policies} policies "
          f"(stack loaded in {load_seconds:.2f} s, not counted)")
    print(f"violations: {len(report.violations)} blocking/warning, {len(report.waived)} waived")
    print(f"evaluate: best {best:.2f} s, median {median:.2f} s over {args.repeat} runs "
          f"(CPU {min(cpu):.2f} s: wall time grows when other processes share the cores)")
    print(f"throughput: {documents / best:,.0f} documents/s, {documents * policies / best:,.0f} "
          f"policy evaluations/s (policy x document pairs)")


if __name__ == "__main__":
    main()
