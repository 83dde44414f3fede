"""Fetch GraphiQL's files for the hub's offline IDE from the npm registry, checked, once.

    python tools/fetch_graphiql.py           download, check, write hub/static/graphiql/
    python tools/fetch_graphiql.py --check   only check the committed files against the lock

The lock (hub/static/graphiql/lock.json) pins each package's version, its tarball and the
registry's `dist.integrity` (sha512 of the tarball), and the sha384 of every file taken from
it. A tarball whose integrity differs, or a file whose hash differs, stops the script and
writes nothing. The files are committed and shipped as package data, so the hub never fetches
anything at run time (a closed network has no CDN) and the page's scripts carry their sha384
as Subresource Integrity. To move to a new version: edit the lock's version, tarball and
integrity (from `npm view <pkg>@<version> dist`), then run with `--relock`, which takes the
file hashes from the checked tarball, and review the diff.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx

FOLDER = Path(__file__).resolve().parents[1] / "hub" / "static" / "graphiql"
LOCK = FOLDER / "lock.json"
REGISTRY = "https://registry.npmjs.org/"


def sri(algorithm: str, data: bytes) -> str:
    """`<algorithm>-<base64 digest>`, the form of npm's `dist.integrity` and of SRI."""
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def load_lock() -> dict[str, Any]:
    lock: dict[str, Any] = json.loads(LOCK.read_text())
    return lock


def check_committed(lock: dict[str, Any]) -> list[str]:
    """The problems of the committed files against the lock (empty: all match)."""
    problems = []
    for name, package in lock["packages"].items():
        for member, file in package["files"].items():
            path = FOLDER / file["as"]
            if not path.is_file():
                problems.append(f"{name}: {file['as']} is missing")
            elif sri("sha384", path.read_bytes()) != file["sha384"]:
                problems.append(f"{name}: {file['as']} differs from {member} of the lock")
    return problems


def _download(package: dict[str, Any], client: httpx.Client) -> bytes:
    if not package["tarball"].startswith(REGISTRY):
        raise SystemExit(f"{package['tarball']}: only the npm registry is fetched from")
    response = client.get(package["tarball"])
    response.raise_for_status()
    algorithm = package["integrity"].split("-", 1)[0]
    if sri(algorithm, response.content) != package["integrity"]:
        raise SystemExit(f"{package['tarball']}: integrity differs from the lock; nothing written")
    return response.content


def fetch(lock: dict[str, Any], relock: bool) -> dict[str, bytes]:
    """Every file of the lock, from checked tarballs: `{as: content}`."""
    files: dict[str, bytes] = {}
    with httpx.Client(timeout=120, follow_redirects=False) as client:
        for name, package in lock["packages"].items():
            tarball = _download(package, client)
            with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
                for member, file in package["files"].items():
                    extracted = archive.extractfile(member)
                    if extracted is None:
                        raise SystemExit(f"{name}: {member} is not a file of the tarball")
                    content = extracted.read()
                    if relock:
                        file["sha384"] = sri("sha384", content)
                    elif sri("sha384", content) != file["sha384"]:
                        raise SystemExit(f"{name}: {member} differs from the lock")
                    files[file["as"]] = content
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the committed files only")
    parser.add_argument("--relock", action="store_true", help="take file hashes from tarballs")
    args = parser.parse_args()
    lock = load_lock()
    if args.check:
        problems = check_committed(lock)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    files = fetch(lock, args.relock)
    for name, content in files.items():
        (FOLDER / name).write_bytes(content)
    if args.relock:
        LOCK.write_text(json.dumps(lock, indent=2) + "\n")
    print(f"wrote {len(files)} files to {FOLDER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
