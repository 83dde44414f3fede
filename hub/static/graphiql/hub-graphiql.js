// The hub's GraphiQL page (hub/graphiql.py serves it and GraphiQL's own files, from the hub
// itself: nothing is fetched from elsewhere). Requests go to POST /graphql of this hub with
// the headers of the Headers tab: a bearer token from POST /oauth/token and a purpose of use.
// Nothing typed is kept in the browser's storage (a token, variables with identity numbers),
// and nothing of the query or variables goes into the page's URL.
(function () {
  "use strict";
  const headers = JSON.stringify(
    {
      Authorization: "Bearer <access_token from POST /oauth/token>",
      "X-Purpose-Of-Use": "<one of your client's purposes>",
    },
    null,
    2,
  );
  const query = [
    "# The permit-hub GraphQL IDE.",
    "#",
    "# Set the Authorization and X-Purpose-Of-Use headers in the Headers tab below,",
    "# then run a query (Ctrl-Enter). Every request is audited like any other.",
    "",
    "{",
    "  __typename",
    "}",
    "",
  ].join("\n");
  // GraphiQL keeps its tabs (query, variables, headers) in localStorage by default; this page
  // keeps them in memory, so nothing a user typed outlives the tab.
  const memory = new Map();
  const storage = {
    getItem: (key) => (memory.has(key) ? memory.get(key) : null),
    setItem: (key, value) => memory.set(key, String(value)),
    removeItem: (key) => memory.delete(key),
    clear: () => memory.clear(),
    get length() {
      return memory.size;
    },
  };
  const fetcher = GraphiQL.createFetcher({ url: new URL("/graphql", window.location.href).href });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
      defaultQuery: query,
      defaultHeaders: headers,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    }),
  );
})();
