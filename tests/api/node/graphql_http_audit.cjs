// Runs graphql-http's server audits (the GraphQL-over-HTTP spec's MUST/SHOULD/MAY checks,
// src/audits/server.ts) against a running server and prints one JSON line per audit.
// Usage: node graphql_http_audit.cjs <tools dir holding node_modules> <url>
const path = require("node:path");

const [tools, url] = process.argv.slice(2);
const { auditServer } = require(path.join(tools, "node_modules", "graphql-http"));

auditServer({ url }).then(async (results) => {
  for (const result of results) {
    let body = "";
    if (result.status !== "ok" && result.response) body = (await result.response.text()).slice(0, 300);
    const { id, name, status, reason } = result;
    console.log(JSON.stringify({ id, name, status, reason: reason ?? null, body }));
  }
});
