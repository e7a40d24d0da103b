"""How cloudsync's metadata maps onto Key Vault tags and attributes.

Tags belong to a *version*. cloudsync writes a value with all its tags in one ``PUT`` and
then stamps that version (a ``PATCH`` of the same version) with its own id
(``cloudsync-version``) and creation time (``cloudsync-created``). The secret list shows the
current version's tags and ``created`` attribute, so "the current version is the one
cloudsync wrote" is decided from the list alone:

- the current version's tags carry cloudsync's record and ``cloudsync-created`` equals its
  ``created`` attribute -> it is cloudsync's version, no further call;
- the tags are missing (``az keyvault secret set`` writes none) or were copied onto a newer
  version (``created`` differs) -> one versions listing finds the version cloudsync wrote,
  and the plan reports ``current_version`` vs ``record.version``.

Key Vault allows 15 tags per version (names up to 512 characters, values up to 256).
The description is stored as the version's content type (up to 255 characters).
"""

from __future__ import annotations

from collections.abc import Mapping

from cloudsync.providers.base import ProviderError, SecretState, ValueRecord, encode_meta

CREATED_TAG = "cloudsync-created"  # unix time ("created" attribute) of the version cloudsync wrote
MAX_TAGS = 15
MAX_TAG_VALUE = 256
MAX_CONTENT_TYPE = 255


def tags_for(stack: str, state: SecretState, record: ValueRecord | None, *, created: str | None = None,
             include_version: bool = True) -> dict[str, str]:
    """User labels plus ownership and value record, as the tags of one version."""
    tags = {**state.labels, **encode_meta(stack, state, record, include_version=include_version)}
    if created is not None and include_version:
        tags[CREATED_TAG] = created
    return tags


def check(name: str, tags: Mapping[str, str], description: str | None) -> None:
    """Refuse before writing what Key Vault would refuse, with a message that says why."""
    if len(tags) > MAX_TAGS:
        users = sum(1 for k in tags if not k.startswith(("managed-by", "cloudsync-")))
        raise ProviderError(
            f"{name}: {len(tags)} tags exceed Key Vault's limit of {MAX_TAGS} per secret version",
            code="TooManyTags",
            hint=f"cloudsync needs {len(tags) - users} tags for ownership and its value record; "
                 f"declare at most {MAX_TAGS - (len(tags) - users)} labels for this secret")
    for key, value in tags.items():
        if len(value) > MAX_TAG_VALUE:
            raise ProviderError(f"{name}: the value of tag {key!r} exceeds {MAX_TAG_VALUE} characters",
                                code="TagTooLong")
    if description is not None and len(description) > MAX_CONTENT_TYPE:
        raise ProviderError(
            f"{name}: the description has {len(description)} characters; Key Vault keeps it as the content "
            f"type, which holds at most {MAX_CONTENT_TYPE}", code="DescriptionTooLong",
            hint=f"shorten the description to {MAX_CONTENT_TYPE} characters")


def created_stamp(created_on: object) -> str | None:
    """The ``created`` attribute as the string stored in ``cloudsync-created``."""
    timestamp = getattr(created_on, "timestamp", None)
    return str(int(timestamp())) if callable(timestamp) else None
