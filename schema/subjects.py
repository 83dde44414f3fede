"""What a request touched: the subjects (identifiers) and fields it returned, for the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Touched"]


@dataclass(slots=True)
class Touched:
    permits: set[str] = field(default_factory=set)
    ssns: set[str] = field(default_factory=set)
    employers: set[str] = field(default_factory=set)
    subjects_read: set[str] = field(default_factory=set)  # named in an access-log filter
    # Codes of errors answered inside the data (a batch's failed items), not as GraphQL errors.
    item_errors: set[str] = field(default_factory=set)

    def clear(self) -> None:
        for touched in (
            self.permits, self.ssns, self.employers, self.subjects_read, self.item_errors
        ):
            touched.clear()

    def subjects(self) -> list[str]:
        return sorted(self.permits | self.ssns | self.employers | self.subjects_read)
