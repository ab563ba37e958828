/**
 * NoiseFactors from a session directory (edit/session/session.ts): the journal's batch records in
 * order, each batch's factor file read with `loadFactors`, undone batches left out, and the final
 * update of a `finish` record (PRUNE's restraint: dense) counted as a dense step. No model is loaded.
 */
import path from "node:path";
import { Journal, JOURNAL_FILE } from "../edit/session/journal.js";
import { MANIFEST_FILE, readManifest } from "../edit/session/manifest.js";
import { FACTORS_DIR, loadFactors } from "../edit/session/store.js";
import { NoiseFactors } from "./noise.js";

/** Factors of every applied batch of a session, at `layers` (default: all edited layers). Reads and verifies; writes nothing. */
export function noiseFactorsFromSession(dir: string, layers: readonly number[] | null = null): NoiseFactors {
  const manifest = readManifest(path.join(dir, MANIFEST_FILE), { requireModelHash: false }); // no model is loaded here
  const { hidden: C, dFF: F, numLayers } = manifest.model;
  const journal = Journal.read(path.join(dir, JOURNAL_FILE), { repair: false, numLayers });
  const factors = new NoiseFactors(C, F, layers);
  for (const r of journal.records) {
    if (r.kind === "undo" || (r.kind === "batch" && journal.isUndone(r.batch))) continue;
    if (r.factors === null || r.factorsSha256 === null) continue; // every request rejected
    factors.addStep(loadFactors(path.join(dir, FACTORS_DIR, r.factors), r.updates, r.factorsSha256, C, F));
  }
  return factors;
}
