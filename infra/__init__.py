"""Shared infrastructure below every other package: the key-value store and per-minute counters.

`infra.kv` is the store (Redis in production, in-process for the embedded mode) with its
batched read-and-count script; `infra.counters` counts per client in fixed one-minute windows
(the request-rate limit and the cost budget), in the process, reconciled with the store in
the background; `infra.jwks` reads the public signing keys of a JWK set another system
publishes (the WMS's, an identity provider's); `infra.forms` reads a bounded urlencoded form
(the OAuth endpoints', the console's). This package imports
none of the hub's own packages (`hub`, `schema`, `connectors`, `auth`, `observability`); they
all may import it.
"""
