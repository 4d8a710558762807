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
