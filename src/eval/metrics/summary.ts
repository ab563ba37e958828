/**
 * One entry point for run summaries: CounterFact/MCF results (§3.4) or ZsRE results (§4),
 * recognised by their fields (a ZsRE result carries `route`). Every summary names its modes.
 */
import { DeltaEditError } from "../../errors.js";
import type { Prefix } from "./aggregate.js";
import { summarizeCounterfact, type CounterfactCaseResult, type CounterfactSummary } from "./counterfact.js";
import { summarizeZsre, type ZsreCaseResult, type ZsreSummary } from "./zsre.js";

/** A per-case result: CounterFact or ZsRE. */
export type CaseResult = CounterfactCaseResult | ZsreCaseResult;

function isZsre(r: CaseResult): r is ZsreCaseResult {
  return "route" in r;
}

/** Summarise case results (CounterFact §3.4 or ZsRE §4, recognised by their fields). */
export function summarize(results: readonly CaseResult[], opts: { prefix?: Prefix } = {}): CounterfactSummary | ZsreSummary {
  const z = results.filter(isZsre);
  if (z.length > 0 && z.length < results.length) throw new DeltaEditError("E_ARG", `summarize: results mix ZsRE (${z.length}) and CounterFact (${results.length - z.length}) cases`);
  return z.length > 0 ? summarizeZsre(z, opts) : summarizeCounterfact(results as readonly CounterfactCaseResult[], opts);
}
