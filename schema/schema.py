"""The unified schema: one strawberry Schema over the three source systems."""

from __future__ import annotations

import strawberry

from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription

__all__ = ["build_schema"]


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)
