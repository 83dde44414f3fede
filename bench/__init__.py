"""Benchmarks of the hub, run by `make bench` (`python -m bench`; see `bench/__main__.py`).

- `bench/__main__.py`: the end-to-end benchmark of issue 8 (and the bench items of issues 6 and
  7): the hub in a production-like setup against a raw Starlette endpoint and Apollo Server 5.
- `bench/audit_commit.py`: audit group commit against one commit per append (issue 4).

Private modules: `_stack` (PostgreSQL, Redis, simulators and hub processes), `_procs` (child
processes), `_load` and `_driver` (the load generator), `_scenarios`, `_report`, `_profile`,
`_cpu`, and the servers the harness starts (`_hub_server`, `_agency`, `_trivial`, `_sink`,
`peers/`).
"""
