/**
 * Keys K (spec §3.5): the input of the MLP down projection of block l at the subject's last
 * token, averaged over context templates — the mean of the bare prompt ("{}") and the mean of the
 * generated templates, with equal weight per group (MEMIT family), or a flat mean (ROME). Also the
 * bare-prompt block outputs `Cur` (§3.9 step 2).
 *
 * Layouts: keys (F, N) row-major — column j is request j; cur (C, N) likewise.
 */
import { DeltaEditError } from "../errors.js";
import { makeBatch, type Position } from "../model/batch.js";
import { forward } from "../model/forward.js";
import type { LanguageModel } from "../model/model.js";
import type { EditRequest } from "./request.js";
import { fillTemplate, locateSubject } from "./subject.js";

/** Sentences are run in chunks of this many rows (as the reference). */
export const KEY_CHUNK_ROWS = 128;

interface Located {
  ids: number[];
  subjectLast: number;
}

function tokenizerOf(model: LanguageModel) {
  if (!model.tokenizer) throw new DeltaEditError("E_TOKENIZER", "computing keys needs the model's tokenizer");
  return model.tokenizer;
}

/** Read `what` ("key" (F) or "block" (C)) at layer l for each located sentence. Returns (rows, W). */
function tapRows(model: LanguageModel, sents: Located[], layer: number, what: "key" | "block"): Float32Array {
  const W = what === "key" ? model.arch.dFF : model.arch.hidden;
  const out = new Float32Array(sents.length * W);
  const pad = tokenizerOf(model).padTokenId;
  for (let s = 0; s < sents.length; s += KEY_CHUNK_ROWS) {
    const chunk = sents.slice(s, s + KEY_CHUNK_ROWS);
    const batch = makeBatch(chunk.map((c) => c.ids), pad, model.config.vocabSize);
    const at: Position[] = chunk.map((c, row) => ({ row, pos: c.subjectLast }));
    const res = forward(model, batch, { stopAfterLayer: layer, taps: { layers: [layer], at, key: what === "key", block: what === "block" }, logits: "none" });
    out.set((what === "key" ? res.taps.key : res.taps.block).get(layer)!, s * W);
  }
  return out;
}

/**
 * Template-averaged keys at layer l: (F, N). `groups` are template groups (each template has one "{}"
 * for the prompt); the key of request j is the mean over groups of the group mean.
 */
export function computeKeys(model: LanguageModel, requests: readonly EditRequest[], layer: number, groups: readonly (readonly string[])[]): Float32Array {
  const tok = tokenizerOf(model);
  const F = model.arch.dFF;
  const N = requests.length;
  const sents: Located[] = [];
  for (const r of requests) {
    for (const g of groups) {
      for (const c of g) {
        const loc = locateSubject(tok, fillTemplate(c, r.prompt), r.subject, `request ${r.caseId}`);
        sents.push(loc);
      }
    }
  }
  const rows = tapRows(model, sents, layer, "key"); // (N·Σ|g|, F)
  const keys = new Float32Array(F * N); // (F, N)
  let row = 0;
  const acc = new Float64Array(F);
  for (let j = 0; j < N; j++) {
    acc.fill(0);
    for (const g of groups) {
      const w = 1 / (g.length * groups.length);
      for (let t = 0; t < g.length; t++, row++) {
        const o = row * F;
        for (let f = 0; f < F; f++) acc[f]! += w * rows[o + f]!;
      }
    }
    for (let f = 0; f < F; f++) keys[f * N + j] = acc[f]!;
  }
  return keys;
}

/** Keys of the bare prompts (no template) at layer l: (F, N). */
export function bareKeys(model: LanguageModel, requests: readonly EditRequest[], layer: number): Float32Array {
  return computeKeys(model, requests, layer, [["{}"]]);
}

/** Block-l outputs at the subject's last token of each bare prompt: Cur (C, N). */
export function bareBlockOutputs(model: LanguageModel, requests: readonly EditRequest[], layer: number): Float32Array {
  const tok = tokenizerOf(model);
  const C = model.arch.hidden;
  const N = requests.length;
  const sents = requests.map((r) => locateSubject(tok, r.prompt, r.subject, `request ${r.caseId}`));
  const rows = tapRows(model, sents, layer, "block"); // (N, C)
  const cur = new Float32Array(C * N);
  for (let j = 0; j < N; j++) for (let c = 0; c < C; c++) cur[c * N + j] = rows[j * C + c]!;
  return cur;
}

/** Column j of a (rows, N) row-major matrix. */
export function column(m: Float32Array, rows: number, n: number, j: number): Float32Array {
  const out = new Float32Array(rows);
  for (let i = 0; i < rows; i++) out[i] = m[i * n + j]!;
  return out;
}

/**
 * Keys and Cur for every layer of one batch's insertion loop (spec §7.8, exact): the template
 * sentences and the bare prompts are tokenised once and run together; blocks below the first
 * edited layer never change during a batch, so their output is computed once and each layer's pass
 * starts from it, running only blocks l_0..max(l, l_z).
 */
export class InsertionInputs {
  private readonly located: Located[]; // template rows (N·Σ|g|), then bare rows (N)
  private readonly chunks: { rows: Located[]; start: number; hidden: Float32Array | null; batch: ReturnType<typeof makeBatch> }[] = [];

  constructor(
    private readonly model: LanguageModel,
    private readonly requests: readonly EditRequest[],
    private readonly groups: readonly (readonly string[])[],
    private readonly firstLayer: number,
  ) {
    const tok = tokenizerOf(model);
    this.located = [];
    for (const r of requests) for (const g of groups) for (const c of g) this.located.push(locateSubject(tok, fillTemplate(c, r.prompt), r.subject, `request ${r.caseId}`));
    for (const r of requests) this.located.push(locateSubject(tok, r.prompt, r.subject, `request ${r.caseId}`));
    const pad = tok.padTokenId;
    for (let s = 0; s < this.located.length; s += KEY_CHUNK_ROWS) {
      const rows = this.located.slice(s, s + KEY_CHUNK_ROWS);
      const batch = makeBatch(rows.map((c) => c.ids), pad, model.config.vocabSize);
      let hidden: Float32Array | null = null;
      if (firstLayer > 0) hidden = forward(model, batch, { stopAfterLayer: firstLayer - 1, keepHidden: [firstLayer - 1], logits: "none" }).hidden.get(firstLayer - 1)!;
      this.chunks.push({ rows, start: s, hidden, batch });
    }
  }

  /** keys (F, N) at `layer` (template-averaged) and cur (C, N) = block `targetLayer` outputs of the bare prompts. */
  at(layer: number, targetLayer: number): { keys: Float32Array; cur: Float32Array } {
    if (layer < this.firstLayer) throw new DeltaEditError("E_ARG", `InsertionInputs: layer ${layer} is below the cached first layer ${this.firstLayer}`);
    const F = this.model.arch.dFF;
    const C = this.model.arch.hidden;
    const N = this.requests.length;
    const nTemplateRows = this.located.length - N;
    const keyRows = new Float32Array(nTemplateRows * F); // (rows, F)
    const cur = new Float32Array(C * N); // (C, N)
    const stop = Math.max(layer, targetLayer);
    for (const ch of this.chunks) {
      const at: Position[] = ch.rows.map((c, row) => ({ row, pos: c.subjectLast }));
      const opts = ch.hidden ? { startLayer: this.firstLayer, startHidden: ch.hidden } : {};
      const res = forward(this.model, ch.batch, { ...opts, stopAfterLayer: stop, taps: { layers: layer === targetLayer ? [layer] : [layer, targetLayer], at, key: true, block: true }, logits: "none" });
      const k = res.taps.key.get(layer)!; // (rows, F)
      const b = res.taps.block.get(targetLayer)!; // (rows, C)
      ch.rows.forEach((_, i) => {
        const g = ch.start + i; // global row
        if (g < nTemplateRows) keyRows.set(k.subarray(i * F, (i + 1) * F), g * F);
        else for (let c = 0; c < C; c++) cur[c * N + (g - nTemplateRows)] = b[i * C + c]!;
      });
    }
    const keys = new Float32Array(F * N); // (F, N)
    const acc = new Float64Array(F);
    let row = 0;
    for (let j = 0; j < N; j++) {
      acc.fill(0);
      for (const g of this.groups) {
        const w = 1 / (g.length * this.groups.length);
        for (let t = 0; t < g.length; t++, row++) for (let f = 0; f < F; f++) acc[f]! += w * keyRows[row * F + f]!;
      }
      for (let f = 0; f < F; f++) keys[f * N + j] = acc[f]!;
    }
    return { keys, cur };
  }
}
