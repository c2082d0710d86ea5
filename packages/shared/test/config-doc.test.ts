import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { CONFIG_KEYS } from "../src/config.js";
import {
  CONFIG_DOC_END,
  CONFIG_DOC_START,
  CONFIG_GROUPS,
  configDefaultText,
  configDefaultValue,
  configGroupProblems,
  renderConfigTables,
  withConfigTables,
} from "../src/config-doc.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const REGENERATE = "pnpm build && node scripts/gen-config-doc.mjs";

describe("config-doc", () => {
  it("places every configuration key in exactly one group", () => {
    expect(configGroupProblems()).to.deep.equal([]);
  });

  it("reports a key without a group, a key in two groups and a group entry that is no key", () => {
    const problems = configGroupProblems(
      ["FOREMAN_A", "FOREMAN_B", "FOREMAN_NEW"],
      [
        { title: "One", keys: ["FOREMAN_A", "FOREMAN_B"] },
        { title: "Two", keys: ["FOREMAN_B", "FOREMAN_GONE"] },
      ],
    );
    expect(problems).to.have.length(3);
    expect(problems.join("\n")).to.include('FOREMAN_B is in both "One" and "Two"');
    expect(problems.join("\n")).to.include("FOREMAN_GONE");
    expect(problems.join("\n")).to.include("FOREMAN_NEW is in no group");
  });

  it("writes defaults the way they are set: sizes with their unit, durations also in words", () => {
    expect(configDefaultText("FOREMAN_PORT")).to.equal("`11435`");
    expect(configDefaultText("FOREMAN_BODY_LIMIT")).to.equal("`10mb`");
    expect(configDefaultText("FOREMAN_MAX_QUEUED_BYTES")).to.equal("`1gb`");
    expect(configDefaultText("FOREMAN_SYNC_WAIT_MS")).to.equal("`300000` (5 min)");
    expect(configDefaultText("FOREMAN_RETENTION_MS")).to.equal("`604800000` (7 d)");
    expect(configDefaultText("FOREMAN_RELAY_POLL_MS")).to.equal("`250`");
    expect(configDefaultText("FOREMAN_MANAGEMENT")).to.equal("`false`");
    expect(configDefaultText("FOREMAN_API_TOKEN")).to.equal("unset");
    expect(configDefaultText("FOREMAN_WEBHOOK_ALLOWED_HOSTS")).to.equal("empty");
  });

  it("keeps the doc lines' <, > and * from turning into HTML or emphasis", () => {
    const tables = renderConfigTables();
    expect(tables).to.include("Authorization: Bearer &lt;token&gt;");
    expect(tables).to.include("\\*.domain");
    for (const key of Object.keys(CONFIG_KEYS)) expect(tables).to.include(`| \`${key}\` |`);
  });

  it("refuses a document that lost its markers", () => {
    expect(() => withConfigTables("# Configuration\n")).to.throw(/markers/);
  });

  it("docs/configuration.md holds the tables CONFIG_KEYS renders today", () => {
    const file = path.join(ROOT, "docs/configuration.md");
    const text = fs.readFileSync(file, "utf8");
    expect(text, "docs/configuration.md has its config-keys markers").to.include(CONFIG_DOC_START);
    expect(text).to.include(CONFIG_DOC_END);
    // Compared as text, so the failure shows which row differs.
    const generated = withConfigTables(text);
    expect(text, `docs/configuration.md is out of date with CONFIG_KEYS: run ${REGENERATE}`).to.equal(generated);
  });

  it(".env.example sets every key that has a default to that default", () => {
    const example = fs.readFileSync(path.join(ROOT, ".env.example"), "utf8");
    for (const group of CONFIG_GROUPS) {
      for (const key of group.keys) {
        const value = configDefaultValue(key);
        const set = new RegExp(`^${key}=(.*)$`, "m").exec(example)?.[1];
        if (value === undefined || value === "") {
          expect(set, `${key} has no default, so .env.example leaves it commented out`).to.equal(undefined);
        } else {
          expect(set, `${key} in .env.example`).to.equal(value);
        }
      }
    }
  });
});
