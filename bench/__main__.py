"""`make bench`: run every benchmark that exists, printing figures and ratios.

So far: audit group commit against one commit per append (issue 4), on SQLite and, when
`--database-url` is given, PostgreSQL. The end-to-end load benchmark against the peers
(issue 8) is not written yet.
"""

from __future__ import annotations

import asyncio

from bench import audit_commit

asyncio.run(audit_commit.main())
