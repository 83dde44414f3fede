// The same-work Apollo Server 5 peer: the hub's `validity` query, with per request what a Node
// team would write for this job (issue 20), so that the hub is measured against equal work:
//
//   1. the ES256 access token verified against the hub's JWKS (issuer, audience, expiry): jose,
//      with its remote key set (fetched once, cached, refetched for an unknown kid);
//   2. the purpose header required (X-Purpose-Of-Use);
//   3. one Redis round trip (ioredis pipeline): is the token's jti revoked? and the client's
//      counter for this minute incremented (and given an expiry), checked against --rate-limit;
//   4. the permit answered from memory (as the bare peer, server.mjs);
//   5. before the answer leaves, one audit row INSERTed into PostgreSQL (pg pool): client,
//      purpose, operation, subjects (the query's variables), outcome, and the SHA-256 of the
//      response body exactly as Apollo sends it.
//
//   node samework.mjs --port P --data PERMITS.json --jwks URL --issuer I --audience A
//        --redis URL --redis-prefix P --database URL [--workers N] [--ready-dir DIR]
//
// With --workers N the node:cluster primary creates the audit table, then forks N workers
// sharing the port, as the hub runs one worker per core.
import cluster from "node:cluster";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { GraphQLError } from "graphql";
import { Redis } from "ioredis";
import { createRemoteJWKSet, jwtVerify } from "jose";
import pg from "pg";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    data: { type: "string" },
    workers: { type: "string", default: "1" },
    "ready-dir": { type: "string" },
    jwks: { type: "string" },
    issuer: { type: "string" },
    audience: { type: "string" },
    redis: { type: "string", default: "redis://127.0.0.1:6379/0" },
    "redis-prefix": { type: "string", default: "apollo-peer:" },
    database: { type: "string" },
    "rate-limit": { type: "string", default: String(10 ** 12) },
  },
});
const workers = Number(args.workers);
const prefix = args["redis-prefix"];
const rateLimit = Number(args["rate-limit"]);

const typeDefs = `#graphql
  enum PermitStatus { PENDING VALID EXPIRED CANCELLED REVOKED }
  scalar Date
  type WorkPermit {
    number: ID!
    status: PermitStatus!
    validUntil: Date!
    isValid(on: Date): Boolean!
  }
  type Query { permit(number: ID!): WorkPermit }
`;

const AUDIT_TABLE = `CREATE TABLE IF NOT EXISTS audit (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  client text NOT NULL,
  purpose text NOT NULL,
  operation text,
  subjects text[] NOT NULL,
  outcome text NOT NULL,
  response_sha256 text NOT NULL
)`;

function refused(message, code, status) {
  return new GraphQLError(message, { extensions: { code, http: { status } } });
}

function subjectsOf(variables) {
  return Object.values(variables ?? {}).flat().filter((v) => typeof v === "string");
}

// Who asks, for what, and may they: the token, the purpose, then the one Redis round trip.
function contextFor(jwks) {
  const redis = new Redis(args.redis);
  return async ({ req }) => {
    const header = req.headers.authorization ?? "";
    if (!header.startsWith("Bearer ")) throw refused("missing token", "UNAUTHENTICATED", 401);
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(header.slice(7), jwks, {
        issuer: args.issuer, audience: args.audience, algorithms: ["ES256"],
      }));
    } catch {
      throw refused("invalid token", "UNAUTHENTICATED", 401);
    }
    const purpose = req.headers["x-purpose-of-use"];
    if (!purpose) throw refused("X-Purpose-Of-Use is required", "PURPOSE_REQUIRED", 400);
    const client = claims.client_id ?? claims.sub;
    const counter = `${prefix}rate:${client}:${Math.floor(Date.now() / 60000)}`;
    const [[, revoked], [, count]] = await redis.pipeline()
      .exists(`${prefix}revoked:${claims.jti}`)
      .incr(counter)
      .expire(counter, 120)
      .exec();
    if (revoked) throw refused("token revoked", "UNAUTHENTICATED", 401);
    if (count > rateLimit) throw refused("rate limit", "RATE_LIMITED", 429);
    return { client, purpose };
  };
}

// The audit row, written before the response leaves (willSendResponse is awaited first).
function auditPlugin(pool) {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, operationName, request, response }) {
          if (response.body.kind !== "single") return;
          const result = response.body.singleResult;
          const body = JSON.stringify(result) + "\n"; // Apollo's own serialisation of it
          await pool.query(
            "INSERT INTO audit (client, purpose, operation, subjects, outcome, response_sha256)"
              + " VALUES ($1, $2, $3, $4, $5, $6)",
            [
              contextValue.client, contextValue.purpose, operationName ?? null,
              subjectsOf(request.variables), result.errors ? "error" : "ok",
              createHash("sha256").update(body).digest("hex"),
            ],
          );
        },
      };
    },
  };
}

async function createAuditTable() {
  const client = new pg.Client({ connectionString: args.database });
  await client.connect();
  try {
    await client.query(AUDIT_TABLE);
  } finally {
    await client.end();
  }
}

async function serve() {
  const permits = new Map(Object.entries(JSON.parse(readFileSync(args.data, "utf8"))));
  const resolvers = { Query: { permit: (_, { number }) => permits.get(number) ?? null } };
  const pool = new pg.Pool({ connectionString: args.database, max: 10 });
  const jwks = createRemoteJWKSet(new URL(args.jwks));
  const server = new ApolloServer({ typeDefs, resolvers, plugins: [auditPlugin(pool)] });
  await startStandaloneServer(server, {
    listen: { host: args.host, port: Number(args.port) },
    context: contextFor(jwks),
  });
  if (args["ready-dir"]) writeFileSync(join(args["ready-dir"], `ready-${process.pid}`), "");
}

function fail(error) {
  console.error(error);
  process.exit(1);
}

if (workers > 1 && cluster.isPrimary) {
  createAuditTable().then(() => {
    for (let i = 0; i < workers; i++) cluster.fork();
  }, fail);
  cluster.on("exit", (worker, code) => {
    console.error(`apollo worker ${worker.process.pid} exited (${code})`);
    process.exit(1);
  });
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      for (const worker of Object.values(cluster.workers)) worker.kill();
      process.exit(0);
    });
  }
} else if (workers > 1) {
  serve().catch(fail);
} else {
  createAuditTable().then(serve).catch(fail);
}
