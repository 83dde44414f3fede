// The residence subgraph as a server, for the gateway tests.
// Usage: node residence.mjs PORT PERMITS_JSON   (PERMITS_JSON: [{"number", "workPermit"}])
import { readFileSync } from "node:fs";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { resolvers, typeDefs } from "./residence-schema.mjs";

const [port, permitsFile] = process.argv.slice(2);
const permits = JSON.parse(readFileSync(permitsFile, "utf8"));
const schema = buildSubgraphSchema([{ typeDefs, resolvers: resolvers(permits) }]);
const { url } = await startStandaloneServer(new ApolloServer({ schema }), {
  listen: { host: "127.0.0.1", port: Number(port) },
});
console.log(`residence subgraph ready at ${url}`);
