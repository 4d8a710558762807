#!/usr/bin/env node
// gluebind-migrations: the next migration step from the difference between your models and
// the schema snapshot kept beside your steps (the models' tables as of the last step).
//
//   gluebind-migrations new <name> --models <module> [--snapshot <file>] [--export MODELS]
//
// <module> exports the models as an array (`export const MODELS = [User, Note]`); the
// snapshot defaults to schema.json beside it. Prints the step to add to your migrations and
// writes the new snapshot (the first run writes the snapshot only).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { migrationSnapshot, nextMigration } from "./node.js";

const USAGE = "usage: gluebind-migrations new <name> --models <module> [--snapshot <file>] [--export MODELS]";

function fail(message) {
  console.error(message);
  process.exit(2);
}

const [command, name, ...rest] = process.argv.slice(2);
if (command !== "new" || !name || name.startsWith("--")) fail(USAGE);
const options = {};
for (let i = 0; i < rest.length; i += 2) {
  const key = rest[i]?.replace(/^--/, "");
  if (!["models", "snapshot", "export"].includes(key) || rest[i + 1] === undefined) fail(USAGE);
  options[key] = rest[i + 1];
}
if (!options.models) fail(USAGE);
const modelsPath = resolve(options.models);
const snapshotPath = resolve(options.snapshot ?? join(dirname(modelsPath), "schema.json"));
const exported = options.export ?? "MODELS";

const module = await import(pathToFileURL(modelsPath).href);
const models = module[exported];
if (!Array.isArray(models)) fail(`${options.models} does not export an array ${exported} of models`);

const now = `${migrationSnapshot(models)}\n`;
if (!existsSync(snapshotPath)) {
  writeFileSync(snapshotPath, now);
  console.log(`no snapshot yet: wrote ${snapshotPath} (the models as they are; the next change gets a step)`);
  process.exit(0);
}
const step = nextMigration(name, models, readFileSync(snapshotPath, "utf8"));
if (step.js === "" && step.notes.length === 0) {
  console.log("the models match the snapshot: no step to write");
  process.exit(0);
}
if (step.js !== "") console.log(`add to your migrations:\n\n  ${step.js},\n`);
for (const note of step.notes) console.log(`note: ${note}\n`);
writeFileSync(snapshotPath, now);
console.log(`wrote ${snapshotPath}`);
