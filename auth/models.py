"""Tables of the auth package, on their own `MetaData` (the hub's Alembic migration imports it).

Portable between SQLite and PostgreSQL: no dialect types; JSON as text, times as aware UTC.
Secrets are stored only as argon2 hashes. Private signing keys are stored as JWK JSON: the
database must be protected like a key store (encryption at rest is the deployment's concern).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, MetaData, String, Table, Text

__all__ = [
    "auth_metadata", "clients", "identity_providers", "purposes", "revocations", "signing_keys",
]

auth_metadata = MetaData()

clients = Table(
    "auth_clients",
    auth_metadata,
    Column("client_id", String(128), primary_key=True),
    Column("agency", String(128), nullable=False),
    Column("scopes", Text, nullable=False),  # space-separated, sorted
    Column("purposes", Text, nullable=False),  # space-separated, sorted
    Column("secret_hash", Text, nullable=True),
    Column("public_jwks", Text, nullable=True),  # JSON JWK set for private_key_jwt
    Column("external_issuer", String(512), nullable=True),  # tokens come from this IdP
    Column("enabled", Boolean, nullable=False, default=True),
    Column("embargoed_until", Date, nullable=True),
    Column("webhook_url", String(2048), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("jurisdiction", Text, nullable=False),  # region prefixes or "*", space-separated, sorted
)

# The purposes of use clients may name, each with the GraphQL root fields (queries, mutations,
# subscriptions) it covers: a request naming a purpose may run only those (`auth.purposes`).
purposes = Table(
    "auth_purposes",
    auth_metadata,
    Column("name", String(64), primary_key=True),
    Column("operations", Text, nullable=False),  # root field names, space-separated, sorted
    # A purpose whose requests must name the officer acting (used by a later revision).
    Column("needs_officer", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

signing_keys = Table(
    "auth_signing_keys",
    auth_metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("activates_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
    Column("expires_from_jwks_at", DateTime(timezone=True), nullable=True),
)

# Revoked hub tokens, the record the shared denylist is rebuilt from (`auth.revocation`).
# `token_key` is a hash of (issuer, jti), never the token; rows past `expires_at` are pruned.
revocations = Table(
    "auth_revocations",
    auth_metadata,
    Column("token_key", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
)

# Identity providers whose assertions a client may exchange for a token naming a person
# (`auth.identity_providers`, `auth.exchange`). One row per (client, issuer): an issuer trusted
# by one client is not trusted for another. `roles` is JSON {role: [hub scopes]}; the keys come
# from `jwks_url` (fetched and cached) or from `jwks` (a public JWK set kept here).
identity_providers = Table(
    "auth_identity_providers",
    auth_metadata,
    Column("client_id", String(128), primary_key=True),
    Column("issuer", String(512), primary_key=True),
    Column("kind", String(16), nullable=False),  # "officer" | "subject"
    Column("jwks_url", String(2048), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("roles", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
