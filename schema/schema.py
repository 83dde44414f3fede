"""The unified schema: one strawberry Schema over the three source systems.

The served schema is an Apollo Federation v2 subgraph (`schema.entities`): the public contract
plus `_service` and `_entities` on Query and `@key` on the entity types. `public_sdl` is the
contract as agencies know it (`hub schema export`); `subgraph_sdl` what a gateway composes
(`hub schema export --federation`, the same text `_service { sdl }` answers).
"""

from __future__ import annotations

import re

import strawberry

from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription

__all__ = ["build_schema", "public_sdl", "subgraph_sdl"]

# What federation adds to the printed schema, block by block (blocks are blank-line separated).
_FEDERATION_BLOCK = re.compile(r"^(schema @link|scalar _Any$|union _Entity |type _Service )")
_FEDERATION_LINE = re.compile(r"^  _(entities|service)\b")
_KEY = re.compile(r' @key\(fields: "[^"]*"\)')


def build_schema() -> strawberry.federation.Schema:
    return strawberry.federation.Schema(
        query=Query, mutation=Mutation, subscription=Subscription, federation_version="2.5"
    )


def subgraph_sdl(schema: strawberry.federation.Schema | None = None) -> str:
    return (schema or build_schema()).as_str()


def public_sdl(schema: strawberry.federation.Schema | None = None) -> str:
    """The subgraph SDL without what federation adds: the contract, unchanged by it."""
    blocks = subgraph_sdl(schema).split("\n\n")
    kept = [
        "\n".join(
            _KEY.sub("", line) for line in block.splitlines() if not _FEDERATION_LINE.match(line)
        )
        for block in blocks
        if not _FEDERATION_BLOCK.match(block)
    ]
    # Removing Query's first fields leaves the blank line before its next described one.
    return "\n\n".join(kept).replace("{\n\n", "{\n").rstrip("\n")
