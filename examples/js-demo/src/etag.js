// Optimistic concurrency for PATCH /users/{id} (as examples/demo/src/etag.rs): an ETag per user
// representation and the If-Match precondition (RFC 9110 §13.1.1, strong comparison). The tag
// hashes the user's JSON, so it changes whenever the stored user does; the session's
// commit-time conflict check closes the window between the comparison and the write.

/** The strong entity tag of `user`: `"` + 32 hex digits of SHA-256 over its JSON + `"`. */
export async function etagOf(user) {
  const json = JSON.stringify({ id: user.id, name: user.name, email: user.email });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(json)));
  const hex = Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `"${hex}"`;
}

/** True when the If-Match header value is satisfied by `current`: `*` or an equal strong tag. */
export function ifMatchSatisfied(header, current) {
  return header.split(",").some((tag) => tag.trim() === "*" || tag.trim() === current);
}
