"""The services behind the administrative commands (`hub clients`, `hub keys`, `hub audit`).

The same components a running hub opens for its registry, keys and audit log, opened by the same
function (`hub.wiring.open_core`), without the source systems: admin actions go through the same
`AuthService`, so they are written to the same audit log through the same bridge as on a running
hub. Never: print or return a secret (the CLI shows a new client's secret once), or reach a
source system.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

from sqlalchemy.exc import SQLAlchemyError

from hub.settings import Settings
from hub.wiring import Core, open_core

__all__ = ["AdminServices", "AdminUnavailable", "admin_services"]

# What the commands get: the serving hub's core, opened by the same function.
AdminServices: TypeAlias = Core


class AdminUnavailable(Exception):
    """The hub database could not be opened, migrated or used (one line, safe to print)."""


@asynccontextmanager
async def admin_services(settings: Settings) -> AsyncIterator[AdminServices]:
    """Open (and migrate) the hub database, the key-value store, auth, the audit log and the
    trusted documents: `hub.wiring.open_core`, with its failures made one printable line."""
    try:
        core = await open_core(settings)
    except (SQLAlchemyError, OSError) as exc:
        raise AdminUnavailable(f"cannot open the hub database: {_first_line(exc)}") from exc
    try:
        yield core
    except SQLAlchemyError as exc:
        raise AdminUnavailable(f"hub database: {_first_line(exc)}") from exc
    finally:
        await core.close()


def _first_line(exc: BaseException) -> str:
    """SQLAlchemy messages carry the statement and a help link on further lines."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc) or type(exc).__name__
    return text.strip().splitlines()[0]
