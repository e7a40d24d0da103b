"""The four targets of the contract suite, each with its cloud's own client and fake switches.

A :class:`Cloud` gives the suite what it cannot ask cloudsync for: a target on the fake
server, principal ids in the cloud's own form, edits made by someone else with the cloud's
own SDK (an unowned secret, a value read behind cloudsync's back), and the fake's faults
(throttling, a denied permission, a lost answer, short pages). Where a cloud legitimately
differs from the others, it says so in a class attribute that the tests assert on by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import boto3
import grpc
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from botocore.exceptions import ClientError
from google.api_core import exceptions as gexc

from cloudsync.providers.local import LocalStore, LocalStoreError
from cloudsync.values.secret import SecretValue
from tests.fakes.azure import AzureFake
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.contract.drive import Driver

PROJECT = "acme-prod"
REGION = "us-east-1"


class Cloud(ABC):
    kind: ClassVar[str]
    target: ClassVar[str]
    # Where a cloud legitimately differs (tests name these, never skip silently):
    soft_delete: ClassVar[bool] = True  # a delete can be undone (restore); GCP deletes for good
    networked: ClassVar[bool] = True  # calls cross a network: throttling, lost answers, pages, IAM
    idempotent_value_write: ClassVar[bool] = False  # a retried value write adds no second version
    lock_writes_a_value: ClassVar[bool] = False  # the apply lock needs the permission that writes values
    # After someone else writes a value, the store still says which version cloudsync wrote.
    records_own_version_after_foreign_write: ClassVar[bool] = True

    def __init__(self, root: Path) -> None:
        self.root = root

    def driver(self, target_extra: str = "") -> Driver:
        """cloudsync on a stack folder with this one target (``target_extra``: more target fields, YAML)."""
        target = self.target_yaml()
        if target_extra:
            target = target[:-1] + ", " + target_extra + "}"
        return Driver(self.root / "stack", self.kind, self.target, target, self.principals())

    @abstractmethod
    def target_yaml(self) -> str:
        """The target as a YAML flow mapping."""

    @abstractmethod
    def principals(self) -> dict[str, str]:
        """``api`` and ``worker`` in this cloud's own principal form."""

    # -- someone else, with the cloud's own SDK --------------------------------------

    @abstractmethod
    def put_unowned(self, remote: str, value: str, labels: dict[str, str]) -> None:
        """Create a secret the way another team would (no cloudsync metadata)."""

    @abstractmethod
    def native_value(self, remote: str) -> str | None:
        """The current value, read past cloudsync; None when there is none to read."""

    @abstractmethod
    def versions(self, remote: str) -> int:
        """How many value versions the secret holds."""

    @abstractmethod
    def enabled_versions(self, remote: str) -> dict[str, bool]:
        """Every version id and whether a reader can still reach it (AWS: it holds a staging label)."""

    @abstractmethod
    def put_value(self, remote: str, value: str) -> None:
        """Write a new value the way someone else would (a new version without cloudsync's metadata)."""

    # -- the fake's switches (networked clouds only) ------------------------------------

    def throttle_value_writes(self, times: int) -> None:
        raise NotImplementedError(f"{self.kind} has no network to throttle")

    def deny_value_writes(self) -> str:
        """Refuse the permission that writing a value needs; return its name in this cloud's terms."""
        raise NotImplementedError(f"{self.kind} has no permission model")

    def value_write_calls(self) -> int:
        raise NotImplementedError

    def lose_value_write(self) -> None:
        raise NotImplementedError(f"{self.kind} has no answers to lose")

    def short_pages(self, size: int) -> None:
        raise NotImplementedError(f"{self.kind} lists in one query")

    def list_calls(self) -> int:
        raise NotImplementedError

    def pending_faults(self) -> int:
        return 0


class Local(Cloud):
    kind = target = "local"
    networked = False

    def target_yaml(self) -> str:
        return "{provider: local, path: .cloudsync/local.db}"

    def principals(self) -> dict[str, str]:
        return {"api": "api", "worker": "worker"}

    def _store(self) -> LocalStore:
        return LocalStore(self.root / "stack" / ".cloudsync" / "local.db")

    def put_unowned(self, remote: str, value: str, labels: dict[str, str]) -> None:
        store = self._store()
        try:
            store.put_value(remote, SecretValue(value), labels)
        finally:
            store.close()

    def native_value(self, remote: str) -> str | None:
        store = self._store()
        try:
            return store.get_value(remote).reveal_text()
        except LocalStoreError:
            return None
        finally:
            store.close()

    def versions(self, remote: str) -> int:
        store = self._store()
        try:
            return int(store.conn.execute("SELECT COUNT(*) FROM versions WHERE name = ?", (remote,)).fetchone()[0])
        finally:
            store.close()

    def enabled_versions(self, remote: str) -> dict[str, bool]:
        store = self._store()
        try:
            return {v.version: v.enabled for v in store.versions(remote)}
        finally:
            store.close()

    def put_value(self, remote: str, value: str) -> None:
        store = self._store()
        try:
            store.put_value(remote, SecretValue(value))
        finally:
            store.close()


class Aws(Cloud):
    kind = "aws"
    target = "aws-prod"
    idempotent_value_write = True  # PutSecretValue carries a ClientRequestToken
    # moto drops the custom staging label from cloudsync's version on an out-of-band put (AWS
    # keeps it), so cloudsync no longer knows that version; it is deprecated by the next write anyway.
    records_own_version_after_foreign_write = False

    def __init__(self, root: Path, moto: MotoServer, proxy: FaultProxy) -> None:
        super().__init__(root)
        self.proxy = proxy  # cloudsync talks to moto through it; out-of-band edits go straight to moto
        self.sm: Any = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.url)

    def target_yaml(self) -> str:
        return f'{{provider: aws, region: {REGION}, endpoint: "{self.proxy.url}"}}'

    def principals(self) -> dict[str, str]:
        return {"api": "arn:aws:iam::123456789012:role/payments-api",
                "worker": "arn:aws:iam::123456789012:role/billing-worker"}

    def put_unowned(self, remote: str, value: str, labels: dict[str, str]) -> None:
        self.sm.create_secret(Name=remote, SecretString=value, Tags=[{"Key": k, "Value": v} for k, v in labels.items()])

    def native_value(self, remote: str) -> str | None:
        try:
            return str(self.sm.get_secret_value(SecretId=remote)["SecretString"])
        except ClientError:
            return None  # absent, or scheduled for deletion

    def versions(self, remote: str) -> int:
        return len(self.sm.describe_secret(SecretId=remote).get("VersionIdsToStages", {}))

    def enabled_versions(self, remote: str) -> dict[str, bool]:
        listed = self.sm.list_secret_version_ids(SecretId=remote, IncludeDeprecated=True)["Versions"]
        return {str(v["VersionId"]): bool(v.get("VersionStages")) for v in listed}

    def put_value(self, remote: str, value: str) -> None:
        self.sm.put_secret_value(SecretId=remote, SecretString=value)

    def throttle_value_writes(self, times: int) -> None:
        self.proxy.fail("PutSecretValue", "ThrottlingException", times=times)

    def deny_value_writes(self) -> str:
        self.proxy.fail("PutSecretValue", "AccessDeniedException", times=1000,
                        message="User: arn:aws:iam::123456789012:user/cloudsync is not authorized to perform: "
                                "secretsmanager:PutSecretValue")
        return "secretsmanager:PutSecretValue"

    def value_write_calls(self) -> int:
        return self.proxy.seen.count("PutSecretValue")

    def lose_value_write(self) -> None:
        self.proxy.lose("PutSecretValue")

    def short_pages(self, size: int) -> None:
        self.proxy.max_results = size

    def list_calls(self) -> int:
        return self.proxy.seen.count("ListSecrets")

    def pending_faults(self) -> int:
        return sum(f.times for f in self.proxy.faults if f.times < 1000)


class Gcp(Cloud):
    kind = "gcp"
    target = "gcp-prod"
    soft_delete = False  # Secret Manager has no soft delete: a deleted secret is gone

    def __init__(self, root: Path, fake: FakeSecretManager) -> None:
        super().__init__(root)
        self.fake = fake
        self.sm = fake.client()

    def target_yaml(self) -> str:
        return f'{{provider: gcp, project: {PROJECT}, endpoint: "{self.fake.address}"}}'

    def principals(self) -> dict[str, str]:
        return {"api": f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com",
                "worker": f"serviceAccount:worker@{PROJECT}.iam.gserviceaccount.com"}

    def _name(self, remote: str) -> str:
        return f"projects/{PROJECT}/secrets/{remote}"

    def put_unowned(self, remote: str, value: str, labels: dict[str, str]) -> None:
        self.sm.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": remote,
                                       "secret": {"replication": {"automatic": {}}, "labels": labels}})
        self.sm.add_secret_version(request={"parent": self._name(remote), "payload": {"data": value.encode()}})

    def native_value(self, remote: str) -> str | None:
        try:
            response = self.sm.access_secret_version(name=f"{self._name(remote)}/versions/latest")
        except gexc.NotFound:
            return None
        return bytes(response.payload.data).decode()

    def versions(self, remote: str) -> int:
        return len(list(self.sm.list_secret_versions(request={"parent": self._name(remote)})))

    def enabled_versions(self, remote: str) -> dict[str, bool]:
        return {v.name.rsplit("/", 1)[-1]: v.state.name == "ENABLED"
                for v in self.sm.list_secret_versions(request={"parent": self._name(remote)})}

    def put_value(self, remote: str, value: str) -> None:
        self.sm.add_secret_version(request={"parent": self._name(remote), "payload": {"data": value.encode()}})

    def throttle_value_writes(self, times: int) -> None:
        self.fake.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, times, methods=["AddSecretVersion"], retry_delay=0.01)

    def deny_value_writes(self) -> str:
        self.fake.deny("AddSecretVersion")
        return "secretmanager.versions.add"

    def value_write_calls(self) -> int:
        return self.fake.calls["AddSecretVersion"]

    def lose_value_write(self) -> None:
        self.fake.lose("AddSecretVersion")

    def short_pages(self, size: int) -> None:
        self.fake.max_page_size = size

    def list_calls(self) -> int:
        return self.fake.calls["ListSecrets"]

    def pending_faults(self) -> int:
        return self.fake.pending_faults()

    def close(self) -> None:
        self.sm.transport.close()


class Azure(Cloud):
    kind = "azure"
    target = "azure-prod"
    lock_writes_a_value = True  # the lock is a secret set with setSecret, like a value

    def __init__(self, root: Path, fake: AzureFake, secrets: SecretClient) -> None:
        super().__init__(root)
        self.fake = fake
        self.secrets = secrets

    def target_yaml(self) -> str:
        fake = self.fake
        return (f'{{provider: azure, vault_url: "{fake.url}", subscription_id: "{fake.subscription_id}", '
                f'resource_group: "{fake.resource_group}", vault_name: "{fake.vault_name}", '
                f'arm_endpoint: "{fake.url}"}}')

    def principals(self) -> dict[str, str]:
        return {"api": "00000000-0000-4000-8000-0000000000a1", "worker": "00000000-0000-4000-8000-0000000000a2"}

    def put_unowned(self, remote: str, value: str, labels: dict[str, str]) -> None:
        self.secrets.set_secret(remote, value, tags=labels)

    def native_value(self, remote: str) -> str | None:
        try:
            return self.secrets.get_secret(remote).value
        except ResourceNotFoundError:
            return None

    def versions(self, remote: str) -> int:
        return len(list(self.secrets.list_properties_of_secret_versions(remote)))

    def enabled_versions(self, remote: str) -> dict[str, bool]:
        return {str(v.version): bool(v.enabled) for v in self.secrets.list_properties_of_secret_versions(remote)}

    def put_value(self, remote: str, value: str) -> None:
        self.secrets.set_secret(remote, value)

    def throttle_value_writes(self, times: int) -> None:
        self.fake.inject(429, times, retry_after="0", operations=["kv.set"])

    def deny_value_writes(self) -> str:
        action = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
        self.fake.deny(action)
        return action

    def value_write_calls(self) -> int:
        return self.fake.calls["kv.set"]

    def lose_value_write(self) -> None:
        self.fake.lose("kv.set")

    def short_pages(self, size: int) -> None:
        self.fake.list_page_size = size
        self.fake.empty_pages = 1  # and an empty page with a nextLink before each, as Key Vault does

    def list_calls(self) -> int:
        return self.fake.calls["kv.list"]

    def pending_faults(self) -> int:
        return self.fake.pending_faults()
