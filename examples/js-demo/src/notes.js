// A user's notes (POST /users/:id/notes, GET /users/:id/notes), as examples/demo/src/notes.rs:
// the demo's interactive transaction with a business rule — at most MAX_NOTES notes per user.
// Adding one reads the user, counts their notes and inserts, in db.transaction: sessions are
// serializable by default, so two requests that both counted 4 cannot both insert — the later
// commit conflicts and the transaction runs again on fresh data, where it counts 5.
import { db } from "./db.js";
import { Note, User } from "./models.js";
import { ApiError, decodeObject } from "./users.js";

export const MAX_NOTES = 5;
export const MAX_BODY_CHARS = 1000;
// Each rerun follows a conflicting commit — here the user's other new notes, at most
// MAX_NOTES — so this many let every concurrent request end with a note or a refusal.
const RERUNS = MAX_NOTES + 5;

const noUser = (id) => new ApiError(404, `no user with id ${id}`);

/** Validates a POST /users/:id/notes body; returns the note's text. */
export function parseNote(bytes) {
  const { body } = decodeObject(bytes, new Set(["body"]));
  if (typeof body !== "string") throw new ApiError(400, "invalid JSON body: `body` must be a string");
  const len = [...body].length;
  if (body.trim() === "") throw new ApiError(400, "body must not be empty");
  if (len > MAX_BODY_CHARS) throw new ApiError(400, `body must be at most ${MAX_BODY_CHARS} characters (got ${len})`);
  return body;
}

/** Adds a note to user `userId` (at most MAX_NOTES per user) and commits. */
export async function addNote(userId, bytes) {
  const text = parseNote(bytes);
  return db.transaction(
    async (s) => {
      // Read inside the unit of work: a user deleted meanwhile conflicts too.
      if ((await User.get(s, userId)) === null) throw noUser(userId);
      const count = await Note.query(s).filterBy({ user_id: userId }).count();
      if (count >= MAX_NOTES) throw new ApiError(409, `user ${userId} has ${MAX_NOTES} notes already (the limit)`);
      return Note.insert(s, { id: await Note.nextId(s), user_id: userId, body: text, created_at: new Date().toISOString() });
    },
    { retries: RERUNS },
  );
}

/** The notes of user `userId`, ordered by id. */
export async function listNotes(session, userId) {
  if ((await User.get(session, userId)) === null) throw noUser(userId);
  return Note.query(session).filterBy({ user_id: userId }).orderBy("id").all();
}
