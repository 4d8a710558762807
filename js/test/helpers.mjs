// Shared helpers of the JS unit tests (not a test file).
import { Gluebind } from "gluebind";

/** A fake ExecutionContext: collects waitUntil promises; `settle()` awaits them all. */
export function fakeCtx() {
  const pending = [];
  return {
    pending,
    waitUntil(p) {
      pending.push(p);
    },
    async settle() {
      while (pending.length) await pending.shift();
    },
  };
}

let n = 0;
/** A Gluebind on a memory database of its own. */
export function memoryDb(options = {}) {
  n += 1;
  return new Gluebind({ url: `memory://test${process.pid}_${n}`, ...options });
}

/** A Gluebind on its own memory database, with a users table. */
export async function usersDb(options = {}) {
  const db = memoryDb(options);
  const s = db.openSession();
  await s.executeBatch(
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)",
  );
  await s.commit();
  s.close();
  return db;
}

export const tick = () => new Promise((r) => setTimeout(r, Math.random() * 3));
