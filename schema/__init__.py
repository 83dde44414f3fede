"""The unified GraphQL schema and the GraphQL stage of the request path.

Never imports `hub`; reaches source systems only through `connectors` protocols and DataLoaders.
"""

from schema.loaders import Sources
from schema.pipeline import GraphQLOutcome, GraphQLRequest, GraphQLService
from schema.schema import build_schema, public_sdl, subgraph_sdl

__all__ = [
    "GraphQLOutcome", "GraphQLRequest", "GraphQLService", "Sources", "build_schema", "public_sdl",
    "subgraph_sdl",
]
