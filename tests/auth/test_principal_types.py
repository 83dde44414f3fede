"""Revocation enforced by type: what the token check gives is not yet an authenticated caller.

`AuthService.identify` checks the token and the registry but not the denylist; code that
acts for the caller takes a `Principal`, which only the revocation judge gives. A developer who
skips the judge gets a type error from `make lint`, before any token reaches a source system.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api

HEADER = '''
from auth import AuthService, Principal


def act_for(principal: Principal) -> str:
    return principal.client_id

'''

SKIPS_THE_JUDGE = HEADER + '''
async def door(auth: AuthService) -> str:
    claims = await auth.identify("Bearer t")
    return act_for(claims)
'''

ASKS_THE_JUDGE = HEADER + '''
async def door(auth: AuthService) -> str:
    claims = await auth.identify("Bearer t")
    return act_for(auth.judge_revocation(claims))


async def other_door(auth: AuthService) -> str:
    return act_for(await auth.authenticate("Bearer t"))
'''


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    module = tmp_path / "door.py"
    module.write_text(source)
    out, err, status = api.run([
        "--no-incremental", "--follow-imports=silent", "--ignore-missing-imports",
        "--cache-dir", str(tmp_path / "cache"), str(module),
    ])
    return out + err, status


def test_token_claims_do_not_pass_for_a_principal(tmp_path: Path) -> None:
    report, status = _mypy(tmp_path, SKIPS_THE_JUDGE)
    assert status == 1, report
    assert 'incompatible type "TokenClaims"; expected "Principal"' in report, report


def test_the_revocation_judge_gives_a_principal(tmp_path: Path) -> None:
    report, status = _mypy(tmp_path, ASKS_THE_JUDGE)
    assert status == 0, report
