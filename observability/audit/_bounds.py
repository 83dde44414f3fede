"""The last line of defence at the record boundary: every text of an audit event bounded.

Much of what a record holds comes from a client (a claimed client id, an address, names it
sent), and the hub validates those upstream. This module makes sure that whatever slips
through can neither be refused by the store (PostgreSQL rejects a NUL and a value longer than
its column; nothing can hash a lone surrogate), nor bloat the chain, which is never pruned,
nor mislead an auditor's terminal. Each text, and each item of a list-valued field:

- has every control, format, surrogate, private-use, unassigned or line/paragraph-separator
  character replaced by U+FFFD (`REPLACEMENT`), so the record still shows that something
  was there;
- is cut to its field's cap (`CAPS`, `ITEM_CAPS`: the column widths of `_tables`), the last
  kept character replaced by U+2026 (`ELLIPSIS`), so a cut value never passes for a whole one.

The number of items of a list is not capped: they are the document's fields and the subjects
it touched, bounded by the query limits, and dropping one would hide an access.

Never: drop a record, raise on hostile text, or change a text that is already printable and
within its cap (the common case costs one `isprintable` and one `len`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = [
    "CAPS", "ELLIPSIS", "ITEM_CAPS", "REPLACEMENT", "bounded", "bounded_items", "within",
]

REPLACEMENT = "\ufffd"
ELLIPSIS = "\u2026"

# Characters per text field of a record (the widths of the `audit_records` columns).
CAPS: dict[str, int] = {
    "client_id": 128,
    "agency": 128,
    "purpose": 128,
    "operation": 256,
    "document_hash": 128,
    "trace_id": 64,
    "client_address": 64,
    "response_sha256": 64,
    "actor": 128,
    "actor_kind": 16,
    "case_reference": 64,
}
# Characters per item of a list-valued field (`subjects` is the key of the subject index).
ITEM_CAPS: dict[str, int] = {"fields": 256, "subjects": 64, "denied": 256, "error_codes": 64}

# Unicode general categories that are never shown as themselves.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def within(value: object, cap: int) -> bool:
    """Is `value` a text `bounded` would leave as it is?"""
    return type(value) is str and len(value) <= cap and value.isprintable()


def bounded(value: str | None, cap: int) -> str | None:
    """`value` printable and at most `cap` characters (see the module's rules)."""
    if value is None:
        return None
    if not isinstance(value, str):  # a caller's bug must not become an unhashable record
        value = str(value)
    if within(value, cap):
        return value
    cut = value[:cap] if len(value) <= cap else value[: cap - 1]
    safe = "".join(REPLACEMENT if unicodedata.category(c) in _UNSAFE else c for c in cut)
    return safe if len(value) <= cap else safe + ELLIPSIS


def bounded_items(values: Iterable[str], cap: int) -> tuple[str, ...]:
    """Each item of a list-valued field bounded to `cap` characters."""
    return tuple(bounded(value, cap) or "" for value in values)
