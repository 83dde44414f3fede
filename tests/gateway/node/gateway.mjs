// A real Apollo Gateway in front of the hub (tests/gateway): composes the hub's subgraph SDL
// with the residence subgraph's, forwards Authorization, X-Purpose-Of-Use and a traceparent of
// its own fetch span, and writes its finished spans to a JSON Lines file.
// Usage: node gateway.mjs PORT HUB_URL HUB_SDL_FILE RESIDENCE_URL SPANS_FILE
import { appendFileSync, readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { parse } from "graphql";
import { typeDefs as residenceTypeDefs } from "./residence-schema.mjs";

const [port, hubUrl, hubSdlFile, residenceUrl, spansFile] = process.argv.slice(2);

// Spans go to a file the test reads: name, trace id, span id, parent.
const fileExporter = {
  export(spans, done) {
    for (const span of spans) {
      const context = span.spanContext();
      appendFileSync(spansFile, JSON.stringify({
        name: span.name,
        traceId: context.traceId,
        spanId: context.spanId,
        parentSpanId: span.parentSpanContext?.spanId ?? null,
      }) + "\n");
    }
    done({ code: 0 });
  },
  shutdown: async () => {},
};
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(fileExporter)] }),
);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const composed = composeServices([
  { name: "hub", typeDefs: parse(readFileSync(hubSdlFile, "utf8")), url: hubUrl },
  { name: "residence", typeDefs: residenceTypeDefs, url: residenceUrl },
]);
if (composed.errors) {
  console.error("composition failed:\n" + composed.errors.map((e) => e.message).join("\n"));
  process.exit(1);
}

const FORWARDED = ["authorization", "x-purpose-of-use"];

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context: requestContext }) {
    for (const name of FORWARDED) {
      const value = requestContext.headers?.[name];
      if (value) request.http.headers.set(name, value);
    }
    const carrier = {};
    propagation.inject(context.active(), carrier);  // the gateway's fetch span
    if (carrier.traceparent) request.http.headers.set("traceparent", carrier.traceparent);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: composed.supergraphSdl,
  buildService: ({ url }) => new ForwardingDataSource({ url }),
});
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: Number(port) },
  context: async ({ req }) => ({ headers: req.headers }),
});
console.log(`gateway ready at ${url}`);
