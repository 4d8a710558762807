// Reading the repository's Markdown for the docs tests (not a test file): which files are docs,
// their fenced code blocks, headings (with GitHub's anchors) and links.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** The documentation files, relative to the repository root. */
export function docFiles() {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`);
  return ["README.md", "HACKING.md", "CHANGELOG.md", ...docs, "js/README.md", "examples/js-demo/README.md"];
}

export const read = (file) => readFileSync(join(ROOT, file), "utf8");

/**
 * Splits Markdown into fenced code blocks and the prose around them.
 * Blocks: { info, lang, text, line } (text ends with a newline; line is 1-based, of the fence).
 * Prose: the file's text with every code block's lines blanked (line numbers kept).
 */
export function parse(markdown) {
  const lines = markdown.split("\n");
  const blocks = [];
  const prose = [];
  let open = null;
  lines.forEach((line, i) => {
    if (open === null) {
      const fence = /^```(.*)$/.exec(line);
      if (fence) {
        const info = fence[1].trim();
        open = { info, lang: info.split(/[,\s]/)[0], text: "", line: i + 1 };
        prose.push("");
      } else {
        prose.push(line);
      }
    } else if (line === "```") {
      blocks.push(open);
      open = null;
      prose.push("");
    } else {
      open.text += `${line}\n`;
      prose.push("");
    }
  });
  if (open !== null) throw new Error(`a code block opened on line ${open.line} is not closed`);
  return { blocks, prose: prose.join("\n") };
}

/** Inline code spans removed (links and headings inside them are text). */
const withoutCodeSpans = (text) => text.replace(/`[^`\n]*`/g, "");

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
export function slug(heading) {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // a link: its text
    .replace(/`/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a Markdown file's headings, as GitHub generates them (duplicates get -1, -2…). */
export function anchors(markdown) {
  const seen = new Map();
  const out = new Set();
  for (const line of parse(markdown).prose.split("\n")) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The links of a Markdown file's prose: { target, line }. */
export function links(markdown) {
  const { prose } = parse(markdown);
  const text = prose
    .split("\n")
    .map((l) => withoutCodeSpans(l))
    .join("\n");
  const out = [];
  for (const m of text.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    out.push({ target: m[1], line: text.slice(0, m.index).split("\n").length });
  }
  return out;
}

export const fromRoot = (abs) => relative(ROOT, abs);
