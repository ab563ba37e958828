/**
 * Student's t distribution (util/studentT.ts): quantiles against published two-sided 95 % / 99 %
 * critical values, CDF ∘ quantile = identity, symmetry, the ν = 1, 2 closed forms and ν → ∞ (normal).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { lnGamma, normalQuantile, studentTCdf, studentTQuantile } from "../../src/util/studentT.js";

/** |a − b| ≤ tol · max(1, |b|), with a message naming the quantity. */
function close(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: got ${a}, expected ${b} (tol ${tol})`);
}

test("t quantiles match published critical values (0.975 for df 1..30, 100, ∞; 0.995; 0.9)", () => {
  // t_{0.975, ν} from standard tables (9–10 significant digits)
  const t975: [number, number][] = [
    [1, 12.70620474], [2, 4.302652730], [3, 3.182446305], [4, 2.776445105], [5, 2.570581836], [6, 2.446911851],
    [7, 2.364624252], [8, 2.306004135], [9, 2.262157163], [10, 2.228138852], [15, 2.131449546], [20, 2.085963447],
    [29, 2.045229642], [30, 2.042272456], [100, 1.983971519], [Infinity, 1.959963985],
  ];
  for (const [df, v] of t975) close(studentTQuantile(0.975, df), v, 1e-8, `t_{0.975,${df}}`);
  close(studentTQuantile(0.975, 2), 4.302653, 1e-6, "t_{0.975,2} (issue #13's value)");
  close(studentTQuantile(0.975, 4), 2.776445, 1e-6, "t_{0.975,4} (issue #13's value)");
  close(studentTQuantile(0.995, 2), 9.924843201, 1e-8, "t_{0.995,2}");
  close(studentTQuantile(0.995, 10), 3.169272673, 1e-8, "t_{0.995,10}");
  close(studentTQuantile(0.9, 5), 1.475884049, 1e-8, "t_{0.9,5}");
  close(normalQuantile(0.975), 1.959963985, 1e-9, "z_{0.975}");
  close(normalQuantile(0.999), 3.090232306, 1e-9, "z_{0.999}");
  close(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-13, "ln Γ(½)");
  close(lnGamma(10), Math.log(362880), 1e-13, "ln Γ(10)");
});

test("t quantile: CDF round trip, symmetry, median 0, large df tends to the normal, bad arguments throw", () => {
  for (const df of [1, 2, 3, 4.5, 7, 12, 50, 1000]) {
    for (const p of [1e-6, 0.01, 0.2, 0.6, 0.9, 0.975, 0.999]) {
      const t = studentTQuantile(p, df);
      close(studentTCdf(t, df), p, 1e-10, `CDF(quantile(${p}, ${df}))`);
      close(studentTQuantile(1 - p, df), -t, 1e-9, `symmetry at p=${p}, df=${df}`);
    }
    assert.equal(studentTQuantile(0.5, df), 0);
  }
  close(studentTQuantile(0.975, 1e7), normalQuantile(0.975), 1e-6, "df 1e7 ≈ normal");
  assert.ok(studentTQuantile(0.975, 1e7) > normalQuantile(0.975), "heavier tail than the normal at any finite df");
  assert.throws(() => studentTQuantile(1, 3), /p must be in \(0, 1\)/);
  assert.throws(() => studentTQuantile(0.5, 0), /df must be positive/);
});
