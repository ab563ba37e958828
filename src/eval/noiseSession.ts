/**
 * NoiseFactors from a session directory (edit/session/session.ts): the journal's batch records in
 * order, each batch's factor file read with `loadFactors`, undone batches left out, and the final
 * update of a `finish` record (PRUNE's restraint: dense) counted as a dense step. No model is loaded.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { loadFactors, readJournal, type UpdateMeta } from "../edit/session/store.js";
import { NoiseFactors } from "./noise.js";

/** The fields of session.ts's journal records and manifest that are read here. */
interface JournalEntry {
  kind: "batch" | "undo" | "finish";
  seq?: number;
  updates?: UpdateMeta[];
  factors?: string | null;
}

interface ManifestModel {
  model?: { hidden?: number; dFF?: number };
}

/** Factors of every applied batch of a session, at `layers` (default: all edited layers). */
export function noiseFactorsFromSession(dir: string, layers: readonly number[] | null = null): NoiseFactors {
  const mfile = path.join(dir, "manifest.json");
  if (!fs.existsSync(mfile)) throw new DeltaEditError("E_SESSION", `${dir}: no manifest.json (not a session directory)`);
  const manifest = JSON.parse(fs.readFileSync(mfile, "utf8")) as ManifestModel;
  const C = manifest.model?.hidden, F = manifest.model?.dFF;
  if (!Number.isInteger(C) || !Number.isInteger(F)) throw new DeltaEditError("E_SESSION", `${mfile}: model.hidden and model.dFF must be integers`);
  const journal = readJournal<JournalEntry>(path.join(dir, "journal.jsonl"), false);
  const undone = new Set(journal.filter((r) => r.kind === "undo").map((r) => r.seq));
  const factors = new NoiseFactors(C!, F!, layers);
  for (const r of journal) {
    if (r.kind === "undo" || (r.kind === "batch" && undone.has(r.seq))) continue;
    if (r.factors === null || r.factors === undefined || r.updates === undefined) continue; // every request rejected
    factors.addStep(loadFactors(path.join(dir, r.factors), r.updates));
  }
  return factors;
}
