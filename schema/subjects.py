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
    # Identifiers of rows refused as outside the client's jurisdiction (SSNs, card numbers):
    # subjects of the record, which is DENIED when nothing else was done.
    refused: set[str] = field(default_factory=set)
    items_done: bool = False  # some item of a batch succeeded

    @property
    def only_refused(self) -> bool:
        """Something was refused for the jurisdiction, and no item was done."""
        return bool(self.refused) and not self.items_done

    def clear(self) -> None:
        for touched in (
            self.permits, self.ssns, self.employers, self.subjects_read, self.item_errors,
            self.refused,
        ):
            touched.clear()
        self.items_done = False

    def subjects(self) -> list[str]:
        return sorted(
            self.permits | self.ssns | self.employers | self.subjects_read | self.refused
        )
