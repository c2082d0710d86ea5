import { expect } from "chai";
import { formatFields, formatTable } from "../src/table.js";

describe("table", () => {
  it("aligns columns two spaces apart under upper-case headers, right-aligning numbers, no trailing spaces", () => {
    const text = formatTable(
      [{ header: "model" }, { header: "queued", align: "right" }, { header: "note" }],
      [
        ["llama3.2:latest", 12, ""],
        ["qwen3:8b", 3, null],
      ],
    );
    expect(text.split("\n")).to.deep.equal([
      "MODEL            QUEUED  NOTE",
      "llama3.2:latest      12",
      "qwen3:8b              3  -",
    ]);
  });

  it("cuts long free text with an ellipsis, flattens newlines and ignores colour codes when measuring", () => {
    const text = formatTable(
      [{ header: "state" }, { header: "error", maxWidth: 12 }],
      [
        ["\x1b[32mdone\x1b[39m", "short"],
        ["failed", "a very long error\nthat goes on"],
      ],
      { indent: "  " },
    );
    expect(text.split("\n")).to.deep.equal([
      "  STATE   ERROR",
      "  \x1b[32mdone\x1b[39m    short",
      "  failed  a very long…",
    ]);
  });

  it("label/value lines with the values aligned", () => {
    expect(
      formatFields([
        ["id", "01J"],
        ["attempts", 2],
        ["error", null],
      ]).split("\n"),
    ).to.deep.equal(["id        01J", "attempts  2", "error     -"]);
  });
});
