/**
 * Headless Chromium for the report tests: find the binary, the flags of a throwaway profile, and a
 * skip-or-fail rule (fail when CI is set, skip otherwise) when it is not installed.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
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
