import path from "node:path";
import { expect } from "chai";
import fc from "fast-check";
import { artifactDir, isSafeArtifactName } from "../src/artifact-files.js";

const SAFE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".split("");
const ALNUM = SAFE_CHARS.filter((c) => /[A-Za-z0-9]/.test(c));

/** Strings that look like names and strings that try to be paths. */
const hostile = fc.oneof(
  fc.string({ unit: "binary", maxLength: 140 }),
  fc
    .array(fc.constantFrom("..", ".", "/", "\\", "%2e", "%2f", "\u0000", "a", "b.txt", "C:", "~", " ", "\n"), {
      maxLength: 8,
    })
    .map((parts) => parts.join("")),
);

describe("artifact-files: isSafeArtifactName (properties)", () => {
  it("accepts only names that stay a single file inside the job's folder", () => {
    const dir = artifactDir("/data", "01JOB");
    fc.assert(
      fc.property(hostile, (name) => {
        if (!isSafeArtifactName(name)) return;
        const file = path.resolve(dir, name);
        expect(path.dirname(file), name).to.equal(path.resolve(dir));
        expect(path.basename(file), name).to.equal(name);
        expect(name.startsWith("."), name).to.equal(false);
        expect(name.includes(".."), name).to.equal(false);
        expect(name.length, name).to.be.within(1, 128);
        expect(/^[A-Za-z0-9._-]+$/.test(name), name).to.equal(true);
      }),
      { numRuns: 5000 },
    );
  });

  it("accepts every plain file name: a letter or digit, then letters, digits, dots, dashes, underscores", () => {
    const plain = fc
      .tuple(fc.constantFrom(...ALNUM), fc.array(fc.constantFrom(...SAFE_CHARS), { maxLength: 127 }))
      .map(([first, rest]) => first + rest.join(""))
      .filter((name) => !name.includes(".."));
    fc.assert(
      fc.property(plain, (name) => {
        expect(isSafeArtifactName(name), name).to.equal(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses names with a separator, a dot-segment, a leading dot, control characters, or over 128 characters", () => {
    for (const name of [
      "",
      ".",
      "..",
      ".env",
      "a/b",
      "a\\b",
      "../x",
      "x/..",
      "a..b",
      "a\u0000b",
      "a\nb",
      "é",
      "x".repeat(129),
    ]) {
      expect(isSafeArtifactName(name), JSON.stringify(name)).to.equal(false);
    }
  });
});
