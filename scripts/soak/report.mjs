// The soak's report: one engine's result from its run and phases, and the table of all engines.

import { isError } from "./run.mjs";

/** One engine's result, from its SoakRun and what the phases returned. */
export function result(run, { startMs, loadMs, timedOut, items, readBackError, check }) {
  const t = run.t;
  const errors = [...t.statuses].filter(([s]) => isError(s)).reduce((a, [, n]) => a + n, 0);
  const acked = t.acked.POST + t.acked.PATCH + t.acked.DELETE;
  const pass =
    check.lost === 0 && check.duplicated === 0 && errors === 0 && t.wrongAnswers === 0 && t.races.broken === 0 && !timedOut && !readBackError;
  return {
    engine: run.engineUrl,
    pass,
    startMs,
    loadMs,
    totalMs: Date.now() - run.t0,
    sent: t.sent,
    acked,
    ackedBy: t.acked,
    writesFound: check.writesFound,
    lost: check.lost,
    duplicated: check.duplicated,
    maybe: check.maybe,
    conflicts: t.conflicts,
    wrongAnswers: t.wrongAnswers,
    races: t.races,
    statuses: t.statuses,
    errors,
    rows: items.length,
    problems: t.problems,
  };
}

/** The results side by side, one column per engine (a Markdown table). */
export function table(app, results) {
  const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const statuses = (r) =>
    [...r.statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s === 0 ? "network" : s} ${n}`)
      .join(", ");
  const lines = [
    ["requests sent (load)", (r) => r.sent.load],
    ["  + setup, read-back", (r) => `${r.sent.setup} + ${r.sent.readBack}`],
    ["load duration", (r) => `${secs(r.loadMs)} (${Math.round(r.sent.load / (r.loadMs / 1000))}/s)`],
    ["wrangler start-up", (r) => secs(r.startMs)],
    ["acknowledged writes", (r) => `${r.acked} (POST ${r.ackedBy.POST}, PATCH ${r.ackedBy.PATCH}, DELETE ${r.ackedBy.DELETE})`],
    ["writes found afterwards", (r) => r.writesFound],
    ["lost", (r) => r.lost],
    ["duplicated", (r) => r.duplicated],
    ["conflicts (409)", (r) => `${r.conflicts.expected + r.conflicts.unexpected} (${r.conflicts.unexpected} unexpected)`],
    ["409s per load request", (r) => `${((100 * (r.conflicts.expected + r.conflicts.unexpected)) / r.sent.load).toFixed(1)} %`],
    ["race groups (broken)", (r) => `${r.races.groups} (${r.races.broken})`],
    ["wrong answers", (r) => r.wrongAnswers],
    ["maybe-applied rows", (r) => r.maybe],
    ["responses by status", statuses],
    ["5xx + network errors", (r) => r.errors],
    ["users afterwards", (r) => r.rows],
    ["result", (r) => (r.pass ? "PASS" : "FAIL")],
  ];
  const cells = lines.map(([label, f]) => [label, ...results.map((r) => String(f(r)))]);
  const head = [app, ...results.map((r) => r.engine)];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const fmt = (row) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [fmt(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(fmt)].join("\n");
}
