/**
 * The analyses of a paper run's final sessions (runPaper.ts stages `overlap`, `representation`,
 * `cases`) and the β sweep's trigger counts. Each reads a finished bench session: its journal and
 * factor files (no model needed), or its final edited model (opened read-only, which replays the
 * journal onto the unedited weights).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { Journal, JOURNAL_FILE } from "../../edit/session/journal.js";
import { MANIFEST_FILE, readManifest } from "../../edit/session/manifest.js";
import { EditSession } from "../../edit/session/session.js";
import { secondMomentFactory } from "../../edit/statsProvider.js";
import { LanguageModel } from "../../model/model.js";
import type { EvalRecord } from "../datasets/record.js";
import { noiseFactorsFromSession } from "../noiseSession.js";
import type { PaperCase, PaperOverlapMethod, PaperRepresentation } from "../report/paperReport.js";
import { generateCases, pickCases } from "./caseStudy.js";
import { overlapStats } from "./overlap.js";
import { lastTokenStates, pca2, projectPca, shiftStats } from "./representation.js";

/** What the analyses need to know about the run. */
export interface FinalInputs {
  modelDir: string; // the unedited model
  hidden: number; // C
  records: readonly EvalRecord[]; // the stream's records, in order
  stream: number;
  checkpoints: readonly number[];
  statsCorpus?: string;
  controlFacts?: string;
  heldOut?: string;
  representationPrompts: number;
  cases: number;
  caseTokens: number;
  log: (m: string) => void;
}

/** A method's finished bench session. */
export interface FinalSession {
  id: string; // the method's id in the run
  method: string; // registry name
  dir: string; // session directory
}

/** Requests the DeltaEdit monitor saw and how many it projected, from a session's journal (undone batches left out). */
export function triggerCounts(dir: string): { requests: number; triggered: number } {
  const manifest = readManifest(path.join(dir, MANIFEST_FILE), { requireModelHash: false });
  const journal = Journal.read(path.join(dir, JOURNAL_FILE), { repair: false, numLayers: manifest.model.numLayers });
  let requests = 0, triggered = 0;
  for (const r of journal.records) {
    if (r.kind !== "batch" || journal.isUndone(r.batch)) continue;
    for (const q of r.outcome?.requests ?? []) {
      requests++;
      if (q.noise?.triggered === true) triggered++;
    }
  }
  return { requests, triggered };
}

/** Activation / overlap statistics at the checkpoints, at the method's last edited layer. */
export function overlapOf(inp: FinalInputs, m: FinalSession, layers: readonly number[] | undefined): PaperOverlapMethod {
  if (layers === undefined || layers.length === 0) return { method: m.id, available: false, reason: "the method does not say which layers it edits", layer: null, points: [] };
  const layer = Math.max(...layers);
  const f = noiseFactorsFromSession(m.dir, [layer]);
  const lf = f.layers().includes(layer) ? f.layer(layer) : null;
  if (lf === null || lf.n === 0) return { method: m.id, available: false, reason: "no influence / activation factors: dense updates (spec §6.5, FT)", layer, points: [] };
  const cps = [...new Set(inp.checkpoints.map((c) => Math.min(c, lf.n)))];
  const note = m.method === "prune" ? "factors of the MEMIT edits before PRUNE's final restraint (spec §6.5)" : lf.approximate ? "decomposition of the unmasked factors: approximate (RECT, spec §6.5)" : undefined;
  return { method: m.id, available: true, layer, points: overlapStats(lf, cps), ...(note !== undefined ? { note } : {}) };
}

/** Unrelated prompts: the control facts' prompts, else held-out sentences (at most `max`). */
function unrelatedPrompts(o: FinalInputs): { source: string; prompts: string[] } | null {
  const max = o.representationPrompts;
  if (o.controlFacts !== undefined) {
    const facts = fs.readFileSync(o.controlFacts, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as { prompt: string; subject: string });
    return { source: `control-fact prompts (${path.basename(o.controlFacts)})`, prompts: facts.slice(0, max).map((f) => f.prompt.replace("{}", f.subject)) };
  }
  if (o.heldOut !== undefined) return { source: `held-out sentences (${path.basename(o.heldOut)})`, prompts: fs.readFileSync(o.heldOut, "utf8").split("\n").filter((l) => l.trim()).slice(0, max) };
  return null;
}

/** The method's last edited layer, from its parameters as the bench recorded them. */
function lastLayer(m: FinalSession): number {
  const dir = m.dir;
  const p = readManifest(path.join(dir, MANIFEST_FILE), { requireModelHash: false }).params as Record<string, unknown>;
  const layers = Array.isArray(p["editLayers"]) ? (p["editLayers"] as number[]) : typeof p["layer"] === "number" ? [p["layer"]] : Array.isArray(p["layers"]) ? (p["layers"] as number[]) : [];
  if (layers.length === 0) throw new DeltaEditError("E_CONFIG", `paper: ${m.id}: cannot tell which layers it edits (${dir}/manifest.json)`);
  return Math.max(...layers);
}

/** The session's final edited model (read access: no lock, nothing written). */
async function openFinal(inp: FinalInputs, dir: string): Promise<EditSession> {
  return EditSession.open(dir, { secondMoments: secondMomentFactory(inp.statsCorpus !== undefined ? { corpus: inp.statsCorpus } : {}, inp.log), access: "read", log: inp.log });
}

/** Representation shift of every session's final model against the unedited model (representation.ts). */
export async function representationOf(inp: FinalInputs, done: readonly FinalSession[], progress: (f: number, d: string) => void): Promise<PaperRepresentation> {
  const src = unrelatedPrompts(inp);
  if (src === null || src.prompts.length < 3) throw new DeltaEditError("E_ARG", "paper: representation shift needs unrelated prompts: give control facts or held-out text (at least 3)");
  const P = src.prompts.length, C = inp.hidden;
  const base = await LanguageModel.load(inp.modelDir);
  const perLayer = new Map<number, { states: Float32Array; pca: ReturnType<typeof pca2>; before: [number, number][] }>();
  const layerOf = new Map(done.map((m) => [m.id, lastLayer(m)]));
  for (const layer of new Set(layerOf.values())) {
    const states = lastTokenStates(base, src.prompts, layer);
    const pca = pca2(states, P, C);
    perLayer.set(layer, { states, pca, before: pairs(projectPca(pca, states, P)) });
  }
  const methods: PaperRepresentation["methods"] = [];
  for (const [k, m] of done.entries()) {
    progress(k / done.length, `representation: ${m.id}`);
    const layer = layerOf.get(m.id)!;
    const b = perLayer.get(layer)!;
    const s = await openFinal(inp, m.dir);
    try {
      const after = lastTokenStates(s.model, src.prompts, layer);
      methods.push({ method: m.id, layer, stats: shiftStats(b.states, after, P, C), after: pairs(projectPca(b.pca, after, P)) });
    } finally {
      s.close();
    }
  }
  return {
    prompts: { source: src.source, count: P },
    layers: [...perLayer.entries()].map(([layer, v]) => ({ layer, variance: v.pca.variance, totalVariance: v.pca.totalVariance, before: v.before })),
    methods,
  };
}

/** (P, 2) coordinates as pairs, rounded to 5 significant digits for the JSON. */
function pairs(xy: Float64Array): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < xy.length / 2; p++) out.push([Number(xy[2 * p]!.toPrecision(5)), Number(xy[2 * p + 1]!.toPrecision(5))]);
  return out;
}

/** Greedy generations for the case-study subjects, unedited and from every session's final model (caseStudy.ts). */
export async function casesOf(inp: FinalInputs, done: readonly FinalSession[], progress: (f: number, d: string) => void): Promise<PaperCase[]> {
  const tokens = inp.caseTokens;
  const picks = pickCases(inp.records, inp.stream, inp.cases);
  const base = await LanguageModel.load(inp.modelDir);
  const unedited = generateCases(base, picks, tokens);
  const out: PaperCase[] = picks.map((c, i) => ({ ...c, unedited: unedited[i]!, methods: {} }));
  for (const [k, m] of done.entries()) {
    progress(k / done.length, `case study: ${m.id}`);
    const s = await openFinal(inp, m.dir);
    try {
      generateCases(s.model, picks, tokens).forEach((g, i) => (out[i]!.methods[m.id] = g));
    } finally {
      s.close();
    }
  }
  return out;
}
