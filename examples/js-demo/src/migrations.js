// The demo's schema changes since its first deploy, oldest first (as service::migrations in
// the Rust demo). db.js's init runs the ones a database has not run; a new database is created
// in the models' latest shape with every step recorded. Never change or remove a step once a
// database ran it: add a new one.
import { migration } from "gluebind";

export const MIGRATIONS = [
  // Notes remember when they were added; the notes stored before read null.
  migration("0001_notes_created_at").addColumn("notes", "created_at TEXT NULL"),
];
