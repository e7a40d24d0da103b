"""Field types shared by the core's config models and each provider's target model.

They live apart from :mod:`cloudsync.config.models` because that module assembles the
stack file from the providers' target models (through the registry): a provider's model
must be able to build on these without importing the module that imports it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cloudsync.config.limits import shown

# GCP's label rules are the strictest of the three clouds, so labels follow them everywhere.
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_LABEL_PREFIXES = ("managed-by", "cloudsync")


def no_items() -> list[Any]:
    """A new empty list: the ``default_factory`` of list fields, in place of ``list``.

    Pydantic reads a factory's signature; for the builtin ``list`` that means parsing its
    text signature with :mod:`tokenize`, whose regular expressions take ~10 ms of every
    command's start to compile. A Python function's signature costs nothing of the kind.
    """
    return []


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not LABEL_KEY_RE.fullmatch(key):
            raise ValueError(
                f"invalid label key {shown(key)}: keys are lowercase, start with a letter, and use "
                "only a-z, 0-9, '_' and '-' (at most 63 characters) so they are valid in every cloud"
            )
        if key.startswith(RESERVED_LABEL_PREFIXES):
            raise ValueError(f"label key {shown(key)} is reserved for cloudsync's ownership metadata")
        if not isinstance(value, str) or not LABEL_VALUE_RE.fullmatch(value):
            raise ValueError(
                f"invalid value {shown(value)} for label {shown(key)}: values use only a-z, 0-9, '_' and '-' "
                "(at most 63 characters)"
            )
    return labels


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


class PathMarker:
    """Marks a field as a path the stack names: :mod:`cloudsync.config.paths` checks every such field."""


IS_PATH = PathMarker()


def _check_path_text(text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"invalid path {shown(text)}: a path cannot hold control characters")
    return text


# A file or folder path written in a stack file; where it may point is checked by cloudsync.config.paths.
PathText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_check_path_text), IS_PATH]
