// The residence subgraph's schema: public security's residence permits, each naming the work
// permit (the hub's `WorkPermit`, by its key) that it was granted on.
import { parse } from "graphql";

export const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type ResidencePermit {
    number: ID!
    validUntil: String!
    workPermit: WorkPermit!
  }
  type WorkPermit @key(fields: "number", resolvable: false) {
    number: ID!
  }
  type Query {
    residencePermit(number: ID!): ResidencePermit
  }
`);

export function resolvers(permits) {
  return {
    Query: {
      residencePermit: (_, { number }) => permits.find((p) => p.number === number) ?? null,
    },
    ResidencePermit: {
      validUntil: (permit) => permit.validUntil ?? "2030-12-31",
      workPermit: (permit) => ({ __typename: "WorkPermit", number: permit.workPermit }),
    },
  };
}
