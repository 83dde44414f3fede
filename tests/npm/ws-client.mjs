// A graphql-ws client (the protocol's reference implementation) against the hub's WebSocket:
// `node ws-client.mjs WS_URL PERMIT_NUMBER`, token and purpose in HUB_AUTHORIZATION and
// HUB_PURPOSE. One JSON line per step on stdout; after {"step":"subscribed"} the test makes
// the permit change, and this client waits for the event.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, number] = process.argv.slice(2);
const params = {
  Authorization: process.env.HUB_AUTHORIZATION,
  'X-Purpose-Of-Use': process.env.HUB_PURPOSE,
};
const SUBSCRIBE = `subscription($n: [ID!]) {
  permitStatusChanged(numbers: $n) { permitNumber kind status } }`;
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const pongs = (count, client) =>
  new Promise((resolve) => {
    let seen = 0;
    const off = client.on('pong', () => {
      seen += 1;
      if (seen === count) {
        off();
        resolve();
      }
    });
  });

// 1. Handshake: connection_init with the token and purpose, connection_ack.
let protocol;
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: params,
  lazy: false,
  retryAttempts: 0,
  keepAlive: 20, // pings, whose pongs (answered in order) tell when the hub read a message
  on: { connected: (socket) => { protocol = socket.protocol; } },
});
await new Promise((resolve, reject) => {
  client.on('connected', resolve);
  client.on('closed', (event) => reject(new Error(`closed ${event.code} ${event.reason}`)));
});
say({ step: 'connected', protocol });

// 2. Subscribe, and one event.
const events = client.iterate({ query: SUBSCRIBE, variables: { n: [number] } });
const first = events.next();
await pongs(2, client); // the second pong answers a ping sent after the subscribe
say({ step: 'subscribed' });
const { value } = await first;
say({ step: 'next', payload: value });

// 3. Complete from the client; the connection stays usable.
await events.return();
say({ step: 'completed' });

// 4. Errors: a document that does not validate, then one the client's scopes do not allow.
const failing = (payload) =>
  new Promise((resolve) => {
    client.subscribe(payload, {
      next: () => resolve({ unexpected: 'next' }),
      error: (errors) => resolve({ errors }),
      complete: () => resolve({ unexpected: 'complete' }),
    });
  });
say({ step: 'error', ...(await failing({ query: 'subscription { nope }' })) });
say({ step: 'refused', ...(await failing({ query: '{ accessLog(first: 1) { edges { cursor } } }' })) });
await client.dispose();

// 5. A handshake with a token the hub does not accept: closed with the protocol's code.
const stranger = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { ...params, Authorization: 'Bearer not-a-token' },
  lazy: false,
  retryAttempts: 0,
});
const closed = await new Promise((resolve) => {
  stranger.on('closed', (event) => resolve({ code: event.code, reason: event.reason }));
});
say({ step: 'unauthorized', ...closed });
await stranger.dispose();
