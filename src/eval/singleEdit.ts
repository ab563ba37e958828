/**
 * Single edits from the unedited model (the ROME / MEMIT papers' "single edit" evaluation): a fresh
 * method instance applies one request to the model, the edited model is scored, and every parameter
 * of the edited blocks is restored exactly (copied back, not subtracted), so each request starts
 * from the same weights and the same method state.
 */
import { DeltaEditError } from "../errors.js";
import type { EditContext, EditMethod } from "../edit/methods/method.js";
import { createMethod } from "../edit/methods/registry.js";
import type { EditRequest } from "../edit/request.js";
import type { EditSession } from "../edit/session/session.js";
import type { LanguageModel } from "../model/model.js";
import { Rng } from "../util/rng.js";

/** Blocks a method's parameters say it edits (MEMIT family: editLayers; ROME: layer; FT: layers); undefined when they do not say. */
export function editedBlocks(method: EditMethod): number[] | undefined {
  const p = method.params as Record<string, unknown>;
  if (Array.isArray(p["editLayers"])) return p["editLayers"] as number[];
  if (typeof p["layer"] === "number") return [p["layer"]];
  if (Array.isArray(p["layers"])) return p["layers"] as number[];
  return undefined;
}

export interface SingleEditResult<T> {
  result: T | null; // null when the request was rejected
  rejected: string | null; // the rejection message
  seconds: number; // the edit step
}

/**
 * Edit `req` into `session.model` with a fresh instance of the session's method (same preset,
 * overrides, templates and statistics), run `score` on the edited model, then restore the weights.
 * `seed` seeds the method's randomness for this request.
 */
export function singleEdit<T>(session: EditSession, req: EditRequest, seed: number, score: (model: LanguageModel) => T): SingleEditResult<T> {
  const model = session.model;
  const method = createMethod(session.manifest.method, session.manifest.overrides, model.config.numLayers);
  const edited = editedBlocks(method);
  if (!edited) throw new DeltaEditError("E_CONFIG", `${method.name}: cannot tell which blocks it edits`);
  const blocks = new Set(edited);
  // snapshot of every parameter of the edited blocks: (name → copy)
  const snapshot = new Map<string, Float32Array>();
  for (const spec of model.params.specs) if (spec.layer !== null && blocks.has(spec.layer)) snapshot.set(spec.name, model.params.get(spec.name).slice());
  const ctx: EditContext = { model, templates: session.manifest.templates, secondMoment: (l) => session.ctx.secondMoment(l), rng: new Rng(seed), log: () => {} };
  try {
    const t0 = performance.now();
    try {
      method.applyBatch(ctx, [req]);
    } catch (e) {
      if (e instanceof DeltaEditError && e.code === "E_REQUEST") return { result: null, rejected: e.message, seconds: 0 };
      throw e;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { result: score(model), rejected: null, seconds };
  } finally {
    for (const [name, w] of snapshot) model.params.get(name).set(w);
  }
}
