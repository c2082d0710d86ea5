import { expect } from "chai";
import {
  formatBytes,
  formatClock,
  formatClockDuration,
  formatDateTime,
  formatDuration,
  formatRate,
  msBetween,
  oneLine,
  tokensPerSecond,
} from "../src/format.js";

describe("format", () => {
  it("durations read at a glance at every scale", () => {
    const table: Array<[number | null, string]> = [
      [null, "-"],
      [0, "0 ms"],
      [850, "850 ms"],
      [4_249, "4.2 s"],
      [42_000, "42 s"],
      [185_000, "3m 05s"],
      [7_800_000, "2h 10m"],
      [3 * 86_400_000 + 4 * 3_600_000, "3d 4h"],
      [-5, "0 ms"],
    ];
    for (const [ms, text] of table) expect(formatDuration(ms), String(ms)).to.equal(text);
  });

  it("sizes in decimal units as Ollama prints them, rates per second", () => {
    expect(formatBytes(0)).to.equal("0 B");
    expect(formatBytes(999)).to.equal("999 B");
    expect(formatBytes(274_302_450)).to.equal("274 MB");
    expect(formatBytes(2_019_393_189)).to.equal("2.0 GB");
    expect(formatBytes(68_575_612)).to.equal("68.6 MB");
    expect(formatBytes(undefined)).to.equal("-");
    expect(formatRate(35_200_000)).to.equal("35.2 MB/s");
    expect(formatRate(null)).to.equal("-");
  });

  it("countdowns as download tools print them", () => {
    expect(formatClockDuration(23)).to.equal("0:23");
    expect(formatClockDuration(725)).to.equal("12:05");
    expect(formatClockDuration(3723)).to.equal("1:02:03");
    expect(formatClockDuration(0.2)).to.equal("0:01");
    expect(formatClockDuration(null)).to.equal("-:--");
  });

  it("times in the local zone; an unreadable time falls back", () => {
    const iso = "2026-11-28T04:05:06.789Z";
    const d = new Date(iso);
    const pad = (n: number) => String(n).padStart(2, "0");
    const local = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    expect(formatDateTime(iso)).to.equal(`${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${local}`);
    expect(formatClock(iso, 0)).to.equal(`${local}.789`);
    expect(formatClock(null, d.getTime())).to.equal(`${local}.789`);
    expect(formatDateTime(null)).to.equal("-");
  });

  it("spans, token rates and one-line excerpts", () => {
    expect(msBetween("2026-11-28T04:00:00.000Z", "2026-11-28T04:00:01.500Z")).to.equal(1500);
    expect(msBetween(null, "2026-11-28T04:00:01.500Z")).to.equal(null);
    expect(tokensPerSecond({ eval_count: 24, eval_duration: 200_000_000 })).to.equal(120);
    expect(tokensPerSecond({ eval_count: 0 })).to.equal(null);
    expect(oneLine("a\n  b\tc", 10)).to.equal("a b c");
    expect(oneLine("x".repeat(20), 10)).to.equal(`${"x".repeat(9)}…`);
  });
});
