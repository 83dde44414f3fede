"""Runnable reference implementations of the three source systems, over deterministic data.

- `generate` builds the synthetic world (permits, foreigners, enrollments, cards, samples).
- `build_wms_app`, `build_cards_app`: the Work Management System and the card management
  system as Starlette apps; `build_agency_app` and `seed_agency_databases`: the regional
  social-security agencies, whose data lives in SQL databases.
- `IdentityProviders`, `build_identity_app`: the agencies' officer sign-on and the e-SSC app's
  identity-verification service, signing assertions for the hub's token exchange.
- `qr_payload` signs a permit's QR code with the WMS key.
- `build_simulator_app` picks one by name; `run_simulator` serves it (the `hub simulate`
  command), seeding the agency databases first (SQLite files under the data dir by default).

Every app carries the `/_sim` test controls (request counters, fault injection). Simulators
are for demos and tests, not part of the production hub: only `hub demo`, `hub simulate`, the
tests and the bench import this package. The records and identifier formats they share with
the hub live in `connectors/` (this package imports `connectors`, never the reverse).
"""

from simulators.agency import build_agency_app, enrolled_among, seed_agency_databases
from simulators.cards import build_cards_app
from simulators.identity import IdentityProviders, build_identity_app
from simulators.run import build_simulator_app, default_agency_urls, run_simulator
from simulators.synthetic import AGENCY_REGIONS, Dataset, generate
from simulators.wms import (
    build_wms_app,
    generate_signing_key,
    load_or_create_signing_key,
    qr_payload,
    qr_samples,
)

__all__ = [
    "AGENCY_REGIONS",
    "Dataset",
    "IdentityProviders",
    "build_agency_app",
    "build_cards_app",
    "build_identity_app",
    "build_simulator_app",
    "build_wms_app",
    "default_agency_urls",
    "enrolled_among",
    "generate",
    "generate_signing_key",
    "load_or_create_signing_key",
    "qr_payload",
    "qr_samples",
    "run_simulator",
    "seed_agency_databases",
]
