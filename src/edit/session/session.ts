/**
 * EditSession: a sequential edit run that never loses an edit. It owns every piece of state that
 * persists across edits (the method instance with its projectors, solver factors and noise
 * statistics; context templates; RNG state; stream position) and keeps it durable in a directory:
 *
 *   manifest.json            model identity + hash, method, resolved hyperparameters, preset, seed,
 *                            threads, code version, context templates, initial RNG state
 *   journal.jsonl            append-only, one record per batch (requests, rejections, per-request
 *                            reports incl. noise statistics and projection triggers, layer norms and
 *                            residuals, timings, RNG state after the batch, stream position), and undo records
 *   factors/NNNNNN.safetensors  the factors of every update of that batch (keys, influence, activation,
 *                            or the dense applied update)
 *
 * Commit protocol per batch: the factors file is written atomically, then the journal record is
 * appended and fsynced — the record is the commit point. After `kill -9` at any moment, `open()`
 * rebuilds the state by replaying the journal onto the original weights (the same float32
 * operations in the same order), so a resumed run ends bit-identical to an uninterrupted one with
 * the same thread count. Undo subtracts a batch's recorded update (this is not the same as never
 * having applied it before the later edits, which were computed on the edited model).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { LanguageModel } from "../../model/model.js";
import { Rng } from "../../util/rng.js";
import { createMethod } from "../methods/registry.js";
import type { BatchOutcome, EditContext, EditMethod, LayerUpdate, MethodName } from "../methods/method.js";
import { presetFor } from "../presets.js";
import type { EditRequest, Rejection } from "../request.js";
import { locateSubject } from "../subject.js";
import { checkRequestFits } from "../requestLimits.js";
import { generateContextTemplates, type ContextTemplates } from "../templates.js";
import { applyLayerUpdate } from "../update.js";
import { appendJournal, loadFactors, readJournal, saveFactors, writeJsonAtomic, type UpdateMeta } from "./store.js";

export const SESSION_FORMAT = "deltaedit-session";
export const SESSION_VERSION = 1;

export interface Manifest {
  format: typeof SESSION_FORMAT;
  version: number;
  codeVersion: string;
  created: string;
  model: { source: string; hash: string; modelType: string; numLayers: number; hidden: number; dFF: number };
  method: MethodName;
  preset: string;
  overrides: Record<string, unknown>;
  params: Record<string, unknown>;
  batchSize: number;
  seed: number;
  threads: number;
  templates: ContextTemplates;
  rngStateAfterTemplates: number[];
  stats: Record<string, unknown>;
}

export interface BatchRecord {
  kind: "batch";
  seq: number; // 1-based batch number (what `undo --edit N` refers to)
  requests: { caseId: string; index: number; subject: string; prompt: string; targetNew: string }[];
  rejected: Rejection[];
  outcome: Omit<BatchOutcome, "updates"> | null;
  updates: UpdateMeta[];
  factors: string | null; // relative path
  rngState: number[];
  nextIndex: number; // stream position after this batch
  time: string;
}

export interface UndoRecord {
  kind: "undo";
  seq: number; // the batch undone
  time: string;
}

export interface FinishRecord {
  kind: "finish";
  updates: UpdateMeta[];
  factors: string | null;
  time: string;
}

export type JournalRecord = BatchRecord | UndoRecord | FinishRecord;

export interface SessionOptions {
  dir: string;
  modelSource: string;
  method: MethodName;
  preset?: string;
  overrides?: Record<string, unknown>;
  batchSize?: number;
  seed?: number;
  threads?: number;
  codeVersion: string;
  /** C0 per layer (F, F) from the unedited model, prepared before any edit; provenance goes to the manifest. */
  secondMoments: SecondMomentFactory;
  templates?: ContextTemplates;
  log?: (msg: string) => void;
}

export type SecondMomentFactory = (model: LanguageModel, layers: readonly number[]) => Promise<{ get(layer: number): Float32Array; provenance: Record<string, unknown> }>;

/** Layers whose second moment a method needs (MEMIT family: the edited layers; ROME with C0⁻¹: its layer). */
export function statsLayers(method: EditMethod): number[] {
  const p = method.params as Record<string, unknown>;
  if (Array.isArray(p["editLayers"])) return p["editLayers"] as number[];
  if (typeof p["layer"] === "number" && p["mom2Adjustment"] === true) return [p["layer"]];
  return [];
}

export interface OpenOptions {
  secondMoments: SecondMomentFactory;
  log?: (msg: string) => void;
  /** Load the model from here instead of manifest.model.source (its hash must match). */
  modelSource?: string;
}

export interface BatchProgress {
  seq: number;
  done: number; // requests consumed so far (stream position)
  total: number;
  record: BatchRecord;
}

export class EditSession {
  private rng: Rng;
  private nextIndex: number;
  private seq: number;
  private finished: boolean;
  readonly ctx: EditContext;

  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly model: LanguageModel,
    readonly method: EditMethod,
    readonly journal: JournalRecord[],
    secondMoment: (layer: number) => Float32Array,
    private readonly log: (msg: string) => void,
  ) {
    const last = [...journal].reverse().find((r): r is BatchRecord => r.kind === "batch");
    this.rng = Rng.fromState(last ? last.rngState : manifest.rngStateAfterTemplates);
    this.nextIndex = last ? last.nextIndex : 0;
    this.seq = last ? last.seq : 0;
    this.finished = journal.some((r) => r.kind === "finish");
    const self = this;
    this.ctx = {
      model,
      templates: manifest.templates,
      secondMoment,
      get rng() {
        return self.rng;
      },
      log,
    };
  }

  /** Start a new session in an empty (or non-existent) directory. */
  static async create(o: SessionOptions): Promise<EditSession> {
    const log = o.log ?? (() => {});
    if (fs.existsSync(path.join(o.dir, "manifest.json"))) {
      throw new DeltaEditError("E_SESSION", `${o.dir} already holds a session`, { hint: "use --resume to continue it, or choose another --session directory" });
    }
    fs.mkdirSync(path.join(o.dir, "factors"), { recursive: true });
    if (o.threads) ops.setThreads(o.threads);
    const model = await LanguageModel.load(o.modelSource, { log });
    const preset = presetFor(model.config, o.preset);
    const overrides = { ...(preset.methods[o.method] ?? {}), ...(o.overrides ?? {}) };
    const method = createMethod(o.method, overrides, model.config.numLayers);
    const seed = o.seed ?? 0;
    const moments = await o.secondMoments(model, statsLayers(method));
    const rng = new Rng(seed);
    const templates = o.templates ?? generateContextTemplates(model, rng);
    const manifest: Manifest = {
      format: SESSION_FORMAT,
      version: SESSION_VERSION,
      codeVersion: o.codeVersion,
      created: new Date().toISOString(),
      model: { source: o.modelSource, hash: model.identity?.hash ?? "", modelType: model.config.modelType, numLayers: model.config.numLayers, hidden: model.config.hiddenSize, dFF: model.config.intermediateSize },
      method: o.method,
      preset: preset.name,
      overrides,
      params: { ...method.params } as Record<string, unknown>,
      batchSize: o.batchSize ?? 1,
      seed,
      threads: ops.getThreads(),
      templates,
      rngStateAfterTemplates: rng.state(),
      stats: moments.provenance,
    };
    writeJsonAtomic(path.join(o.dir, "manifest.json"), manifest);
    log(`session ${o.dir}: ${o.method} on ${model.config.modelType} (${model.config.numLayers} blocks), preset ${preset.name}`);
    return new EditSession(o.dir, manifest, model, method, [], (l) => moments.get(l), log);
  }

  /** Reopen a session: reload the original model and replay the journal (resume). */
  static async open(dir: string, o: OpenOptions): Promise<EditSession> {
    const log = o.log ?? (() => {});
    const mfile = path.join(dir, "manifest.json");
    if (!fs.existsSync(mfile)) throw new DeltaEditError("E_SESSION", `${dir}: no manifest.json (not a session directory)`);
    const manifest = JSON.parse(fs.readFileSync(mfile, "utf8")) as Manifest;
    if (manifest.format !== SESSION_FORMAT || manifest.version !== SESSION_VERSION) throw new DeltaEditError("E_SESSION", `${mfile}: unsupported session format ${manifest.format} v${manifest.version}`);
    if (manifest.threads !== ops.getThreads()) {
      log(`note: the session was run with ${manifest.threads} threads; using ${manifest.threads} again for bit-identical results`);
      ops.setThreads(manifest.threads);
    }
    const model = await LanguageModel.load(o.modelSource ?? manifest.model.source, { log });
    if (model.identity && manifest.model.hash && model.identity.hash !== manifest.model.hash) {
      throw new DeltaEditError("E_SESSION", `the model at ${o.modelSource ?? manifest.model.source} is not the one this session was started with (hash ${model.identity.hash.slice(0, 12)} ≠ ${manifest.model.hash.slice(0, 12)})`);
    }
    const method = createMethod(manifest.method, manifest.overrides, model.config.numLayers);
    const moments = await o.secondMoments(model, statsLayers(method));
    const journal = readJournal<JournalRecord>(path.join(dir, "journal.jsonl"), true);
    const s = new EditSession(dir, manifest, model, method, journal, (l) => moments.get(l), log);
    s.replayAll();
    return s;
  }

  private replayAll(): void {
    const C = this.model.arch.hidden;
    const F = this.model.arch.dFF;
    const bySeq = new Map<number, BatchRecord>();
    let n = 0;
    for (const r of this.journal) {
      if (r.kind === "batch") {
        bySeq.set(r.seq, r);
        if (!r.factors || !r.outcome) continue;
        const updates = loadFactors(path.join(this.dir, r.factors), r.updates);
        // the method replays its state first (PRUNE snapshots W0 from the weights before batch 1), then the weights
        this.method.replay(this.ctx, { ...r.outcome, updates });
        for (const u of updates) applyLayerUpdate(this.model, u);
        n++;
      } else if (r.kind === "undo") {
        const b = bySeq.get(r.seq);
        if (!b?.factors) continue;
        for (const u of loadFactors(path.join(this.dir, b.factors), b.updates).reverse()) applyLayerUpdate(this.model, u, -1);
      } else if (r.kind === "finish" && r.factors) {
        for (const u of loadFactors(path.join(this.dir, r.factors), r.updates)) applyLayerUpdate(this.model, u);
      }
    }
    if (n > 0) this.log(`resumed: replayed ${n} batches (${this.nextIndex} requests consumed) onto the original weights (C ${C}, F ${F})`);
  }

  get position(): number {
    return this.nextIndex;
  }

  get batchesApplied(): number {
    return this.seq;
  }

  /** Cheap checks with the model's tokenizer before a request enters a batch. */
  private precheck(r: EditRequest): Rejection | null {
    const tok = this.model.tokenizer;
    if (!tok) return null;
    try {
      locateSubject(tok, r.prompt, r.subject, `request ${r.caseId}`);
      locateSubject(tok, "{} is a", r.subject, `request ${r.caseId}`);
      checkRequestFits(tok, r, [...this.manifest.templates.memit.flat(), ...this.manifest.templates.rome], this.model.config.maxPositions);
      const t = tok.encode(r.targetNew.startsWith(" ") ? r.targetNew : " " + r.targetNew, { addSpecialTokens: false });
      if (t.length === 0) throw new DeltaEditError("E_REQUEST", `request ${r.caseId}: field "target_new" tokenizes to no tokens`, { context: { field: "target_new" } });
      return null;
    } catch (e) {
      if (!(e instanceof DeltaEditError) || e.code !== "E_REQUEST") throw e;
      return { caseId: r.caseId, index: r.index, field: String(e.context["field"] ?? "request"), message: e.message };
    }
  }

  /**
   * Apply the stream from the session's position on, one batch at a time. `requests` is the whole
   * stream (requests are identified by `index`); parse-time rejections are passed in `rejected`.
   */
  run(requests: readonly EditRequest[], opts: { rejected?: readonly Rejection[]; limit?: number; onBatch?: (p: BatchProgress) => void } = {}): { applied: number; rejected: number } {
    if (this.finished) throw new DeltaEditError("E_SESSION", `${this.dir}: the session is finished (a final restraint step was applied); start a new session to edit further`);
    const total = Math.max(requests.length === 0 ? 0 : requests[requests.length - 1]!.index + 1, ...(opts.rejected ?? []).map((r) => r.index + 1));
    const parseRejections = new Map((opts.rejected ?? []).map((r) => [r.index, r]));
    const pending = requests.filter((r) => r.index >= this.nextIndex).sort((a, b) => a.index - b.index);
    const stopAt = opts.limit !== undefined ? Math.min(total, opts.limit) : total;
    let applied = 0;
    let rejectedCount = 0;
    let cursor = 0;
    while (this.nextIndex < stopAt) {
      const batch: EditRequest[] = [];
      const rejected: Rejection[] = [];
      let pos = this.nextIndex;
      while (batch.length < this.manifest.batchSize && pos < stopAt) {
        const pr = parseRejections.get(pos);
        if (pr) rejected.push(pr);
        while (cursor < pending.length && pending[cursor]!.index < pos) cursor++;
        const r = pending[cursor];
        if (r && r.index === pos) {
          const rej = this.precheck(r);
          if (rej) rejected.push(rej);
          else batch.push(r);
        }
        pos++;
      }
      const record = this.applyBatch(batch, rejected, pos);
      applied += record.requests.length;
      rejectedCount += record.rejected.length;
      opts.onBatch?.({ seq: record.seq, done: this.nextIndex, total: stopAt, record });
    }
    return { applied, rejected: rejectedCount };
  }

  private applyBatch(batch: EditRequest[], rejected: Rejection[], nextIndex: number): BatchRecord {
    const C = this.model.arch.hidden;
    const F = this.model.arch.dFF;
    let outcome: BatchOutcome | null = null;
    let accepted = batch;
    const rngBefore = this.rng.state();
    while (accepted.length > 0) {
      try {
        outcome = this.method.applyBatch(this.ctx, accepted);
        break;
      } catch (e) {
        // a request that cannot be edited is rejected and recorded; the batch is retried without it
        if (!(e instanceof DeltaEditError) || e.code !== "E_REQUEST") throw e;
        const idx = accepted.findIndex((r) => e.message.includes(`request ${r.caseId}`));
        const bad = idx >= 0 ? accepted[idx]! : accepted[0]!;
        rejected.push({ caseId: bad.caseId, index: bad.index, field: String(e.context["field"] ?? "request"), message: e.message });
        accepted = accepted.filter((r) => r !== bad);
        this.rng = Rng.fromState(rngBefore);
      }
    }
    const seq = this.seq + 1;
    let factors: string | null = null;
    let metas: UpdateMeta[] = [];
    if (outcome) {
      factors = path.join("factors", `${String(seq).padStart(6, "0")}.safetensors`);
      metas = saveFactors(path.join(this.dir, factors), outcome.updates, C, F);
    }
    const { updates: _u, ...rest } = outcome ?? { updates: [] };
    const record: BatchRecord = {
      kind: "batch",
      seq,
      requests: accepted.map((r) => ({ caseId: r.caseId, index: r.index, subject: r.subject, prompt: r.prompt, targetNew: r.targetNew })),
      rejected,
      outcome: outcome ? (rest as Omit<BatchOutcome, "updates">) : null,
      updates: metas,
      factors,
      rngState: this.rng.state(),
      nextIndex,
      time: new Date().toISOString(),
    };
    appendJournal(path.join(this.dir, "journal.jsonl"), record);
    this.journal.push(record);
    this.seq = seq;
    this.nextIndex = nextIndex;
    return record;
  }

  /** Subtract batch `seq`'s recorded update (1-based batch number). */
  undo(seq: number): void {
    const rec = this.journal.find((r): r is BatchRecord => r.kind === "batch" && r.seq === seq);
    if (!rec) throw new DeltaEditError("E_SESSION", `${this.dir}: no batch ${seq} in the journal (batches 1..${this.seq})`);
    if (this.journal.some((r) => r.kind === "undo" && r.seq === seq)) throw new DeltaEditError("E_SESSION", `${this.dir}: batch ${seq} was already undone`);
    if (!rec.factors) throw new DeltaEditError("E_SESSION", `${this.dir}: batch ${seq} applied no update (all its requests were rejected)`);
    const updates = loadFactors(path.join(this.dir, rec.factors), rec.updates);
    for (const u of [...updates].reverse()) applyLayerUpdate(this.model, u, -1);
    const record: UndoRecord = { kind: "undo", seq, time: new Date().toISOString() };
    appendJournal(path.join(this.dir, "journal.jsonl"), record);
    this.journal.push(record);
  }

  /** The method's final step, if any (PRUNE's restraint), recorded like a batch. */
  finish(): LayerUpdate[] {
    if (this.finished || !this.method.finish) return [];
    const res = this.method.finish(this.ctx);
    const updates = res === null ? [] : Array.isArray(res) ? res : [res];
    let factors: string | null = null;
    let metas: UpdateMeta[] = [];
    if (updates.length > 0) {
      factors = path.join("factors", "finish.safetensors");
      metas = saveFactors(path.join(this.dir, factors), updates, this.model.arch.hidden, this.model.arch.dFF);
    }
    const record: FinishRecord = { kind: "finish", updates: metas, factors, time: new Date().toISOString() };
    appendJournal(path.join(this.dir, "journal.jsonl"), record);
    this.journal.push(record);
    this.finished = true;
    return updates;
  }

  /** Per edited layer, the accumulated update ΔW = W − W0 (C, F) out × in, from the journal's factors. */
  accumulatedUpdates(): Map<number, Float32Array> {
    const C = this.model.arch.hidden;
    const F = this.model.arch.dFF;
    const acc = new Map<number, Float32Array>();
    const add = (u: LayerUpdate, sign: 1 | -1): void => {
      let d = acc.get(u.layer);
      if (!d) acc.set(u.layer, (d = new Float32Array(C * F)));
      if (u.dense) for (let i = 0; i < d.length; i++) d[i]! += sign * u.dense[i]!;
      else if (u.influence && u.activation) ops.gemm(u.influence, u.activation, d, { m: C, n: F, k: u.n, transB: true, alpha: sign, beta: 1 });
    };
    const bySeq = new Map<number, BatchRecord>();
    for (const r of this.journal) {
      if (r.kind === "batch") {
        bySeq.set(r.seq, r);
        if (r.factors) for (const u of loadFactors(path.join(this.dir, r.factors), r.updates)) add(u, 1);
      } else if (r.kind === "undo") {
        const b = bySeq.get(r.seq);
        if (b?.factors) for (const u of loadFactors(path.join(this.dir, b.factors), b.updates)) add(u, -1);
      } else if (r.factors) for (const u of loadFactors(path.join(this.dir, r.factors), r.updates)) add(u, 1);
    }
    return acc;
  }
}
