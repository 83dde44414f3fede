// The Apollo Server 5 peer: the hub's `validity` query answered from memory, nothing else.
//
//   node server.mjs --port P --data PERMITS.json [--workers N] [--ready-dir DIR]
//
// Apollo's defaults are kept (a "bare" server): startStandaloneServer on Node's http module.
// With --workers N the node:cluster primary forks N workers sharing the port, as the hub runs
// one worker per core.
import cluster from "node:cluster";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    data: { type: "string" },
    workers: { type: "string", default: "1" },
    "ready-dir": { type: "string" },
  },
});
const workers = Number(args.workers);

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

async function serve() {
  const permits = new Map(Object.entries(JSON.parse(readFileSync(args.data, "utf8"))));
  const resolvers = { Query: { permit: (_, { number }) => permits.get(number) ?? null } };
  const server = new ApolloServer({ typeDefs, resolvers });
  await startStandaloneServer(server, { listen: { host: args.host, port: Number(args.port) } });
  if (args["ready-dir"]) writeFileSync(join(args["ready-dir"], `ready-${process.pid}`), "");
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
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
} else {
  serve().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
