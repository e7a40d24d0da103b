"""Reading values: ``GetSecretValue`` for one, ``BatchGetSecretValue`` for many (20 a call).

A plan that copies N values from an AWS target reads them in ⌈N/20⌉ batch calls instead of N
single ones. AWS answers each secret on its own inside a batch: the values it could read in
``SecretValues``, the others in ``Errors`` (``ResourceNotFoundException``, ``AccessDenied…``,
``DecryptionFailure``...), so one missing or denied secret is that secret's error, never the
batch's. A per-secret failure reads exactly as the same failure of ``GetSecretValue`` (AWS
performs, and logs to CloudTrail, a ``GetSecretValue`` for each secret of a batch).

An identity without ``secretsmanager:BatchGetSecretValue`` (an IAM policy written before
cloudsync used it) is refused the batch as a whole, while each secret's own permission is
``GetSecretValue``: then the target's values are read one at a time, as before, with one
warning naming the permission to add. A denied ``GetSecretValue`` still fails that secret.

A secret the batch cannot settle falls back to one ``GetSecretValue``: a transient
per-secret error (the single read retries it), a secret that neither list mentions, and every
secret of a batch that failed as a whole with ``ResourceNotFoundException`` (moto's answer
when one secret has no current value) or a validation error. A batch throttled, unreachable
or refused for its credentials as a whole is each secret's error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cloudsync.interrupts import in_workers
from cloudsync.providers.aws.calls import SecretsManagerApi, is_not_found
from cloudsync.providers.aws.errors import map_error
from cloudsync.providers.base import NotFoundError, ProviderError, detached
from cloudsync.providers.errors import ErrorKind
from cloudsync.values.secret import SecretValue

BATCH_SIZE = 20  # the most SecretIdList takes
# With SecretIdList, one call answers the whole list; NextToken is followed, but never forever.
MAX_PAGES = 5
PARALLEL = 8  # batch calls in flight per target
SINGLE = "GetSecretValue"
# A batch that failed as a whole in these ways is read one secret at a time: each name gets its
# own answer. Denied, throttled, unreachable or rejected credentials would fail each single
# read too, and are each name's error at once.
SETTLED_ONE_BY_ONE = frozenset({ErrorKind.NOT_FOUND, ErrorKind.OTHER, ErrorKind.CONFLICT})
log = logging.getLogger("cloudsync")


def value_of(response: Mapping[str, Any], name: str) -> SecretValue:
    """The value a GetSecretValue answer (or a batch's entry) holds."""
    if response.get("SecretString") is not None:
        return SecretValue(response["SecretString"])
    if response.get("SecretBinary") is not None:
        return SecretValue(response["SecretBinary"])
    raise ProviderError(f"{SINGLE} {name}: the secret has no value", code="NoValue")


def absence(error: ProviderError) -> ProviderError:
    """No such secret, or no current version: absence (:class:`NotFoundError`), not failure."""
    return NotFoundError(error.message, code=error.code) if is_not_found(error) else error


class ValueReader:
    """The value reads of one target."""

    def __init__(self, api: SecretsManagerApi) -> None:
        self.api = api
        self.batch_denied = False  # once refused BatchGetSecretValue, this target reads one at a time
        self._denial = threading.Lock()
        self.notes: list[str] = []  # how values were read, for the access scan's notes (as the read's)

    def read_one(self, name: str) -> SecretValue:
        try:
            response = self.api.call("GetSecretValue", name=name, idempotent=True, SecretId=name)
        except ProviderError as exc:
            raise absence(exc) from None
        return value_of(response, name)

    def read_many(self, names: Sequence[str]) -> dict[str, SecretValue | ProviderError]:
        """Each name's value or error, 20 names a call, a few calls at once (paced in the batch family)."""
        wanted = list(dict.fromkeys(names))
        chunks = [wanted[start:start + BATCH_SIZE] for start in range(0, len(wanted), BATCH_SIZE)]
        found: dict[str, SecretValue | ProviderError] = {}
        # One call answers in ~100 ms: a few in flight reach the family's 100/s, one alone 10/s.
        for answer in in_workers(self._chunk, chunks, PARALLEL):
            found.update(answer)
        return {name: found[name] for name in wanted}  # in the order asked, as the default loop answers

    def _chunk(self, chunk: list[str]) -> dict[str, SecretValue | ProviderError]:
        found = {} if self.batch_denied else self._batch(chunk)
        for name in chunk:
            if name not in found:
                found[name] = self._single(name)
        return found

    def _single(self, name: str) -> SecretValue | ProviderError:
        try:
            return self.read_one(name)
        except ProviderError as exc:
            return detached(exc)

    def _batch(self, chunk: list[str]) -> dict[str, SecretValue | ProviderError]:
        """What one batch (and its continuation pages) answered for ``chunk``; names left out are unanswered."""
        found: dict[str, SecretValue | ProviderError] = {}
        asked = set(chunk)
        params: dict[str, Any] = {"SecretIdList": chunk}
        for _ in range(MAX_PAGES):
            try:
                page = self.api.call("BatchGetSecretValue", idempotent=True, **params)
            except ProviderError as exc:
                return self._batch_failed(exc, chunk, found)
            for entry in page.get("SecretValues") or []:
                name = entry.get("Name")
                if name in asked:
                    try:
                        found[name] = value_of(entry, name)
                    except ProviderError as exc:
                        found[name] = detached(exc)
            for entry in page.get("Errors") or []:
                name = entry.get("SecretId")
                if name in asked:
                    error = self._secret_error(name, entry, page)
                    if not error.transient:  # a transient one is retried by the single read
                        found[name] = error
            token = page.get("NextToken")
            if not token or asked <= found.keys():
                break
            params["NextToken"] = token
        return found

    def _batch_failed(self, exc: ProviderError, chunk: list[str],
                      found: dict[str, SecretValue | ProviderError]) -> dict[str, SecretValue | ProviderError]:
        if exc.kind is ErrorKind.PERMISSION:
            self._batch_refused(exc)
            return found
        if exc.kind in SETTLED_ONE_BY_ONE:
            # AWS reports a missing secret inside Errors; moto fails the whole call for a secret
            # without a current version (tests/providers/aws/test_moto_differences.py). A request
            # refused as a whole (one name AWS would not take) fails each name on its own.
            return found
        error = detached(exc)
        return {**{name: error for name in chunk}, **found}

    def _batch_refused(self, exc: ProviderError) -> None:
        with self._denial:
            if self.batch_denied:
                return
            self.batch_denied = True
        note = (f"BatchGetSecretValue was refused ({exc.message}); values were read one at a time with "
                "GetSecretValue instead. Add secretsmanager:BatchGetSecretValue (resource \"*\") to the identity's "
                "policy, as `cloudsync permissions` prints it")
        self.notes.append(note)
        log.warning("target %s: %s", self.api.target, note)

    def _secret_error(self, name: str, entry: Mapping[str, Any], page: Mapping[str, Any]) -> ProviderError:
        """One secret's entry of ``Errors``, as GetSecretValue of that secret would have failed."""
        response: Any = {"Error": {"Code": entry.get("ErrorCode") or "Unknown", "Message": entry.get("Message") or ""},
                         "ResponseMetadata": page.get("ResponseMetadata") or {}}
        mapped = map_error(ClientError(response, SINGLE), target=self.api.target, operation=SINGLE,
                           iam_action=f"secretsmanager:{SINGLE}", name=name, carries_value=False,
                           endpoint=self.api.client.meta.endpoint_url)
        return detached(absence(mapped))

