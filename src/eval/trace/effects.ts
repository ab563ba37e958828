/**
 * Average effects over facts (ROME's AIE), by ROME's token-position groups:
 *   first subject token s0 · middle subject tokens s0+1 … s1−2 · last subject token s1−1 ·
 *   first subsequent token s1 · further tokens s1+1 … T−2 · last token T−1.
 * As in ROME's averaging notebook, a one-token subject is both the first and the last subject
 * token, a token right after the subject that ends the prompt is both the first subsequent and
 * the last token, and the two multi-token groups pool their positions over all facts (a mean over
 * (fact, position) pairs). A fact whose group is empty (e.g. no middle subject token) does not
 * count for that group; `count` says how many (fact, position) pairs did.
 *
 * ratio to TE: AIE / ATE (means over facts, not a mean of per-fact ratios).
 * lastOverAll[l] = AIE(residual, last subject token, l) / AIE(residual at all subject tokens, l):
 * how much of what restoring the whole subject recovers the last subject token alone recovers;
 * null where restoring all subject tokens recovers less than 1 % of the ATE (the ratio is then
 * noise over noise — e.g. at the last block, where no later block reads a subject position).
 */
import type { FactTrace, TraceVariant } from "./causalTrace.js";
import { TRACE_VARIANTS } from "./causalTrace.js";

export type PositionGroup = "firstSubject" | "middleSubject" | "lastSubject" | "firstAfter" | "further" | "last";

export const POSITION_GROUPS: readonly PositionGroup[] = ["firstSubject", "middleSubject", "lastSubject", "firstAfter", "further", "last"];

export const GROUP_LABELS: Record<PositionGroup, string> = {
  firstSubject: "First subject token",
  middleSubject: "Middle subject tokens",
  lastSubject: "Last subject token",
  firstAfter: "First subsequent token",
  further: "Further tokens",
  last: "Last token",
};

/** Token positions of each group for a prompt of T tokens with subject [s0, s1). */
export function groupPositions(T: number, s0: number, s1: number): Record<PositionGroup, number[]> {
  const range = (a: number, b: number): number[] => (b > a ? Array.from({ length: b - a }, (_, i) => a + i) : []);
  return {
    firstSubject: [s0],
    middleSubject: range(s0 + 1, s1 - 1),
    lastSubject: [s1 - 1],
    firstAfter: s1 < T ? [s1] : [],
    further: range(s1 + 1, T - 1),
    last: [T - 1],
  };
}

export interface GroupEffect {
  aie: (number | null)[]; // (L) mean IE over (fact, position) pairs; null when the group is empty everywhere
  count: number; // (fact, position) pairs averaged
}

export interface TraceSummary {
  facts: number;
  numLayers: number;
  meanPClean: number;
  meanPCorrupt: number;
  ate: number; // mean TE
  /** aie[variant][group] per block. */
  aie: Record<TraceVariant, Record<PositionGroup, GroupEffect>>;
  /** AIE of restoring the residual at every subject position, per block. */
  subjectAll: number[]; // (L)
  /** AIE(residual, last subject token) / AIE(subjectAll), per block (null where the denominator is 0). */
  lastOverAll: (number | null)[]; // (L)
}

export function summarize(traces: readonly FactTrace[], L: number): TraceSummary {
  const n = traces.length;
  const mean = (f: (t: FactTrace) => number): number => (n === 0 ? NaN : traces.reduce((a, t) => a + f(t), 0) / n);
  const aie = {} as Record<TraceVariant, Record<PositionGroup, GroupEffect>>;
  for (const v of TRACE_VARIANTS) {
    const byGroup = {} as Record<PositionGroup, GroupEffect>;
    for (const g of POSITION_GROUPS) {
      const sum = new Float64Array(L);
      let count = 0;
      for (const t of traces) {
        for (const pos of groupPositions(t.tokens.length, t.subjectRange[0], t.subjectRange[1])[g]) {
          const row = t.ie[v][pos]!;
          for (let l = 0; l < L; l++) sum[l]! += row[l]!;
          count++;
        }
      }
      byGroup[g] = { aie: Array.from(sum, (x) => (count > 0 ? x / count : null)), count };
    }
    aie[v] = byGroup;
  }
  const subjectAll = Array.from({ length: L }, (_, l) => mean((t) => t.subjectAll[l]!));
  const lastRes = aie.residual.lastSubject.aie;
  const ate = mean((t) => t.te);
  const lastOverAll = subjectAll.map((d, l) => (ate > 0 && d >= 0.01 * ate && lastRes[l] !== null ? lastRes[l]! / d : null));
  return {
    facts: n,
    numLayers: L,
    meanPClean: mean((t) => t.pClean),
    meanPCorrupt: mean((t) => t.pCorrupt),
    ate,
    aie,
    subjectAll,
    lastOverAll,
  };
}

/** AIE / ATE per block (null where undefined). */
export function ratioToTe(e: GroupEffect, ate: number): (number | null)[] {
  return e.aie.map((v) => (v === null || ate === 0 || !Number.isFinite(ate) ? null : v / ate));
}
