#!/usr/bin/env node
// Regenerates the key tables of docs/configuration.md from CONFIG_KEYS (the built shared package), between
// its config-keys markers. Run after adding or changing a FOREMAN_* key: pnpm build && node scripts/gen-config-doc.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const built = path.join(root, "packages/shared/dist/config-doc.js");
if (!fs.existsSync(built)) {
  console.error(`${path.relative(root, built)} is missing: run "pnpm build" first`);
  process.exit(1);
}
const { configGroupProblems, withConfigTables } = await import(built);

const problems = configGroupProblems();
if (problems.length > 0) {
  console.error(`cannot generate the configuration reference:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
const file = path.join(root, "docs/configuration.md");
const before = fs.readFileSync(file, "utf8");
const after = withConfigTables(before);
if (after === before) {
  console.log("docs/configuration.md is up to date");
} else {
  fs.writeFileSync(file, after);
  console.log("docs/configuration.md updated");
}
