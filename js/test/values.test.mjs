// Value mapping across the boundary: every type in and out, 64-bit integers never rounded,
// dates, decimals, bytes and NULL round-trip; the shape of a result.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Gluebind, SqlError } from "gluebind";

let n = 0;
async function session(options = {}) {
  n += 1;
  const db = new Gluebind({ url: `memory://values${n}`, ...options });
  const s = db.openSession();
  await s.executeBatch(`CREATE TABLE t (
    id INTEGER PRIMARY KEY, i8 INT8 NULL, i32 INT32 NULL, i64 INT64 NULL, u64 UINT64 NULL,
    i128 INT128 NULL, f FLOAT NULL, dec DECIMAL NULL, txt TEXT NULL, b BOOLEAN NULL,
    d DATE NULL, ts TIMESTAMP NULL, tm TIME NULL, u UUID NULL, bytes BYTEA NULL,
    iv INTERVAL NULL, ip INET NULL)`);
  return s;
}

async function roundTrip(s, column, value, id) {
  await s.execute(`INSERT INTO t (id, ${column}) VALUES ($1, $2)`, [id, value]);
  const [row] = await s.execute(`SELECT ${column} FROM t WHERE id = $1`, [id]);
  return row[column];
}

describe("pattern matching (the package's GlueSQL runs on regex-lite)", () => {
  it("LIKE and ILIKE match Unicode text; ~ takes regex-lite's ASCII classes and refuses \\p{..}", async () => {
    const s = await session();
    for (const [id, txt] of [[1, "Émile"], [2, "émile"], [3, "x_1"]]) await s.execute("INSERT INTO t (id, txt) VALUES ($1, $2)", [id, txt]);
    const ids = async (where, pattern) => [...(await s.execute(`SELECT id FROM t WHERE ${where} ORDER BY id`, [pattern]))].map((r) => r.id);
    assert.deepEqual(await ids("txt ILIKE $1", "ÉMILE"), [1, 2]);
    assert.deepEqual(await ids("txt LIKE $1", "_mile"), [1, 2]);
    assert.deepEqual(await ids("txt ~ $1", "^\\w+$"), [3], "\\w is ASCII");
    assert.deepEqual(await ids("txt ~* $1", "^ÉMILE$"), [1], "~* folds ASCII case only");
    await assert.rejects(ids("txt ~ $1", "\\p{Lu}"), (err) => err instanceof SqlError && /invalid regular expression/.test(err.message));
    s.close();
  });
});

describe("values in and out", () => {
  it("null, booleans, numbers, text", async () => {
    const s = await session();
    assert.equal(await roundTrip(s, "txt", null, 1), null);
    assert.equal(await roundTrip(s, "b", true, 2), true);
    assert.equal(await roundTrip(s, "b", false, 3), false);
    assert.equal(await roundTrip(s, "i8", -5, 4), -5);
    assert.equal(await roundTrip(s, "i32", 2 ** 31 - 1, 5), 2 ** 31 - 1);
    assert.equal(await roundTrip(s, "f", 3, 6), 3, "an integral number goes into a FLOAT column");
    assert.equal(await roundTrip(s, "f", -0.1, 7), -0.1);
    assert.equal(await roundTrip(s, "f", 1e-7, 8), 1e-7);
    assert.equal(await roundTrip(s, "f", 1.7976931348623157e308, 9), 1.7976931348623157e308);
    assert.equal(await roundTrip(s, "txt", "Zoë 李 🚀 'quoted' $1 ?", 10), "Zoë 李 🚀 'quoted' $1 ?");
    assert.equal(await roundTrip(s, "txt", "", 11), "");
    s.close();
  });

  it("64-bit integers: a number while safe, a bigint beyond — never rounded", async () => {
    const s = await session();
    const safe = Number.MAX_SAFE_INTEGER;
    assert.equal(await roundTrip(s, "i64", safe, 1), safe);
    assert.equal(typeof (await roundTrip(s, "i64", -safe, 2)), "number");
    assert.equal(await roundTrip(s, "i64", 2n ** 53n, 3), 2n ** 53n);
    assert.equal(await roundTrip(s, "i64", 2n ** 63n - 1n, 4), 2n ** 63n - 1n);
    assert.equal(await roundTrip(s, "i64", -(2n ** 63n), 5), -(2n ** 63n));
    assert.equal(await roundTrip(s, "u64", 2n ** 64n - 1n, 6), 2n ** 64n - 1n);
    assert.equal(await roundTrip(s, "i128", -(2n ** 127n), 7), -(2n ** 127n));
    assert.equal(await roundTrip(s, "i64", 7n, 8), 7, "a small bigint comes back as a number");
    // Plain INTEGER (INT64) ids and COUNT(*) are numbers.
    const [{ c }] = await s.execute("SELECT COUNT(*) AS c FROM t");
    assert.equal(c, 8);
    // Out of range for the column: an error, not a wrap-around.
    await assert.rejects(s.execute("INSERT INTO t (id, i64) VALUES (99, $1)", [2n ** 63n]), SqlError);
    s.close();
  });

  it("option int64: 'bigint' and 'string'", async () => {
    const big = await session({ int64: "bigint" });
    assert.equal(await roundTrip(big, "i64", 5, 1), 5n);
    assert.equal(await big.nextId("seq"), 1n);
    const str = await session({ int64: "string" });
    assert.equal(await roundTrip(str, "i64", 2n ** 60n, 1), String(2n ** 60n));
    assert.equal(await roundTrip(str, "i32", 5, 2), 5, "32-bit integers stay numbers");
    big.close();
    str.close();
  });

  it("DECIMAL: an exact string out; numbers, bigints, and strings through CAST in", async () => {
    const s = await session();
    assert.equal(await roundTrip(s, "dec", 1.25, 1), "1.25");
    assert.equal(await roundTrip(s, "dec", 10n ** 20n, 2), "100000000000000000000");
    const exact = "12345678901234567890.123";
    await s.execute("INSERT INTO t (id, dec) VALUES ($1, CAST($2 AS DECIMAL))", [3, exact]);
    const [{ dec }] = await s.execute("SELECT dec FROM t WHERE id = 3");
    assert.equal(dec, exact);
    // The value read back round-trips through CAST unchanged.
    await s.execute("INSERT INTO t (id, dec) VALUES ($1, CAST($2 AS DECIMAL))", [4, dec]);
    assert.equal((await s.execute("SELECT dec FROM t WHERE id = 4"))[0].dec, exact);
    // Equality with DECIMAL goes through CAST (GlueSQL 0.20 matches nothing for `dec = 1.25`).
    const found = await s.execute("SELECT id FROM t WHERE dec = CAST($1 AS DECIMAL) ORDER BY id", [exact]);
    assert.deepEqual(found.map((r) => r.id), [3, 4]);
    s.close();
  });

  it("DATE, TIMESTAMP, TIME, INTERVAL, UUID, INET", async () => {
    const s = await session();
    assert.equal(await roundTrip(s, "d", "2024-02-29", 1), "2024-02-29");
    const when = new Date("2024-01-02T03:04:05.678Z");
    const ts = await roundTrip(s, "ts", when, 2);
    assert.ok(ts instanceof Date);
    assert.equal(ts.toISOString(), when.toISOString());
    // An ISO string binds to a TIMESTAMP column too, and compares with Dates.
    assert.equal((await roundTrip(s, "ts", "2024-01-02T03:04:05Z", 3)).toISOString(), "2024-01-02T03:04:05.000Z");
    const later = await s.execute("SELECT id FROM t WHERE ts > $1 ORDER BY id", [new Date("2024-01-02T03:04:05.5Z")]);
    assert.deepEqual(later.map((r) => r.id), [2]);
    assert.equal(await roundTrip(s, "tm", "12:34:56.789", 4), "12:34:56.789");
    assert.equal(typeof (await roundTrip(s, "iv", "1 day", 5)), "string");
    const uuid = "936da01f-9abd-4d9d-80c7-02af85c822a8";
    assert.equal(await roundTrip(s, "u", uuid, 6), uuid);
    assert.equal(await roundTrip(s, "ip", "192.168.0.1", 7), "192.168.0.1");
    await assert.rejects(s.execute("INSERT INTO t (id, ts) VALUES (8, $1)", [new Date("nope")]), /invalid Date/);
    s.close();
  });

  it("TIMESTAMP: milliseconds in a Date, every digit with timestamps: 'string'", async () => {
    const s = await session();
    await s.execute("INSERT INTO t (id, ts) VALUES (1, $1)", ["2024-01-02T03:04:05.123456"]);
    const [{ ts }] = await s.execute("SELECT ts FROM t");
    assert.equal(ts.toISOString(), "2024-01-02T03:04:05.123Z");
    const str = await session({ timestamps: "string" });
    assert.equal(await roundTrip(str, "ts", "2024-01-02T03:04:05.123456", 1), "2024-01-02T03:04:05.123456");
    s.close();
    str.close();
  });

  it("BYTEA: Uint8Array (or ArrayBuffer, Buffer) in, Uint8Array out", async () => {
    const s = await session();
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
    const out = await roundTrip(s, "bytes", bytes, 1);
    assert.ok(out instanceof Uint8Array);
    assert.deepEqual([...out], [...bytes]);
    assert.deepEqual([...(await roundTrip(s, "bytes", bytes.buffer, 2))], [...bytes]);
    assert.deepEqual([...(await roundTrip(s, "bytes", Buffer.from("hi"), 3))], [104, 105]);
    assert.equal((await roundTrip(s, "bytes", new Uint8Array(), 4)).length, 0);
    s.close();
  });

  it("MAP, LIST and POINT come out as objects and arrays", async () => {
    const s = await session();
    const [row] = await s.execute(
      `SELECT CAST('{"a": 1, "b": [true, null, "x"]}' AS MAP) AS m, CAST('[1, 2]' AS LIST) AS l, POINT(1.5, 2) AS p`,
    );
    assert.deepEqual(row, { m: { a: 1, b: [true, null, "x"] }, l: [1, 2], p: { x: 1.5, y: 2 } });
    s.close();
  });

  it("parameters that cannot bind are SQL errors naming the parameter", async () => {
    const s = await session();
    await assert.rejects(s.execute("SELECT $1", [undefined]), /parameter 1 is undefined; pass null/);
    await assert.rejects(s.execute("SELECT $1, $2", [1, { a: 1 }]), /parameter 2 is of type object/);
    await assert.rejects(s.execute("SELECT $1", [[1, 2]]), /parameter 1 is an array/);
    await assert.rejects(s.execute("SELECT $1", [Symbol("x")]), SqlError);
    await assert.rejects(s.execute("SELECT $1", "not an array"), /parameters must be an array/);
    await assert.rejects(s.execute("INSERT INTO t (id, i8) VALUES (1, $1)", [1.5]), SqlError);
    s.close();
  });
});

describe("result shape", () => {
  it("rows are plain objects; columns, affected and command are non-enumerable", async () => {
    const s = await session();
    const ins = await s.execute("INSERT INTO t (id, txt) VALUES (1, 'a'), (2, 'b')");
    assert.deepEqual([...ins], []);
    assert.equal(ins.affected, 2);
    assert.equal(ins.command, "INSERT");
    const rows = await s.execute("SELECT id, txt FROM t ORDER BY id");
    assert.deepEqual(rows, [
      { id: 1, txt: "a" },
      { id: 2, txt: "b" },
    ]);
    assert.equal(Object.getPrototypeOf(rows[0]), Object.prototype);
    assert.deepEqual(rows.columns, ["id", "txt"]);
    assert.equal(rows.command, "SELECT");
    assert.equal(rows.affected, 0);
    assert.equal(JSON.stringify(rows), '[{"id":1,"txt":"a"},{"id":2,"txt":"b"}]');
    assert.deepEqual(Object.keys(rows), ["0", "1"]);
    const upd = await s.execute("UPDATE t SET txt = 'c' WHERE id > 0");
    assert.deepEqual([upd.command, upd.affected], ["UPDATE", 2]);
    const del = await s.execute("DELETE FROM t WHERE id = 99");
    assert.deepEqual([del.command, del.affected], ["DELETE", 0]);
    const [schema] = await s.executeBatch("CREATE TABLE x (a INTEGER)");
    assert.equal(schema.command, "SCHEMA");
    s.close();
  });

  it("a column named __proto__ is an ordinary property", async () => {
    const s = await session();
    const [row] = await s.execute('SELECT 1 AS "__proto__", 2 AS other');
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    assert.deepEqual(Object.keys(row), ["__proto__", "other"]);
    assert.equal(Object.getOwnPropertyDescriptor(row, "__proto__").value, 1);
    s.close();
  });

  it("executeBatch returns one result per statement", async () => {
    const s = await session();
    const results = await s.executeBatch("INSERT INTO t (id) VALUES (1); SELECT id FROM t; DELETE FROM t");
    assert.deepEqual(
      results.map((r) => [r.command, r.affected, [...r]]),
      [
        ["INSERT", 1, []],
        ["SELECT", 0, [{ id: 1 }]],
        ["DELETE", 1, []],
      ],
    );
    s.close();
  });

  it("commit and rollback report what they did", async () => {
    const s = await session();
    assert.equal(s.isDirty, true, "CREATE TABLE is pending");
    const info = await s.commit();
    assert.equal(typeof info.version, "number");
    assert.equal(info.tablesChanged, 1);
    assert.deepEqual(await s.commit(), { version: null, rowsWritten: 0, tablesChanged: 0 });
    await s.execute("INSERT INTO t (id) VALUES (1)");
    assert.equal(s.isDirty, true);
    assert.equal(await s.rollback(), undefined);
    assert.equal(s.isDirty, false);
    assert.deepEqual([...(await s.execute("SELECT id FROM t"))], []);
    s.close();
    assert.equal(s.isClosed, true);
  });
});
