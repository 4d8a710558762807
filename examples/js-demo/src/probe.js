// A second module that looks the event's session up on its own, for the seed's "reachable
// app-wide" check (GET /__gluebind/probe): nothing is passed in.
import { db } from "./db.js";

export function sessionIdFromAnotherModule() {
  return db.session().id;
}
