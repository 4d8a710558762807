// An in-memory stand-in for a Workers KV namespace binding (not a test file): the JavaScript API
// gluebind's kv:// engine calls, with the same shapes — getWithMetadata(key, { type: "text" }),
// bulk get([keys], "text") → Map, put(key, value, { metadata }), delete(key),
// list({ prefix, cursor, limit }) → { keys: [{ name, metadata }], list_complete, cursor }.
// Values are stored as text and metadata as JSON (so no object is shared with the caller), as
// Workers KV does. Two Gluebind instances over one FakeKv behave like two isolates on one
// namespace (without KV's eventual consistency).

const MAX_BULK = 100;
const MAX_LIST = 1000;

function textType(options) {
  const type = typeof options === "string" ? options : options?.type;
  if (type !== undefined && type !== "text") throw new TypeError(`FakeKv supports type "text" only, got ${type}`);
}

export class FakeKv {
  /** @type {Map<string, { value: string, metadata: string | null }>} */
  #data = new Map();
  /** Calls per method. */
  ops = { get: 0, getWithMetadata: 0, bulkGet: 0, put: 0, delete: 0, list: 0 };
  /** Messages to throw from the next calls (e.g. "KV PUT failed: 429 Too Many Requests"). */
  failNext = [];

  constructor({ pageSize = MAX_LIST } = {}) {
    this.pageSize = pageSize;
  }

  #maybeFail() {
    const message = this.failNext.shift();
    if (message !== undefined) throw new Error(message);
  }

  #entry(key) {
    const e = this.#data.get(key);
    return e === undefined ? null : e;
  }

  async get(key, options) {
    textType(options);
    this.#maybeFail();
    if (Array.isArray(key)) {
      this.ops.bulkGet += 1;
      if (key.length > MAX_BULK) throw new Error(`KV GET_BULK failed: 400 more than ${MAX_BULK} keys`);
      return new Map(key.map((k) => [k, this.#entry(k)?.value ?? null]));
    }
    this.ops.get += 1;
    return this.#entry(key)?.value ?? null;
  }

  async getWithMetadata(key, options) {
    textType(options);
    this.#maybeFail();
    this.ops.getWithMetadata += 1;
    const e = this.#entry(key);
    return { value: e?.value ?? null, metadata: e?.metadata ? JSON.parse(e.metadata) : null };
  }

  async put(key, value, options = {}) {
    this.#maybeFail();
    this.ops.put += 1;
    if (typeof value !== "string") throw new TypeError("FakeKv stores text values only");
    const metadata = options.metadata === undefined ? null : JSON.stringify(options.metadata);
    this.#data.set(key, { value, metadata });
  }

  async delete(key) {
    this.#maybeFail();
    this.ops.delete += 1;
    this.#data.delete(key);
  }

  async list({ prefix = "", cursor, limit = MAX_LIST } = {}) {
    this.#maybeFail();
    this.ops.list += 1;
    const names = [...this.#data.keys()].filter((k) => k.startsWith(prefix)).sort();
    const start = cursor ? Number(cursor) : 0;
    const end = start + Math.min(limit, this.pageSize);
    const keys = names.slice(start, end).map((name) => {
      const metadata = this.#data.get(name).metadata;
      return metadata === null ? { name } : { name, metadata: JSON.parse(metadata) };
    });
    const complete = end >= names.length;
    return complete ? { keys, list_complete: true, cacheStatus: null } : { keys, list_complete: false, cursor: String(end), cacheStatus: null };
  }

  /** The stored key names (for assertions). */
  keys() {
    return [...this.#data.keys()].sort();
  }
}
