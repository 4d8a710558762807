// Placeholders: $1 (PostgreSQL), ? and ?1 (D1/SQLite) — bound on GlueSQL's token stream, so a
// placeholder inside a string, identifier or comment is text, and a value is never SQL.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Gluebind, SqlError } from "gluebind";

const db = new Gluebind({ url: "memory://placeholders" });
const s = db.openSession();
await s.executeBatch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)");
await s.execute("INSERT INTO users VALUES ($1, $2, $3), ($4, $5, $6)", [1, "ada", "a@x", 2, "bob", "b@x"]);

describe("placeholder styles", () => {
  it("$1, ? and ?1 bind the same values", async () => {
    const expected = [{ name: "bob" }];
    assert.deepEqual([...(await s.execute("SELECT name FROM users WHERE id = $1 AND email = $2", [2, "b@x"]))], expected);
    assert.deepEqual([...(await s.execute("SELECT name FROM users WHERE id = ? AND email = ?", [2, "b@x"]))], expected);
    assert.deepEqual([...(await s.execute("SELECT name FROM users WHERE id = ?1 AND email = ?2", [2, "b@x"]))], expected);
    assert.deepEqual([...(await s.execute("SELECT name FROM users WHERE email = $2 AND id = $1", [2, "b@x"]))], expected);
    assert.deepEqual([...(await s.execute("SELECT name FROM users WHERE id = ?1 OR id = ?1", [2]))], expected);
  });

  it("? inside strings, quoted identifiers and comments is not a placeholder", async () => {
    const rows = await s.execute(
      `SELECT '?' AS q, 'it''s $1' AS d, name AS "who?" FROM users -- why?\n WHERE id = ? /* and $2 ? */`,
      [1],
    );
    assert.deepEqual([...rows], [{ q: "?", d: "it's $1", "who?": "ada" }]);
  });

  it("values are never SQL: an injection attempt is stored verbatim", async () => {
    const evil = "x'); DROP TABLE users; --";
    await s.execute("INSERT INTO users VALUES (?, ?, ?)", [3, evil, "e?@x"]);
    const [row] = await s.execute("SELECT name, email FROM users WHERE id = ?", [3]);
    assert.deepEqual(row, { name: evil, email: "e?@x" });
    assert.equal((await s.execute("SELECT COUNT(*) AS n FROM users"))[0].n, 3);
  });

  it("negative numbers keep their sign next to operators", async () => {
    const [row] = await s.execute("SELECT 5 - ? AS a, 5 - ? AS b", [-3, -2.5]);
    assert.deepEqual(row, { a: 8, b: 7.5 });
  });

  it("LIMIT, OFFSET and IN lists take parameters", async () => {
    const rows = await s.execute("SELECT id FROM users WHERE id IN (?, ?, ?) ORDER BY id LIMIT ? OFFSET ?", [1, 2, 3, 2, 1]);
    assert.deepEqual(rows.map((r) => r.id), [2, 3]);
  });

  it("count and style mistakes are SQL errors", async () => {
    await assert.rejects(s.execute("SELECT $1, $2", [1]), /uses parameter \$2 but 1 parameter was given/);
    await assert.rejects(s.execute("SELECT $1", [1, 2]), /does not use parameter \$2/);
    await assert.rejects(s.execute("SELECT ?", []), SqlError);
    await assert.rejects(s.execute("SELECT $1, ?", [1, 2]), /mixes/);
    await assert.rejects(s.execute("SELECT ?, ?1", [1]), /mixes/);
    await assert.rejects(s.execute("SELECT $0", [1]), SqlError);
    await assert.rejects(s.execute("SELECT 1", [1]), /does not use parameter/);
  });
});
