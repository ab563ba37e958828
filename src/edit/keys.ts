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
 * Keys and Cur for every layer of one batch's insertion loop (spec §7.8, exact). The template
 * sentences and the bare prompts are tokenised once. The loop asks for layers in ascending order
 * and changes only the weights of the layer it was just given before asking for the next, so the
 * input of the block last asked for stays valid: each call runs the template rows through blocks
 * l_prev..l only (l_prev = the previous call's layer; blocks below the first layer once, in the
 * constructor), and the bare prompts through l_prev..max(l, l_z) for Cur. Over m consecutive
 * layers that is 2m − 1 block passes of the template rows instead of m·(l_z − l_0 + 1).
 */
export class InsertionInputs {
  private readonly nTemplateRows: number;
  private readonly chunks: { rows: Located[]; start: number; hidden: Float32Array | null; batch: ReturnType<typeof makeBatch>; bare: boolean }[] = [];
  /** The block whose input `hidden` holds (the first block run by the next call). */
  private from: number;

  constructor(
    private readonly model: LanguageModel,
    private readonly requests: readonly EditRequest[],
    private readonly groups: readonly (readonly string[])[],
    private readonly firstLayer: number,
  ) {
    const tok = tokenizerOf(model);
    const templateRows: Located[] = [];
    for (const r of requests) for (const g of groups) for (const c of g) templateRows.push(locateSubject(tok, fillTemplate(c, r.prompt), r.subject, `request ${r.caseId}`));
    const bareRows = requests.map((r) => locateSubject(tok, r.prompt, r.subject, `request ${r.caseId}`));
    this.nTemplateRows = templateRows.length;
    this.from = firstLayer;
    const pad = tok.padTokenId;
    for (const [rowsAll, bare] of [[templateRows, false], [bareRows, true]] as const) {
      for (let s = 0; s < rowsAll.length; s += KEY_CHUNK_ROWS) {
        const rows = rowsAll.slice(s, s + KEY_CHUNK_ROWS);
        const batch = makeBatch(rows.map((c) => c.ids), pad, model.config.vocabSize);
        let hidden: Float32Array | null = null;
        if (firstLayer > 0) hidden = forward(model, batch, { stopAfterLayer: firstLayer - 1, keepHidden: [firstLayer - 1], logits: "none" }).hidden.get(firstLayer - 1)!;
        this.chunks.push({ rows, start: s, hidden, batch, bare });
      }
    }
  }

  /**
   * keys (F, N) at `layer` (template-averaged) and cur (C, N) = block `targetLayer` outputs of the
   * bare prompts. Layers must come in ascending order, and between two calls only the weights of
   * blocks ≥ the previous call's layer may change.
   */
  at(layer: number, targetLayer: number): { keys: Float32Array; cur: Float32Array } {
    if (layer < this.from) throw new DeltaEditError("E_ARG", `InsertionInputs: layer ${layer} is below the cached block ${this.from} (layers must be asked in ascending order)`);
    const F = this.model.arch.dFF;
    const C = this.model.arch.hidden;
    const N = this.requests.length;
    const keyRows = new Float32Array(this.nTemplateRows * F); // (rows, F)
    const cur = new Float32Array(C * N); // (C, N)
    const keep = layer > this.from ? [layer - 1] : [];
    for (const ch of this.chunks) {
      const at: Position[] = ch.rows.map((c, row) => ({ row, pos: c.subjectLast }));
      const opts = ch.hidden ? { startLayer: this.from, startHidden: ch.hidden } : { startLayer: this.from };
      const stop = ch.bare ? Math.max(layer, targetLayer) : layer;
      const res = forward(this.model, ch.batch, { ...opts, stopAfterLayer: stop, keepHidden: keep, taps: ch.bare ? { layers: [targetLayer], at, block: true } : { layers: [layer], at, key: true }, logits: "none" });
      if (ch.bare) {
        const b = res.taps.block.get(targetLayer)!; // (rows, C)
        ch.rows.forEach((_, i) => {
          for (let c = 0; c < C; c++) cur[c * N + ch.start + i] = b[i * C + c]!;
        });
      } else {
        keyRows.set(res.taps.key.get(layer)!, ch.start * F); // (rows, F)
      }
      if (keep.length > 0) ch.hidden = res.hidden.get(layer - 1)!;
    }
    this.from = layer;
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
