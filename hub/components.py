"""The hub's long-lived components, opened once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors._http import new_http_client
from connectors.agency import SqlEnrollmentSource, create_agency_engines
from connectors.cards import HttpCardSource
from connectors.wms import HttpPermitSource
from hub.settings import Settings
from schema import GraphQLService, Sources

__all__ = ["Hub"]


class NotConfigured(Exception):
    """A source system has no address in the settings."""


def hub_engine(url: str) -> AsyncEngine:
    if url.startswith("postgresql"):
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return create_async_engine(url)


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    http: httpx.AsyncClient
    permits: HttpPermitSource
    enrollments: SqlEnrollmentSource
    cards: HttpCardSource
    graphql: GraphQLService

    @classmethod
    async def open(cls, settings: Settings) -> Hub:
        if not settings.wms_url or not settings.cards_url:
            raise NotConfigured("HUB_WMS_URL and HUB_CARDS_URL must be set (or run `hub demo`)")
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        timeout = settings.upstream_timeout_seconds
        http = new_http_client(timeout, settings.upstream_max_connections)
        engines = create_agency_engines(settings.agency_databases, timeout)
        sources = Sources(
            permits=HttpPermitSource(http, settings.wms_url),
            enrollments=SqlEnrollmentSource(engines, timeout),
            cards=HttpCardSource(http, settings.cards_url),
        )
        graphql = GraphQLService(
            sources, served_regions=frozenset(engines), max_batch=settings.max_batch_size
        )
        return cls(
            settings=settings,
            engine=hub_engine(settings.database_url),
            http=http,
            permits=sources.permits,  # type: ignore[arg-type]
            enrollments=sources.enrollments,  # type: ignore[arg-type]
            cards=sources.cards,  # type: ignore[arg-type]
            graphql=graphql,
        )

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": await self._database_ok()}
        checks["wms"] = await self.permits.ping()
        checks["cards"] = await self.cards.ping()
        for region, ok in (await self.enrollments.ping()).items():
            checks[f"agency-{region}"] = ok
        return checks

    async def _database_ok(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def close(self) -> None:
        await self.http.aclose()
        await self.enrollments.close()
        await self.engine.dispose()
