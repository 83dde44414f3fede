// graphql-http's server audits against a running hub: `node audit.mjs URL` with the token and
// purpose in HUB_AUTHORIZATION / HUB_PURPOSE (never on the command line: a token in argv is
// visible to every user of the machine). Prints one JSON array of {id, name, status, reason}.
import { serverAudits } from 'graphql-http';

const [url] = process.argv.slice(2);
const added = {
  authorization: process.env.HUB_AUTHORIZATION,
  'x-purpose-of-use': process.env.HUB_PURPOSE,
};

async function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(added)) headers.set(name, value);
  return fetch(input, { ...init, headers });
}

const results = [];
for (const { fn } of serverAudits({ url, fetchFn })) {
  const { id, name, status, reason, response } = await fn();
  let detail;
  if (response) detail = { status: response.status, body: (await response.text()).slice(0, 300) };
  results.push({ id, name, status, reason: reason ?? null, response: detail ?? null });
}
process.stdout.write(JSON.stringify(results));
