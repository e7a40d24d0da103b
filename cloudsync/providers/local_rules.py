"""The local store's rules for the core: the ``provider: local`` target model, names, principal ids.

The store keeps any name AWS would, and a principal's local id defaults to its name, so
every declared principal can read a local secret.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from cloudsync.config.fields import PathText
from cloudsync.providers.rules import ProviderRules, RemoteNames, TargetModel, id_field

if TYPE_CHECKING:
    from cloudsync.config.models import Principal


class LocalTarget(TargetModel):
    """The embedded store: a SQLite file, values encrypted at rest."""

    provider: Literal["local"]
    path: PathText = Field(".cloudsync/local.db", description="store file, relative to the stack folder (or in a "
                           "directory of files.allow)")


class LocalRules(ProviderRules):
    kind = "local"
    config_model = LocalTarget
    principal_field = id_field("id in the local store; defaults to the principal's name")
    remote_names = RemoteNames(re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}"), "letters, digits and /_+=.@- (at most 512)")

    def location(self, config: Any) -> str:
        return f"store {config.path}"

    def principal_id(self, principal: Principal, name: str) -> str:
        return super().principal_id(principal, name) or name


RULES = LocalRules()
