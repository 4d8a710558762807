// What the benchmarks read of a `wrangler dev` process group: its processes (ps) and the CPU
// each used (/proc), so a variant's cost is the worker's own and not the load generator's.

import { execFileSync, execSync } from "node:child_process";
import { readFileSync } from "node:fs";

const CLK_TCK = Number(execSync("getconf CLK_TCK").toString().trim()) || 100;

/** The processes of group `pgid`: [{pid, comm}]. */
export function groupPids(pgid) {
  try {
    return execFileSync("ps", ["-o", "pid=,comm=", "-g", String(pgid)])
      .toString()
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .map(([pid, comm]) => ({ pid: Number(pid), comm }));
  } catch {
    return [];
  }
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * The inner workerd's entry socket of `worker` (a bench/wrangler-dev.mjs worker): the loopback
 * port of one of its group's workerd processes, other than the proxy's, whose answer to `path`
 * `accepts(status, text)`. What the worker itself costs, without wrangler's proxy in front.
 * @returns {Promise<{port: number, pid: number, url: string}>}
 */
export async function innerSocket(worker, path, accepts, timeoutMs) {
  const pids = groupPids(worker.pid).filter((p) => p.comm === "workerd").map((p) => p.pid);
  const lines = execFileSync("ss", ["-ltnpH"]).toString().split("\n");
  for (const line of lines) {
    const pid = pids.find((p) => line.includes(`pid=${p},`));
    if (!pid) continue;
    const port = Number(line.split(/\s+/)[3].split(":").pop());
    if (port === worker.port) continue;
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
      if (accepts(res.status, await res.text())) return { port, pid, url: `http://127.0.0.1:${port}` };
    } catch {}
  }
  throw new Error(`no direct workerd socket found (${path})`);
}
