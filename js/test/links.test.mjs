// The docs' relative links resolve: every link to a file of the repository names one that
// exists, and every #anchor names a heading of its file (GitHub's anchors). External links
// (http, https, mailto) are not fetched.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, it } from "node:test";
import { ROOT, anchors, docFiles, links, read, slug } from "./markdown.mjs";

describe("links in the docs", () => {
  it("computes GitHub's anchors", () => {
    assert.equal(slug("The kv:// engine"), "the-kv-engine");
    assert.equal(slug("Durability: what holds when the response is sent"), "durability-what-holds-when-the-response-is-sent");
    assert.equal(slug("Optimistic concurrency (ETag, If-Match)"), "optimistic-concurrency-etag-if-match");
    assert.equal(slug("`memory://` and `kv://`"), "memory-and-kv");
  });

  for (const file of docFiles()) {
    it(`${file}: every relative link and anchor resolves`, () => {
      const broken = [];
      for (const { target, line } of links(read(file))) {
        if (/^(https?|mailto):/.test(target)) continue;
        const [path, anchor] = target.split("#", 2);
        const resolved = path === "" ? join(ROOT, file) : normalize(join(ROOT, dirname(file), decodeURI(path)));
        if (!resolved.startsWith(ROOT)) {
          broken.push(`${file}:${line}: ${target} points outside the repository`);
          continue;
        }
        if (!existsSync(resolved)) {
          broken.push(`${file}:${line}: ${target}: no such file`);
          continue;
        }
        if (anchor !== undefined) {
          if (!statSync(resolved).isFile() || !resolved.endsWith(".md")) {
            broken.push(`${file}:${line}: ${target}: an anchor into something that is not Markdown`);
          } else if (!anchors(read(resolved.slice(ROOT.length + 1))).has(anchor)) {
            broken.push(`${file}:${line}: ${target}: no heading with that anchor`);
          }
        }
      }
      assert.deepEqual(broken, []);
    });
  }

  // Scripts name docs in comments and messages ("see HACKING.md"): each must be in the repository.
  it("every Markdown file a script names exists", () => {
    const scripts = [
      ...["scripts", "bench", ".ci"].flatMap((dir) =>
        readdirSync(join(ROOT, dir), { recursive: true })
          .filter((f) => /\.(sh|mjs|js)$|^run$/.test(String(f)))
          .map((f) => join(dir, String(f))),
      ),
      "package.json",
    ];
    // A name is found as a path from the root or the script's folder, or as a file name in the
    // repository (bench/run.mjs writes "latest.md" under bench/results/).
    const tracked = execFileSync("git", ["ls-files", "*.md"], { cwd: ROOT, encoding: "utf8" }).split("\n");
    const missing = [];
    for (const script of scripts) {
      for (const [name] of read(script).matchAll(/[\w./-]+\.md\b/g)) {
        const found =
          existsSync(join(ROOT, name)) ||
          existsSync(join(ROOT, dirname(script), name)) ||
          tracked.some((f) => f === name || f.endsWith(`/${name}`));
        if (!found) missing.push(`${script}: ${name}`);
      }
    }
    assert.ok(scripts.length > 10, `found the scripts: ${scripts.length}`);
    assert.deepEqual(missing, []);
  });
});
