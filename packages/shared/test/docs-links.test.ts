import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";

/**
 * The repository's documentation must stand on its own: every relative link in every markdown file
 * resolves to a file of the repository (and a `#fragment` to a heading of it), and no document cites
 * papers a reader of the repository does not have (the product specification, issue numbers).
 */

const ROOT = path.resolve(import.meta.dirname, "../../..");
const SKIPPED_DIRS = new Set(["node_modules", "dist", "data", ".git"]);

/**
 * Files that other work in progress writes, which documents may link to before they land. Each entry is
 * only excused while the file is missing; remove it once the file is in the repository.
 */
const PENDING_FILES = new Set<string>([]);

/** What a document must not cite: the product specification and issue threads are not in the repository. */
const CITATIONS: ReadonlyArray<[RegExp, string]> = [
  [/\bSPEC\b/, "cites SPEC"],
  [/\bthe spec\b/i, 'cites "the spec"'],
  [/\bSTYLE\.md\b/, "cites STYLE.md"],
  [/\bissues?\b/i, "cites an issue"],
  [/\.\.\/shared\b/, "points at ../shared, outside the repository"],
];

function markdownFiles(dir: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) markdownFiles(path.join(dir, entry.name), out);
    } else if (entry.name.endsWith(".md")) {
      out.push(path.join(dir, entry.name));
    }
  }
  return out;
}

/** The text without fenced code blocks and inline code spans, where `[a](b)` is not a link. */
export function withoutCode(text: string): string {
  return text
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "")
    .replace(/(`+)[\s\S]*?\1/g, (span) => span.replace(/[[\]()]/g, " "));
}

/** Link destinations: inline links and images, and reference definitions. */
export function linkTargets(text: string): string[] {
  const prose = withoutCode(text);
  const targets: string[] = [];
  for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]!);
  for (const m of prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) targets.push(m[1]!);
  return targets;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
export function headingSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`/g, "")
    .replace(/\*/g, "")
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "").replace(/ /g, "-");
}

/** Every anchor a document offers: its headings' slugs (numbered when repeated) and explicit ids. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  for (const m of withoutCode(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = headingSlug(m[1]!);
    const seen = counts.get(slug) ?? 0;
    counts.set(slug, seen + 1);
    anchors.add(seen === 0 ? slug : `${slug}-${seen}`);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** What is wrong with one link of `file`, or null when it resolves. */
function linkProblem(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // http:, https:, mailto:
  const hash = target.indexOf("#");
  const pathPart = hash < 0 ? target : target.slice(0, hash);
  const fragment = hash < 0 ? "" : decodeURIComponent(target.slice(hash + 1));
  const resolved = pathPart
    ? path.resolve(
        pathPart.startsWith("/") ? ROOT : path.dirname(file),
        decodeURIComponent(pathPart).replace(/^\//, ""),
      )
    : file;
  const relative = path.relative(ROOT, resolved);
  if (relative.startsWith("..") || path.isAbsolute(relative)) return `${target} points outside the repository`;
  if (!fs.existsSync(resolved)) {
    return PENDING_FILES.has(relative.split(path.sep).join("/")) ? null : `${target} does not exist`;
  }
  if (fragment && resolved.endsWith(".md") && !anchorsOf(fs.readFileSync(resolved, "utf8")).has(fragment)) {
    return `${target}: ${relative} has no heading with the anchor #${fragment}`;
  }
  return null;
}

describe("repository documentation", () => {
  const files = markdownFiles(ROOT);

  it("finds the README and the docs", () => {
    const names = files.map((f) => path.relative(ROOT, f));
    expect(names).to.include.members(["README.md", "docs/api.md", "docs/configuration.md", "docs/operations.md"]);
  });

  it("resolves every relative link in every markdown file to a file of the repository", () => {
    const problems: string[] = [];
    for (const file of files) {
      for (const target of linkTargets(fs.readFileSync(file, "utf8"))) {
        const problem = linkProblem(file, target);
        if (problem) problems.push(`${path.relative(ROOT, file)}: ${problem}`);
      }
    }
    expect(problems).to.deep.equal([]);
  });

  it("cites no document or issue a reader of the repository does not have", () => {
    const problems: string[] = [];
    for (const file of files) {
      const lines = fs.readFileSync(file, "utf8").split("\n");
      for (const [i, line] of lines.entries()) {
        for (const [pattern, what] of CITATIONS) {
          if (pattern.test(line)) problems.push(`${path.relative(ROOT, file)}:${i + 1} ${what}: ${line.trim()}`);
        }
      }
    }
    expect(problems).to.deep.equal([]);
  });

  it("links README.md to the documentation", () => {
    const targets = linkTargets(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"));
    expect(targets).to.include.members([
      "docs/api.md",
      "docs/configuration.md",
      "docs/operations.md",
      "docs/deploy.md",
    ]);
  });

  describe("its own checks", () => {
    it("ignores links inside code and finds inline links, images and reference definitions", () => {
      const text = [
        "See [the API](docs/api.md#errors) and ![logo](img/logo.png).",
        "`[not](a-link.md)` and",
        "```md",
        "[also not](fenced.md)",
        "```",
        "[ref]: docs/operations.md",
      ].join("\n");
      expect(linkTargets(text)).to.deep.equal(["docs/api.md#errors", "img/logo.png", "docs/operations.md"]);
    });

    it("makes anchors the way GitHub does", () => {
      expect(headingSlug("GET /jobs/:id/artifacts/:name")).to.equal("get-jobsidartifactsname");
      expect(headingSlug("Waiting callers: wait limit and early answer")).to.equal(
        "waiting-callers-wait-limit-and-early-answer",
      );
      expect(headingSlug("The `foreman` CLI")).to.equal("the-foreman-cli");
      expect([...anchorsOf("# Notes\n## Notes\n")]).to.deep.equal(["notes", "notes-1"]);
    });

    it("flags citations of the specification and of issues", () => {
      const flagged = (line: string) => CITATIONS.filter(([pattern]) => pattern.test(line)).map(([, what]) => what);
      expect(flagged("SPEC §5.2 lists the routes")).to.deep.equal(["cites SPEC"]);
      expect(flagged("hands the attempt back (issue 5).")).to.deep.equal(["cites an issue"]);
      expect(flagged("The contract is [SPEC](../shared/SPEC.md).")).to.include(
        "points at ../shared, outside the repository",
      );
      expect(flagged("The spec asks for it")).to.deep.equal(['cites "the spec"']);
      expect(flagged("Standard Webhooks signatures, checked on the address connected to")).to.deep.equal([]);
    });

    it("reports a missing file, a missing anchor and a link out of the repository", () => {
      const readme = path.join(ROOT, "README.md");
      expect(linkProblem(readme, "docs/nope.md")).to.match(/does not exist/);
      expect(linkProblem(readme, "docs/api.md#no-such-heading")).to.match(/no heading/);
      expect(linkProblem(readme, "../shared/SPEC.md")).to.match(/outside the repository/);
      expect(linkProblem(readme, "docs/api.md#errors")).to.equal(null);
      expect(linkProblem(readme, "https://example.com/x")).to.equal(null);
    });
  });
});
