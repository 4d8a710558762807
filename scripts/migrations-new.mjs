// `npm run migrations:new -- <name> [--js]`: the demo's next migration step from the
// difference between its models and its schema snapshot — the Rust demo's
// (examples/demo/schema.json, through `cargo run --example migrations_new`), or with --js the
// JavaScript demo's (examples/js-demo/schema.json, through the npm package's
// gluebind-migrations command). Prints the step to add and writes the new snapshot.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const js = args.includes("--js");
const name = args.find((a) => !a.startsWith("--"));
if (!name) {
  console.error("usage: npm run migrations:new -- <step name, e.g. 0002_users_bio> [--js]");
  process.exit(2);
}
const run = (cmd, argv) => execFileSync(cmd, argv, { cwd: root, stdio: "inherit" });
try {
  if (js) {
    if (!existsSync(join(root, "js", "dist", "gluebind.node.js"))) run("bash", ["scripts/build-js.sh"]);
    run("node", ["js/src/cli.js", "new", name, "--models", "examples/js-demo/src/models.js"]);
  } else {
    run("cargo", ["run", "-q", "-p", "gluebind-demo", "--example", "migrations_new", "--", name]);
  }
} catch (err) {
  process.exit(err.status ?? 1);
}
