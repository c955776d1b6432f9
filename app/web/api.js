// The client's only way to the server: the GraphQL API, with the documents in operations/.
//
// Each request first sends only the document's SHA-256 in Apollo's persisted-query format
// (`extensions.persistedQuery.sha256Hash`), the hash of the .graphql file's exact text. When
// the server does not know the hash (PERSISTED_QUERY_NOT_FOUND) or takes no persisted
// queries at all (a 400 "no query"), the client sends the document with its hash, and after
// the second kind of answer stops trying hashes alone.
import { language } from "./i18n.js";

const documents = new Map();
let hashesOnly = sessionStorage.getItem("sw.apq") !== "off";

export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

export function token() {
  return sessionStorage.getItem("sw.token");
}

export function setToken(value) {
  if (value) sessionStorage.setItem("sw.token", value);
  else sessionStorage.removeItem("sw.token");
}

// The roles in the token's payload, only to choose which screens to show: the server checks
// every field itself.
export function roles() {
  const value = token();
  if (!value) return [];
  try {
    const payload = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).roles || [];
  } catch {
    return [];
  }
}

async function sha256(text) {
  if (!globalThis.crypto?.subtle) return null; // not a secure context: documents only
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function load(name) {
  if (!documents.has(name)) {
    const response = await fetch(new URL(`operations/${name}.graphql`, import.meta.url));
    if (!response.ok) throw new Error(`no operation ${name}`);
    const text = await response.text();
    documents.set(name, { text, hash: await sha256(text) });
  }
  return documents.get(name);
}

async function post(body) {
  const headers = {
    "content-type": "application/json",
    accept: "application/graphql-response+json, application/json",
    "accept-language": language(),
  };
  if (token()) headers.authorization = `Bearer ${token()}`;
  const response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify(body) });
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  return { status: response.status, json };
}

function notFound(json) {
  return (json?.errors || []).some(
    (e) => e.extensions?.code === "PERSISTED_QUERY_NOT_FOUND" || e.message === "PersistedQueryNotFound",
  );
}

export async function gql(name, variables = {}) {
  const doc = await load(name);
  const extensions = doc.hash ? { persistedQuery: { version: 1, sha256Hash: doc.hash } } : undefined;
  let answer = null;
  if (extensions && hashesOnly) {
    answer = await post({ operationName: name, variables, extensions });
    if (answer.json === null || answer.status === 400) {
      hashesOnly = false; // this server takes no hash-only requests
      sessionStorage.setItem("sw.apq", "off");
      answer = null;
    } else if (notFound(answer.json)) {
      answer = null;
    }
  }
  if (answer === null) {
    answer = await post({ query: doc.text, operationName: name, variables, extensions });
  }
  if (answer.json === null) throw new ApiError([{ message: `HTTP ${answer.status}` }]);
  if (answer.json.errors?.length) {
    const error = new ApiError(answer.json.errors);
    if (error.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED") && token()) {
      // An expired or bad token: forget it and let the shell lead back to sign-in.
      setToken(null);
      window.dispatchEvent(new CustomEvent("sw:signed-out", { detail: { expired: true } }));
    }
    throw error;
  }
  return answer.json.data;
}

// The root fields this server has, so screens for features it lacks are hidden, not broken.
let schemaFields = null;

export async function availableFields() {
  if (schemaFields === null) {
    try {
      const data = await gql("ClientSchema");
      schemaFields = new Set(
        [...(data.query?.fields || []), ...(data.mutation?.fields || [])].map((f) => f.name),
      );
    } catch {
      schemaFields = undefined; // introspection refused: assume every screen is there
    }
  }
  return schemaFields;
}

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}
