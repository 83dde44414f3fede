"""The agency simulator on the benchmark's PostgreSQL databases.

    python -m bench._agency --port P --databases '{"420100": URL, ...}' [--seed S --foreigners F]

`hub simulate agency` always seeds and serves SQLite files under its data dir (the CLI passes
no database URLs to `run_simulator`). The benchmark wants the agencies on PostgreSQL, as in
production and so that two hub workers can write enrollments at once without SQLite's single
writer lock, so it calls the same `run_simulator` with the URLs of the databases it created.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hub.servers import serve_app
from simulators.run import run_simulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", default="var")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--foreigners", type=int, default=5000)
    parser.add_argument("--databases", required=True, help="JSON: region code -> URL")
    args = parser.parse_args()
    run_simulator(
        "agency", args.host, args.port, Path(args.data_dir), args.seed, args.foreigners,
        json.loads(args.databases), serve_app,
    )


if __name__ == "__main__":
    main()
