// The demo's tables as models (as examples/demo/src/model.rs in the Rust demo): db.js's init
// creates or migrates them (migrate), users.js, events.js and notes.js read and write through
// them.
import { defineModel } from "gluebind";

export const User = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  name: { type: "TEXT" },
  email: { type: "TEXT", unique: true },
});

/** The event log: `kind` holds the event's `type`, `data` its JSON as text. */
export const Event = defineModel("events", {
  id: { type: "INTEGER", primaryKey: true },
  kind: { type: "TEXT" },
  data: { type: "TEXT" },
});

/**
 * A user's notes (at most 5 each: notes.js). `created_at` came with the migration
 * 0001_notes_created_at (migrations.js): notes stored before it read null.
 */
export const Note = defineModel("notes", {
  id: { type: "INTEGER", primaryKey: true },
  user_id: { type: "INTEGER" },
  body: { type: "TEXT" },
  created_at: { type: "TEXT", nullable: true },
});

export const MODELS = [User, Event, Note];
