/**
 * Headless Chromium for the report tests: find the binary, the flags of a throwaway profile, and a
 * skip-or-fail rule (fail when CI is set, skip otherwise) when it is not installed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { TestContext } from "node:test";

/** The Chromium binary: $CHROMIUM when set (the only candidate), else Debian's /usr/bin/chromium. */
export function findChromium(): { path: string | null; tried: string[] } {
  const override = process.env["CHROMIUM"];
  const tried = override !== undefined && override !== "" ? [override] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
  return { path: tried.find((c) => fs.existsSync(c)) ?? null, tried };
}

/** Flags of a headless run with its own profile directory, no network chatter. */
export function chromiumArgs(profile: string): string[] {
  return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", `--user-data-dir=${profile}`];
}

/** The Chromium binary, or null after skipping the test (failing it when CI is set). */
export function chromiumOrSkip(t: TestContext): string | null {
  const { path: chromium, tried } = findChromium();
  if (chromium !== null) return chromium;
  const msg = `Chromium not found (tried ${tried.join(", ")}): install Debian's package with \`apt-get install -y chromium\` (or set CHROMIUM=/path/to/chromium)`;
  if (process.env["CI"] !== undefined && process.env["CI"] !== "") assert.fail(`${msg}; the HTML report cannot be checked in CI without it`);
  t.skip(msg);
  return null;
}

/**
 * Screenshot `url` at width 1200 into `shot` and check it is a real, non-empty page (PNG signature,
 * width, more than 50 kB). With DELTAEDIT_REPORT_KEEP=DIR set, copies the report and the screenshot
 * there under `keepAs` (names without extension: NAME.html, NAME.png) for a person to look at.
 */
export function screenshotReport(chromium: string, url: string, o: { profile: string; shot: string; height: number; report: string; keepAs: string }): void {
  const ss = spawnSync(chromium, [...chromiumArgs(o.profile), `--screenshot=${o.shot}`, `--window-size=1200,${o.height}`, "--hide-scrollbars", url], { encoding: "utf8", timeout: 60_000 });
  assert.equal(ss.status, 0, `chromium --screenshot failed (status ${ss.status}): ${ss.stderr.slice(-2000)}`);
  assert.ok(fs.existsSync(o.shot), "screenshot written");
  const png = fs.readFileSync(o.shot);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  assert.equal(png.readUInt32BE(16), 1200, "screenshot width");
  assert.ok(png.length > 50_000, `screenshot is only ${png.length} bytes: the page looks empty`);
  const keep = process.env["DELTAEDIT_REPORT_KEEP"];
  if (keep !== undefined && keep !== "") {
    fs.mkdirSync(keep, { recursive: true });
    fs.copyFileSync(o.report, path.join(keep, `${o.keepAs}.html`));
    fs.copyFileSync(o.shot, path.join(keep, `${o.keepAs}.png`));
  }
}

/** In one rendered plot's DOM chunk: a CI band for exactly the plotted lines, with finite coordinates. */
export function assertBandPerLine(chunk: string, id: string): void {
  const lines = new Set([...chunk.matchAll(/<polyline class="series" data-series="([^"]+)"/g)].map((m) => m[1]!));
  const bands = [...chunk.matchAll(/<path class="band" data-series="([^"]+)"[^>]* d="([^"]+)"/g)];
  assert.deepEqual(new Set(bands.map((b) => b[1]!)), lines, `plot ${id}: a band for every line`);
  for (const b of bands) assert.ok(!b[2]!.includes("NaN"), `plot ${id}: band of ${b[1]} has finite coordinates`);
}
