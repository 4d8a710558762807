// The event log (POST /events, GET /events), as examples/demo/src/events.rs: append-only, where
// write-behind fits. Events never conflict (fresh id, no unique columns) and a client logging
// one does not need it stored before its answer: the route validates it, answers 202, and the
// session commits it in the ctx.waitUntil teardown (session.commitDeferred()).
import { Event } from "./models.js";
import { ApiError, decodeObject, pageById } from "./users.js";

export const MAX_TYPE = 64;
export const MAX_DATA = 8 * 1024;

const bad = (message) => new ApiError(400, message);

/** Decodes and validates a POST /events body: `{ kind, data, json }` (json: data as text). */
export function parseEvent(bytes) {
  const value = decodeObject(bytes, new Set(["type", "data"]));
  const kind = value.type;
  if (typeof kind !== "string") throw bad("invalid JSON body: `type` must be a string");
  if (kind.trim() === "" || [...kind].length > MAX_TYPE || /\p{Cc}/u.test(kind)) {
    throw bad(`type must be 1–${MAX_TYPE} characters, not blank, without control characters`);
  }
  const data = value.data ?? null;
  const json = JSON.stringify(data);
  const size = new TextEncoder().encode(json).length;
  if (size > MAX_DATA) throw bad(`data must be at most ${MAX_DATA} bytes of JSON (got ${size})`);
  return { kind, data, json };
}

/** Logs an event with a deferred commit: validated now, stored in the completion callback. */
export async function recordEvent(session, bytes) {
  const { kind, data, json } = parseEvent(bytes);
  const { id } = await Event.insert(session, { id: await Event.nextId(session), kind, data: json });
  session.commitDeferred();
  return { id, type: kind, data };
}

/** One page of events ordered by id, with the total count. */
export async function listEvents(session, paging) {
  const page = await pageById(session, Event, paging);
  return { ...page, items: page.items.map((r) => ({ id: r.id, type: r.kind, data: JSON.parse(r.data) })) };
}
