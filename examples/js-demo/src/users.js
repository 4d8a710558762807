// The demo's data rules and unit-of-work operations (as examples/demo/src/model.rs and
// service.rs in the Rust demo). Mutations commit before they return, so the answer reflects
// what is stored and a conflict becomes a 409.

import { ConflictError, NotFoundError } from "gluebind";
import { etagOf, ifMatchSatisfied } from "./etag.js";
import { User } from "./models.js";

export const MAX_NAME = 100;
export const MAX_EMAIL = 254;
export const MAX_PER_PAGE = 100;
export const DEFAULT_PER_PAGE = 20;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const I32_MAX = 2 ** 31 - 1;

/** An error answer: status and message, rendered as {"error": message}. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const bad = (message) => new ApiError(400, message);
const notFound = (id) => new ApiError(404, `no user with id ${JSON.stringify(String(id))}`);

/** The model layer's NotFoundError for user `id` as this API's 404 answer. */
async function found(promise, id) {
  try {
    return await promise;
  } catch (err) {
    throw err instanceof NotFoundError ? notFound(id) : err;
  }
}

/** Rust's `str::parse::<i64>()`: an optional sign and ASCII digits, in range; else null. */
export function parseI64(text) {
  if (!/^[+-]?[0-9]+$/.test(text)) return null;
  const value = BigInt(text);
  return value < I64_MIN || value > I64_MAX ? null : value;
}

/** A bigint as a number when it is safe, else kept as a bigint (gluebind binds both). */
const narrow = (v) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

export function validateName(name) {
  const len = [...name].length;
  if (name.trim() === "") throw bad("name must not be empty");
  if (len > MAX_NAME) throw bad(`name must be at most ${MAX_NAME} characters (got ${len})`);
  if (/\p{Cc}/u.test(name)) throw bad("name must not contain control characters");
}

export function validateEmail(email) {
  const len = [...email].length;
  if (len > MAX_EMAIL) throw bad(`email must be at most ${MAX_EMAIL} characters (got ${len})`);
  const at = email.lastIndexOf("@");
  const valid = at > 0 && at < email.length - 1;
  if (!valid || /[\s\p{Cc}]/u.test(email)) throw bad("email must look like name@domain (with an '@', no spaces)");
}

/** Decodes a JSON body that must be an object with no fields outside `allowed` (else 400). */
export function decodeObject(bytes, allowed) {
  let value;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw bad(`invalid JSON body: ${err.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw bad("invalid JSON body: expected an object");
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw bad(`invalid JSON body: unknown field \`${key}\`, expected one of ${[...allowed].join(", ")}`);
  }
  return value;
}

/**
 * Decodes a JSON body into an object with exactly the allowed string fields (`required` ones
 * must be present; optional ones may be absent or null).
 */
export function decode(bytes, { required = [], optional = [] }) {
  const allowed = new Set([...required, ...optional]);
  const value = decodeObject(bytes, allowed);
  const out = {};
  for (const key of allowed) {
    const v = value[key];
    if (v === undefined || (v === null && !required.includes(key))) {
      if (required.includes(key)) throw bad(`invalid JSON body: missing field \`${key}\``);
      continue;
    }
    if (typeof v !== "string") throw bad(`invalid JSON body: \`${key}\` must be a string`);
    out[key] = v;
  }
  return out;
}

/** Paging of GET /users from the raw query string (other keys ignored). */
export function parsePaging(search) {
  const paging = { page: 1n, per_page: BigInt(DEFAULT_PER_PAGE) };
  for (const pair of search.replace(/^\?/, "").split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const [key, value] = eq < 0 ? [pair, ""] : [pair.slice(0, eq), pair.slice(eq + 1)];
    if (key !== "page" && key !== "per_page") continue;
    const parsed = parseI64(value);
    if (parsed === null) throw bad(`${key} must be an integer, got ${JSON.stringify(value)}`);
    paging[key] = parsed;
  }
  if (paging.page < 1n || paging.page > BigInt(I32_MAX)) {
    throw bad(`page must be between 1 and ${I32_MAX}, got ${paging.page}`);
  }
  if (paging.per_page < 1n || paging.per_page > BigInt(MAX_PER_PAGE)) {
    throw bad(`per_page must be between 1 and ${MAX_PER_PAGE}, got ${paging.per_page}`);
  }
  return { page: Number(paging.page), perPage: Number(paging.per_page) };
}

/**
 * One page of `model`'s rows ordered by id. Paging was checked by parsePaging (400s); a page
 * past the end is an empty page, not the model layer's 404.
 */
export function pageById(session, model, paging) {
  return model.query(session).orderBy("id").paginate({ ...paging, errorOut: false });
}

/** A user id from the path: a positive 64-bit integer, else 404. */
export function userId(raw) {
  const id = parseI64(raw);
  if (id === null || id <= 0n) throw notFound(raw);
  return narrow(id);
}

export async function createUser(session, input) {
  validateName(input.name);
  validateEmail(input.email);
  // session.add, then commit: the commit's flush inserts it (on do:// the object checks the
  // key and the email in the commit's one request).
  const user = session.add(User, { id: await User.nextId(session), name: input.name, email: input.email });
  await session.commit();
  return user;
}

export function getUser(session, id) {
  return found(User.getOr404(session, id), id);
}

/**
 * A keyset page: at most `perPage` users with an id above `after`, in id order, and the id to
 * continue after when there are more (`WHERE id > $1 ORDER BY id LIMIT n`: the read starts at
 * `after`). `after` is a parsed bigint; ids are safe integers, so one beyond them bounds nothing
 * more.
 */
export async function usersAfter(session, after, perPage, email) {
  if (after >= BigInt(Number.MAX_SAFE_INTEGER)) return { items: [], next: null };
  const from = after <= BigInt(Number.MIN_SAFE_INTEGER) ? Number.MIN_SAFE_INTEGER : Number(after);
  let query = User.query(session).filter(User.c.id.gt(from)).orderBy("id").limit(perPage + 1);
  if (email !== undefined) query = query.filterBy({ email });
  const users = await query.all();
  const more = users.length > perPage;
  const items = more ? users.slice(0, perPage) : users;
  return { items, next: more ? items[items.length - 1].id : null };
}

/** One page of users ordered by id; with `email`, only the user who has it (the column is
 * UNIQUE: an index read, which on kv:// loads that user alone). */
export function listUsers(session, paging, email) {
  if (email === undefined) return pageById(session, User, paging);
  return User.query(session).filterBy({ email }).orderBy("id").paginate({ ...paging, errorOut: false });
}

/** Changes the given fields and commits; with `ifMatch` (the If-Match header), only if the
 * user's current ETag satisfies it (else 412). */
export async function updateUser(session, id, patch, ifMatch) {
  if (patch.name !== undefined) validateName(patch.name);
  if (patch.email !== undefined) validateEmail(patch.email);
  if (ifMatch !== undefined) {
    const current = await etagOf(await getUser(session, id));
    if (!ifMatchSatisfied(ifMatch, current)) {
      throw new ApiError(
        412,
        `precondition failed: user ${id} changed since the version in If-Match (its ETag is now ${current}); re-read it and retry`,
      );
    }
  }
  // User.update SETs only the fields that change (an unchanged email is not written again).
  const user = await found(User.update(session, id, patch), id);
  await session.commit();
  return user;
}

// DELETE is idempotent, so a commit that conflicts (another session changed or deleted the row
// first) is tried again on the fresh state the session starts over on: a row deleted meanwhile
// is then a 404. Bounded: a row changed on every attempt ends in the conflict's 409.
export async function deleteUser(session, id) {
  for (let attempt = 1; ; attempt++) {
    await found(User.delete(session, id), id);
    try {
      await session.commit();
      return;
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 3) throw err;
    }
  }
}
