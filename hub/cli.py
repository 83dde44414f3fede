"""The `hub` command line (DESIGN section 4)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from hub.settings import Settings

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    asyncio.run(run_demo(args.host, args.port, Path(args.data_dir), args.seed, args.foreigners))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import create_app

    settings = Settings()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from connectors.simulators.run import run_simulator

    run_simulator(
        args.kind, args.host, args.port, Path(args.data_dir), args.seed, args.foreigners, None
    )
    return 0


def _schema_export(args: argparse.Namespace) -> int:
    from schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="permit-hub: the GraphQL data-exchange hub")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="hub + simulated source systems + synthetic data")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default="var")
    demo.add_argument("--seed", type=int, default=2025)
    demo.add_argument("--foreigners", type=int, default=5000)
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="the hub alone, configured by HUB_* variables")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    simulate = commands.add_parser("simulate", help="run one simulated source system")
    simulate.add_argument("kind", choices=["wms", "agency", "cards"])
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, required=True)
    simulate.add_argument("--data-dir", default="var")
    simulate.add_argument("--seed", type=int, default=2025)
    simulate.add_argument("--foreigners", type=int, default=5000)
    simulate.set_defaults(run=_simulate)

    schema = commands.add_parser("schema", help="schema tools")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    export = schema_commands.add_parser("export", help="print the SDL")
    export.set_defaults(run=_schema_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
