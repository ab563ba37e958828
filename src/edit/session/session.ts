/**
 * EditSession: a sequential edit run that never loses an edit. It owns every piece of state that
 * persists across edits (the method instance with its projectors, solver factors and noise
 * statistics; context templates; RNG state; stream position) and keeps it durable in a directory:
 *
 *   manifest.json            model source + content hash, method, resolved hyperparameters, preset,
 *                            seed, threads, code version, context templates, initial RNG state
 *                            (sealed with a checksum; manifest.ts)
 *   journal.jsonl            append-only, one record per batch (requests, rejections, per-request
 *                            reports incl. noise statistics and projection triggers, layer norms and
 *                            residuals, timings, RNG state after the batch, stream position), undo and
 *                            finish records; each with a sequence number and a checksum (journal.ts)
 *   factors/NNNNNN.safetensors  the factors of every update of that batch (keys, influence, activation,
 *                            or the dense applied update); their sha256 is in the journal (store.ts)
 *   session.lock             the writer lock while an edit, undo or export runs (lock.ts)
 *
 * Commit protocol per batch: the factors file is written atomically, then the journal record is
 * appended and fsynced — the record is the commit point. After `kill -9` at any moment, `open()`
 * rebuilds the state by replaying the verified journal onto the original weights (the same float32
 * operations in the same order), so a resumed run ends bit-identical to an uninterrupted one with
 * the same thread count. Undo subtracts a batch's recorded update (this is not the same as never
 * having applied it before the later edits, which were computed on the edited model).
 *
 * Access: `create` and `open(…, { access: "write" })` take the session's writer lock (released by
 * `close()`, and on every error of create/open); `open` with the default `access: "read"` takes no
 * lock, never modifies the directory, and refuses run/undo/finish.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { LanguageModel } from "../../model/model.js";
import { removeStaleTemporaries } from "../../util/fsio.js";
import { Rng } from "../../util/rng.js";
import { createMethod } from "../methods/registry.js";
import { methodDisplayName, type BatchOutcome, type EditContext, type EditMethod, type LayerUpdate, type MethodName } from "../methods/method.js";
import { presetFor } from "../presets.js";
import type { EditRequest, Rejection } from "../request.js";
import { locateSubject } from "../subject.js";
import { checkRequestFits } from "../requestLimits.js";
import { generateContextTemplates, type ContextTemplates } from "../templates.js";
import { applyLayerUpdate } from "../update.js";
import { Journal, JOURNAL_FILE, type BatchRecord, type JournalRecord, type NewRecord } from "./journal.js";
import { SessionLock } from "./lock.js";
import { MANIFEST_FILE, readManifest, SESSION_FORMAT, SESSION_VERSION, writeManifest, type Manifest } from "./manifest.js";
import { MODEL_HASH_KIND, modelContentHash } from "./modelhash.js";
import { FACTORS_DIR, loadFactors, saveFactors, type UpdateMeta } from "./store.js";

export { SESSION_FORMAT, SESSION_VERSION, type Manifest } from "./manifest.js";
export type { BatchRecord, FinishRecord, JournalRecord, UndoRecord } from "./journal.js";

export interface SessionOptions {
  dir: string;
  /** Model directory (recorded as an absolute path) or Hub repo id. */
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
  /** Recorded in the lock file (default "edit"). */
  command?: string;
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
  /** Load the model from here instead of manifest.model.source (its content hash must match). */
  modelSource?: string;
  /**
   * "read" (default): no lock, nothing written, run/undo/finish refused (a torn last record is ignored).
   * "read-locked": as "read", but holds the session lock so no writer changes the session meanwhile
   * (export). "write": holds the lock, truncates a torn last record, and may run/undo/finish.
   */
  access?: "read" | "read-locked" | "write";
  /** Replay onto the model without comparing its content hash with the manifest's (the user's explicit choice). */
  skipModelCheck?: boolean;
  /** Recorded in the lock file with access "write" or "read-locked" (default "edit"). */
  command?: string;
}

/** Reported after every committed batch of `EditSession.run`. */
export interface BatchProgress {
  batch: number;
  done: number; // requests consumed so far (stream position)
  total: number;
  record: BatchRecord;
}

function checkDir(dir: string): void {
  if (typeof dir !== "string" || dir.trim() === "") throw new DeltaEditError("E_ARG", `session directory must be a non-empty path, got ${JSON.stringify(dir)}`);
}

/** A model directory given as a path is recorded absolute (a session reopened elsewhere finds it); a Hub id as typed. */
function recordedSource(source: string): string {
  return fs.existsSync(source) ? path.resolve(source) : source;
}

function cleanTemporaries(dir: string): void {
  removeStaleTemporaries(dir);
  removeStaleTemporaries(path.join(dir, FACTORS_DIR));
}

export class EditSession {
  private rng: Rng;
  private nextIndex: number;
  readonly ctx: EditContext;

  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly model: LanguageModel,
    readonly method: EditMethod,
    private readonly ledger: Journal,
    secondMoment: (layer: number) => Float32Array,
    private readonly log: (msg: string) => void,
    private lock: SessionLock | null,
    private readonly canWrite: boolean,
  ) {
    const last = [...ledger.records].reverse().find((r): r is BatchRecord => r.kind === "batch");
    this.rng = Rng.fromState(last ? last.rngState : manifest.rngStateAfterTemplates);
    this.nextIndex = last ? last.nextIndex : 0;
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

  /** Start a new session in an empty (or non-existent) directory; the session holds the writer lock until `close()`. */
  static async create(o: SessionOptions): Promise<EditSession> {
    checkDir(o.dir);
    const log = o.log ?? (() => {});
    try {
      fs.mkdirSync(path.join(o.dir, FACTORS_DIR), { recursive: true });
    } catch (e) {
      throw new DeltaEditError("E_IO", `${o.dir}: cannot create the session directory (${(e as Error).message})`, { cause: e, context: { file: o.dir } });
    }
    const lock = SessionLock.acquire(o.dir, o.command ?? "edit", log);
    try {
      if (fs.existsSync(path.join(o.dir, MANIFEST_FILE))) {
        throw new DeltaEditError("E_SESSION", `${o.dir} already holds a session`, { hint: "use --resume to continue it, or choose another --session directory" });
      }
      if (fs.existsSync(path.join(o.dir, JOURNAL_FILE))) {
        throw new DeltaEditError("E_SESSION", `${o.dir} holds a ${JOURNAL_FILE} but no ${MANIFEST_FILE}: not an empty directory for a new session`, { hint: "choose another --session directory" });
      }
      cleanTemporaries(o.dir);
      if (o.threads) ops.setThreads(o.threads);
      const source = recordedSource(o.modelSource);
      const model = await LanguageModel.load(source, { log });
      const preset = presetFor(model.config, o.preset, model.dir ?? undefined);
      const overrides = { ...(preset.methods[o.method] ?? {}), ...(o.overrides ?? {}) };
      const method = createMethod(o.method, overrides, model.config.numLayers);
      const seed = o.seed ?? 0;
      const moments = await o.secondMoments(model, statsLayers(method));
      const rng = new Rng(seed);
      const templates = o.templates ?? generateContextTemplates(model, rng);
      const hash = modelContentHash(model.dir!, model.identity!.files.map((f) => f.name));
      lock.assertHeld();
      const manifest = writeManifest(path.join(o.dir, MANIFEST_FILE), {
        format: SESSION_FORMAT,
        version: SESSION_VERSION,
        codeVersion: o.codeVersion,
        created: new Date().toISOString(),
        model: { source, hash, hashKind: MODEL_HASH_KIND, modelType: model.config.modelType, numLayers: model.config.numLayers, hidden: model.config.hiddenSize, dFF: model.config.intermediateSize },
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
      });
      const journal = Journal.read(path.join(o.dir, JOURNAL_FILE), { repair: true, numLayers: model.config.numLayers });
      log(`session ${o.dir}: ${methodDisplayName(o.method, method.params as Record<string, unknown>)} on ${model.config.modelType} (${model.config.numLayers} blocks), preset ${preset.name}`);
      return new EditSession(o.dir, manifest, model, method, journal, (l) => moments.get(l), log, lock, true);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Reopen a session: verify the manifest and the journal, reload the original model (checking its
   * content hash), and replay the journal (resume). See OpenOptions for read and write access.
   */
  static async open(dir: string, o: OpenOptions): Promise<EditSession> {
    checkDir(dir);
    const log = o.log ?? (() => {});
    const write = o.access === "write";
    const mfile = path.join(dir, MANIFEST_FILE);
    if (!fs.existsSync(mfile)) throw new DeltaEditError("E_SESSION", `${dir}: no ${MANIFEST_FILE} (not a session directory)`, { context: { file: mfile } });
    const lock = write || o.access === "read-locked" ? SessionLock.acquire(dir, o.command ?? "edit", log) : null;
    try {
      if (lock) cleanTemporaries(dir);
      const manifest = readManifest(mfile, { requireModelHash: o.skipModelCheck !== true });
      const journal = Journal.read(path.join(dir, JOURNAL_FILE), { repair: write, numLayers: manifest.model.numLayers });
      if (manifest.threads !== ops.getThreads()) {
        log(`note: the session was run with ${manifest.threads} threads; using ${manifest.threads} again for bit-identical results`);
        ops.setThreads(manifest.threads);
      }
      const source = o.modelSource !== undefined ? recordedSource(o.modelSource) : manifest.model.source;
      const model = await LanguageModel.load(source, { log });
      const mm = manifest.model;
      const shape = (c: { modelType: string; numLayers: number; hiddenSize: number; intermediateSize: number }): string => `${c.modelType}, ${c.numLayers} blocks, C ${c.hiddenSize}, F ${c.intermediateSize}`;
      if (model.config.modelType !== mm.modelType || model.config.numLayers !== mm.numLayers || model.config.hiddenSize !== mm.hidden || model.config.intermediateSize !== mm.dFF) {
        throw new DeltaEditError("E_SESSION", `the model at ${source} (${shape(model.config)}) does not have the shape recorded in ${mfile} (${shape({ modelType: mm.modelType, numLayers: mm.numLayers, hiddenSize: mm.hidden, intermediateSize: mm.dFF })})`, { context: { file: mfile, field: "model" } });
      }
      if (o.skipModelCheck === true) log(`warning: --skip-model-check: the model at ${source} is not verified against the session's model hash${mm.hash === "" ? " (the manifest records none)" : ""}; results are only right if it is the model the session was started with`);
      else {
        const hash = modelContentHash(model.dir!, model.identity!.files.map((f) => f.name));
        if (hash !== mm.hash) {
          throw new DeltaEditError("E_SESSION", `the model at ${source} is not the one this session was started with: content hash ${hash.slice(0, 12)}… ≠ ${mm.hash.slice(0, 12)}… recorded in ${mfile} (model.source ${mm.source})`, {
            hint: "pass the original model with --model DIR, or --skip-model-check to replay onto this one anyway (results then differ from the original run)",
            context: { file: mfile, field: "model.hash" },
          });
        }
      }
      const method = createMethod(manifest.method, manifest.overrides, model.config.numLayers);
      const moments = await o.secondMoments(model, statsLayers(method));
      const s = new EditSession(dir, manifest, model, method, journal, (l) => moments.get(l), log, lock, write);
      s.replayAll();
      return s;
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  /** Release the session lock (if held). The session can still be read afterwards, not written. */
  close(): void {
    this.lock?.release();
    this.lock = null;
  }

  /** The verified journal records, in order. */
  get journal(): readonly JournalRecord[] {
    return this.ledger.records;
  }

  get writable(): boolean {
    return this.canWrite && this.lock !== null;
  }

  private factorsFile(name: string): string {
    return path.join(this.dir, FACTORS_DIR, name);
  }

  private load(name: string, metas: readonly UpdateMeta[], sha256: string): LayerUpdate[] {
    return loadFactors(this.factorsFile(name), metas, sha256, this.model.arch.hidden, this.model.arch.dFF);
  }

  private writer(what: string): SessionLock {
    if (!this.canWrite || this.lock === null) throw new DeltaEditError("E_SESSION", `${this.dir}: the session is ${this.canWrite ? "closed" : "open for reading only"}; cannot ${what}`, { hint: "open it with access \"write\" (takes the session lock)" });
    return this.lock;
  }

  private append(rec: NewRecord): JournalRecord {
    const lock = this.writer("write the journal");
    return this.ledger.append(rec, () => lock.assertHeld());
  }

  private replayAll(): void {
    let n = 0;
    for (const r of this.ledger.records) {
      if (r.kind === "batch") {
        if (r.factors === null || r.outcome === null || r.factorsSha256 === null) continue; // every request rejected (validated)
        const updates = this.load(r.factors, r.updates, r.factorsSha256);
        // the method replays its state first (PRUNE snapshots W0 from the weights before batch 1), then the weights
        this.method.replay(this.ctx, { ...r.outcome, updates });
        for (const u of updates) applyLayerUpdate(this.model, u);
        n++;
      } else if (r.kind === "undo") {
        const b = this.ledger.batch(r.batch)!; // validated: an earlier batch with factors
        for (const u of this.load(b.factors!, b.updates, b.factorsSha256!).reverse()) applyLayerUpdate(this.model, u, -1);
      } else if (r.factors !== null && r.factorsSha256 !== null) {
        for (const u of this.load(r.factors, r.updates, r.factorsSha256)) applyLayerUpdate(this.model, u);
      }
    }
    if (n > 0) this.log(`resumed: replayed ${n} batches (${this.nextIndex} requests consumed) onto the original weights (C ${this.model.arch.hidden}, F ${this.model.arch.dFF})`);
  }

  get position(): number {
    return this.nextIndex;
  }

  /** Batches committed so far (the last batch number). */
  get batchesApplied(): number {
    return this.ledger.lastBatch;
  }

  get finished(): boolean {
    return this.ledger.finished;
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
    this.writer("edit");
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
      opts.onBatch?.({ batch: record.batch, done: this.nextIndex, total: stopAt, record });
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
    const batchNo = this.ledger.lastBatch + 1;
    let factors: string | null = null;
    let factorsSha256: string | null = null;
    let metas: UpdateMeta[] = [];
    if (outcome) {
      factors = `${String(batchNo).padStart(6, "0")}.safetensors`;
      this.writer("write factors").assertHeld();
      ({ metas, sha256: factorsSha256 } = saveFactors(this.factorsFile(factors), outcome.updates, C, F));
    }
    const { updates: _u, ...rest } = outcome ?? { updates: [] };
    const record = this.append({
      kind: "batch",
      batch: batchNo,
      requests: accepted.map((r) => ({ caseId: r.caseId, index: r.index, subject: r.subject, prompt: r.prompt, targetNew: r.targetNew })),
      rejected,
      outcome: outcome ? (rest as Omit<BatchOutcome, "updates">) : null,
      updates: metas,
      factors,
      factorsSha256,
      rngState: this.rng.state(),
      nextIndex,
      time: new Date().toISOString(),
    }) as BatchRecord;
    this.nextIndex = nextIndex;
    return record;
  }

  /** Subtract batch `n`'s recorded update (1-based batch number). */
  undo(n: number): void {
    this.writer("undo");
    const rec = this.ledger.batch(n);
    if (!rec) throw new DeltaEditError("E_SESSION", `${this.dir}: no batch ${n} in the journal (batches 1..${this.ledger.lastBatch})`);
    if (this.ledger.isUndone(n)) throw new DeltaEditError("E_SESSION", `${this.dir}: batch ${n} was already undone`);
    if (rec.factors === null || rec.factorsSha256 === null) throw new DeltaEditError("E_SESSION", `${this.dir}: batch ${n} applied no update (all its requests were rejected)`);
    const updates = this.load(rec.factors, rec.updates, rec.factorsSha256);
    for (const u of [...updates].reverse()) applyLayerUpdate(this.model, u, -1);
    this.append({ kind: "undo", batch: n, time: new Date().toISOString() });
  }

  /** The method's final step, if any (PRUNE's restraint), recorded like a batch. */
  finish(): LayerUpdate[] {
    if (this.finished || !this.method.finish) return [];
    const lock = this.writer("finish");
    const res = this.method.finish(this.ctx);
    const updates = res === null ? [] : Array.isArray(res) ? res : [res];
    let factors: string | null = null;
    let factorsSha256: string | null = null;
    let metas: UpdateMeta[] = [];
    if (updates.length > 0) {
      factors = "finish.safetensors";
      lock.assertHeld();
      ({ metas, sha256: factorsSha256 } = saveFactors(this.factorsFile(factors), updates, this.model.arch.hidden, this.model.arch.dFF));
    }
    this.append({ kind: "finish", updates: metas, factors, factorsSha256, time: new Date().toISOString() });
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
    for (const r of this.ledger.records) {
      if (r.kind === "undo") {
        const b = this.ledger.batch(r.batch)!; // validated: an earlier batch with factors
        for (const u of this.load(b.factors!, b.updates, b.factorsSha256!)) add(u, -1);
      } else if (r.factors !== null && r.factorsSha256 !== null) for (const u of this.load(r.factors, r.updates, r.factorsSha256)) add(u, 1);
    }
    return acc;
  }
}
