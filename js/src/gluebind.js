// The Gluebind class: what only JavaScript can do around the Rust core — find the fetch event's
// scope through AsyncLocalStorage, hand teardown to ctx.waitUntil, resolve the URL (and a kv://
// URL's KV namespace binding) from `env`.
// Sessions, scopes, teardown policy, commit hooks, parameter binding, value mapping and the
// model layer live in Rust (src/wasm/js/ in the repository); the entry modules (workerd.js,
// node.js) load the wasm module and call install().

import { ConfigError, OutsideScopeError, errorFromCode } from "./errors.js";
import { installSessionVerbs } from "./model.js";
import { setBindings } from "./wasm.js";

/** @type {{ Registry: any, Session: any, setErrorFactory: (f: Function) => void, instanceEpoch: () => number, panicForTesting: () => void } | null} */
let wasm = null;
/** @type {(new () => { run: Function, getStore: Function }) | null} */
let AsyncLocalStorageClass = null;
/** @type {unknown} */
let alsFailure = null;

/** Called once by the entry module with the wasm bindings and AsyncLocalStorage (or why not). */
export function install(bindings, asyncLocalStorage, failure) {
  wasm = bindings;
  setBindings(bindings);
  installSessionVerbs(bindings.Session);
  AsyncLocalStorageClass = asyncLocalStorage ?? null;
  alsFailure = failure ?? null;
  wasm.setErrorFactory(errorFromCode);
}

const OPTION_KEYS = new Set([
  "url",
  "teardown",
  "autoflush",
  "int64",
  "timestamps",
  "binds",
  "recordQueries",
  "beforeCommit",
  "afterCommit",
  "init",
  "isolation",
]);

function noAls() {
  const why = alsFailure instanceof Error ? ` (${alsFailure.message})` : "";
  return new ConfigError(
    "gluebind needs AsyncLocalStorage to find each fetch event's session, and node:async_hooks " +
      `is not available${why}. Add compatibility_flags = ["nodejs_als"] (or "nodejs_compat") to ` +
      "your wrangler.toml.",
  );
}

/** True for a kv:// or do:// URL (its binding comes from the first event's env). */
function needsEnv(url) {
  const u = url.trim();
  return u.startsWith("kv://") || u.startsWith("do://");
}

/** Resolves on a later macrotask, when the runtime has taken the handler's response. */
function afterResponse() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Finishes and removes the scope's session; a failure (a write-behind conflict) is logged. */
async function teardown(registry, scope, failed) {
  try {
    await registry.remove(scope, failed);
  } catch (err) {
    // Also a registry of a wasm instance replaced after a panic ("stale object").
    console.error(`gluebind: teardown of scope ${scope} failed:`, err);
  }
}

/** Panics inside gluebind's wasm, to test panic recovery (debug routes only). */
export function panicForTesting() {
  wasm.panicForTesting();
}

/**
 * One database for the whole isolate: create it once, at module scope.
 *
 *   const db = new Gluebind({ url: "memory://" });
 *   export default { fetch: db.bind(async (request, env, ctx) => { const session = db.session(); … }) };
 */
export class Gluebind {
  #options;
  #url;
  #init;
  /**
   * The Rust registry, created once: eagerly for a string URL, else on the first event (a url
   * function, or kv:// / do://, whose binding arrives in that event's env).
   */
  #registry = null;
  /** The wasm instance the registry lives in (see #recoverFromReset). */
  #epoch = null;
  /** Resolves when `init` has run; null until the first event needs it. */
  #ready = null;
  #readyDone = false;
  #als;

  /**
   * @param {{ url: string | ((env: any) => string), teardown?: "rollback" | "commit",
   *   autoflush?: boolean, int64?: "auto" | "bigint" | "string", timestamps?: "date" | "string",
   *   binds?: Record<string, string>, recordQueries?: boolean | ((env: any) => boolean),
   *   beforeCommit?: (session: any, changes: any[]) => void, afterCommit?: (committed: any) => void,
   *   init?: (session: any) => unknown }} options
   */
  constructor(options) {
    if (wasm === null) throw new ConfigError("gluebind's wasm module is not loaded: import from \"gluebind\"");
    if (AsyncLocalStorageClass === null) throw noAls();
    if (options === null || typeof options !== "object") {
      throw new ConfigError('new Gluebind(options) needs an options object, e.g. { url: "memory://" }');
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_KEYS.has(key)) {
        throw new ConfigError(`unknown option ${JSON.stringify(key)}; options are ${[...OPTION_KEYS].join(", ")}`);
      }
    }
    const { url, init, ...rest } = options;
    if (typeof url !== "string" && typeof url !== "function") {
      throw new ConfigError('option url must be a string ("memory://") or a function of env returning one');
    }
    if (init !== undefined && typeof init !== "function") {
      throw new ConfigError("option init must be a function (session) => Promise<void>");
    }
    this.#options = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    this.#url = url;
    this.#init = init ?? null;
    this.#readyDone = this.#init === null;
    this.#als = new AsyncLocalStorageClass();
    if (typeof url === "string") {
      // kv://, do://: the URL is checked now; the engine waits for the first event's env (the binding).
      if (needsEnv(url)) wasm.checkUrl(url);
      else this.#create(url, undefined);
    }
  }

  #create(url, env) {
    // A kv:// or do:// URL: Rust takes the binding from env[BINDING], or throws a ConfigError.
    const options = { ...this.#options, url };
    // A function of env (a debug flag, say) is read when the registry is created.
    if (typeof options.recordQueries === "function") options.recordQueries = Boolean(options.recordQueries(env));
    if (typeof options.isolation === "function") options.isolation = options.isolation(env);
    this.#registry = new wasm.Registry(options, env);
    this.#epoch = wasm.instanceEpoch();
    return this.#registry;
  }

  /**
   * A Rust panic makes gluebind replace its wasm instance on the next call: the registry, its
   * sessions and memory:// data are gone, and calling the old handles would throw. Start a
   * new registry (and run `init` again), as a Rust worker's new instance would.
   */
  #recoverFromReset() {
    if (this.#registry === null || wasm.instanceEpoch() === this.#epoch) return;
    console.error("gluebind: the wasm instance was replaced after a panic; starting a new registry");
    wasm.setErrorFactory(errorFromCode);
    this.#registry = null;
    this.#ready = null;
    this.#readyDone = this.#init === null;
    if (typeof this.#url === "string" && !needsEnv(this.#url)) this.#create(this.#url, undefined);
  }

  #registryOrThrow() {
    this.#recoverFromReset();
    if (this.#registry === null) {
      throw new ConfigError(
        "the registry does not exist yet: with a url function or a kv:// or do:// URL it is created on the first " +
          "event (db.bind / db.run), whose env holds the bindings",
      );
    }
    return this.#registry;
  }

  /** Creates the registry (url function, kv://, do://) and runs `init`, once per isolate. */
  #prepare(env) {
    this.#recoverFromReset();
    if (this.#registry === null) {
      const url = typeof this.#url === "function" ? this.#url(env) : this.#url;
      if (typeof url !== "string") throw new ConfigError(`the url function returned ${typeof url}, not a string`);
      if (this.#registry === null) this.#create(url, env);
    }
    if (this.#readyDone) return null;
    this.#ready ??= (async () => {
      const session = this.#registry.openSession();
      try {
        await this.#init(session);
        this.#readyDone = true;
      } finally {
        session.close();
      }
    })().catch((err) => {
      this.#ready = null; // retried by the next event
      throw err;
    });
    return this.#ready;
  }

  /**
   * Wraps a module worker's fetch handler: each call runs in a new scope, and the scope's
   * session is finished and removed in ctx.waitUntil after the response.
   */
  bind(handler) {
    if (typeof handler !== "function") throw new ConfigError("db.bind(handler) needs a function");
    return (request, env, ctx) => this.run(() => handler(request, env, ctx), { ctx, env });
  }

  /**
   * Runs `fn` in a new scope (what bind does per fetch event). Teardown goes to
   * `ctx.waitUntil`; without a ctx it is awaited before run() returns. The handler failed —
   * so pending writes are always rolled back — when fn throws or `failed(result)` is true.
   */
  async run(fn, { ctx, env, failed } = {}) {
    const prepared = this.#prepare(env);
    if (prepared !== null) await prepared;
    const registry = this.#registry;
    const scope = registry.begin();
    const store = { scope, session: null };
    let outcomeFailed = true;
    try {
      const result = await this.#als.run(store, fn);
      outcomeFailed = failed ? Boolean(failed(result)) : false;
      return result;
    } finally {
      if (ctx && typeof ctx.waitUntil === "function") {
        // After the response: the runtime has the Response (and may still be streaming its
        // body) before the session is finished and removed.
        ctx.waitUntil(afterResponse().then(() => teardown(registry, scope, outcomeFailed)));
      } else {
        await teardown(registry, scope, outcomeFailed);
      }
    }
  }

  /** The current fetch event's session (opened on first use; the same one all event long). */
  session() {
    const store = this.#als.getStore();
    if (store === undefined) {
      throw new OutsideScopeError(
        "no session outside a request scope: db.session() was called outside a handler wrapped with " +
          "db.bind(...), db.run(...) or the gluebind/hono middleware",
        { reason: "no active scope in this async context" },
      );
    }
    if (store.session !== null && this.#registry.isActive(store.scope)) return store.session;
    // Opens the session, or throws OUTSIDE_SCOPE once the scope has been torn down.
    store.session = this.#registry.session(store.scope);
    return store.session;
  }

  /**
   * Runs `work(session)` on the current event's session and commits, rerunning both while the
   * commit conflicts (at most `retries` times, default 3): the Rust core's
   * `Session::transaction`, through `session.transaction`.
   */
  transaction(work, { retries, ...rest } = {}) {
    if (typeof work !== "function") throw new ConfigError("db.transaction(work) needs an async function (session) => …");
    const unknown = Object.keys(rest);
    if (unknown.length) throw new ConfigError(`unknown transaction option ${JSON.stringify(unknown[0])}; the only option is retries`);
    if (retries !== undefined && !(Number.isInteger(retries) && retries >= 0 && retries <= 1000)) {
      throw new ConfigError(`retries must be an integer from 0 to 1000, got ${String(retries)}`);
    }
    return this.session().transaction(work, retries);
  }

  /** The current event's session id if it has opened a session, else null (opens none). */
  sessionId() {
    const store = this.#als.getStore();
    if (store === undefined || this.#registry === null) return null;
    return this.#registry.sessionId(store.scope) ?? null;
  }

  /** True inside a scope (a bound handler, db.run, the Hono middleware). */
  get inScope() {
    return this.#als.getStore() !== undefined;
  }

  /** A session outside any scope, for start-up work; commit and close() it yourself. */
  openSession() {
    return this.#registryOrThrow().openSession();
  }

  /** The registry's counters. */
  stats() {
    return this.#registryOrThrow().stats();
  }

  /**
   * The last statements of ended sessions, oldest first — `{ session, sql, params, durationMs,
   * rows, ok }` — with option `recordQueries: true` (else empty).
   */
  recentQueries() {
    return this.#registryOrThrow().recentQueries();
  }

  /** The engine URL in canonical form, or null before the registry exists. */
  get engine() {
    return this.#registry === null ? null : this.#registry.engine;
  }
}
