/**
 * The journal of a session: `journal.jsonl`, append-only, one JSON record per line, each line
 * fsynced before the append returns (the record is the commit point of a batch).
 *
 * Every record carries `seq` (1, 2, 3, … its position in the journal: no gap, no duplicate) and
 * `sum` (sha256 of the canonical JSON of the record without `sum`, see checksum.ts), and every
 * field is validated when read, against the records before it (batch numbers 1, 2, 3, …, the stream
 * position only moves forward, an undo names an earlier applied batch, nothing follows `finish`).
 * Reading stops at the first bad record with E_SESSION naming the file and the line.
 *
 * Torn writes: only a final fragment WITHOUT its newline is a write torn by a crash. It is ignored
 * by readers and truncated away by a writer (`repair`), which holds the session lock. A complete
 * final line that does not parse or verify is corruption, like a bad line anywhere else.
 */
import { jsonDepth } from "../../model/boundedjson.js";
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { appendDurable } from "../../util/fsio.js";
import type { BatchOutcome } from "../methods/method.js";
import type { Rejection } from "../request.js";
import { isSha256Hex, recordSum, sealed, SUM_FIELD } from "./checksum.js";
import { isFactorsName, validateUpdateMetas, type UpdateMeta } from "./store.js";
/** A journal record nests a few levels (record → outcome → requests → noise); deeper is corruption. */
const JOURNAL_MAX_DEPTH = 16;


export const JOURNAL_FILE = "journal.jsonl";

/** A request as recorded in the journal. */
export interface RequestRef {
  caseId: string;
  index: number; // position in the stream
  subject: string;
  prompt: string;
  targetNew: string;
}

/** The journal record of one applied batch (docs/formats.md). */
export interface BatchRecord {
  seq: number; // journal sequence number (1-based, every record)
  kind: "batch";
  batch: number; // 1-based batch number (what `undo --edit N` refers to)
  requests: RequestRef[]; // the applied requests, stream order
  rejected: Rejection[];
  outcome: Omit<BatchOutcome, "updates"> | null; // null iff no request was applied
  updates: UpdateMeta[]; // non-empty iff outcome ≠ null
  factors: string | null; // file name inside DIR/factors/ (no path), null iff no update
  factorsSha256: string | null; // sha256 (hex) of that file's bytes
  rngState: number[]; // (4) after the batch
  nextIndex: number; // stream position after this batch
  time: string;
  sum: string;
}

/** The journal record of an undo. */
export interface UndoRecord {
  seq: number;
  kind: "undo";
  batch: number; // the batch whose update was subtracted
  time: string;
  sum: string;
}

/** The journal record of a method's final step (PRUNE's restraint). */
export interface FinishRecord {
  seq: number;
  kind: "finish";
  updates: UpdateMeta[]; // may be empty (the method's final step changed nothing)
  factors: string | null;
  factorsSha256: string | null;
  time: string;
  sum: string;
}

/** One journal record. */
export type JournalRecord = BatchRecord | UndoRecord | FinishRecord;

/** A record as a writer hands it over: `seq` and `sum` are assigned by `Journal.append`. */
export type NewRecord = Omit<BatchRecord, "seq" | "sum"> | Omit<UndoRecord, "seq" | "sum"> | Omit<FinishRecord, "seq" | "sum">;

/** What the records read so far imply for the next one. */
interface ReplayState {
  batches: Map<number, BatchRecord>;
  undone: Set<number>;
  lastBatch: number;
  nextIndex: number;
  finished: boolean;
}

interface Where {
  file: string;
  line: number;
}

function bad(w: Where, what: string): DeltaEditError {
  return new DeltaEditError("E_SESSION", `${w.file}: line ${w.line}: ${what} (corrupted journal)`, {
    hint: "the session directory was modified or damaged; restore it from a copy, or start a new session",
    context: { file: w.file, line: w.line },
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + "..." : s;
};

function field<T>(w: Where, r: Record<string, unknown>, name: string, ok: (v: unknown) => v is T, what: string): T {
  const v = r[name];
  if (!ok(v)) throw bad(w, `field "${name}" must be ${what}, got ${v === undefined ? "nothing" : show(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === "string";
const isNull = (v: unknown): v is null => v === null;
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

function checkRequests(w: Where, v: unknown, from: number, to: number): void {
  if (!Array.isArray(v)) throw bad(w, `field "requests" must be an array, got ${show(v)}`);
  let prev = -1;
  v.forEach((q: unknown, i) => {
    const ok = isObject(q) && isString(q["caseId"]) && isIndex(q["index"]) && isString(q["subject"]) && isString(q["prompt"]) && isString(q["targetNew"]);
    if (!ok) throw bad(w, `field "requests[${i}]" must be {caseId, index, subject, prompt, targetNew}, got ${show(q)}`);
    const idx = q["index"] as number;
    if (idx <= prev || idx < from || idx >= to) throw bad(w, `field "requests[${i}].index" ${idx} is out of order or outside this batch's stream positions [${from}, ${to})`);
    prev = idx;
  });
}

function checkRejected(w: Where, v: unknown): void {
  if (!Array.isArray(v)) throw bad(w, `field "rejected" must be an array, got ${show(v)}`);
  v.forEach((q: unknown, i) => {
    if (!(isObject(q) && isString(q["caseId"]) && isIndex(q["index"]) && isString(q["field"]) && isString(q["message"]))) throw bad(w, `field "rejected[${i}]" must be {caseId, index, field, message}, got ${show(q)}`);
  });
}

function checkOutcome(w: Where, v: unknown): void {
  if (!isObject(v)) throw bad(w, `field "outcome" must be an object (the batch applied requests), got ${show(v)}`);
  if (!Array.isArray(v["requests"]) || !v["requests"].every(isObject)) throw bad(w, `field "outcome.requests" must be an array of per-request reports`);
  if (!Array.isArray(v["layerStats"])) throw bad(w, `field "outcome.layerStats" must be an array`);
  if (!isObject(v["timings"])) throw bad(w, `field "outcome.timings" must be an object`);
  if (!isObject(v["replayData"])) throw bad(w, `field "outcome.replayData" must be an object`);
}

/** Factor fields of a batch or finish record: both null, or a plain file name with its sha256. */
function checkFactors(w: Where, r: Record<string, unknown>, updates: UpdateMeta[]): void {
  if (updates.length === 0) {
    field(w, r, "factors", isNull, "null (no update)");
    field(w, r, "factorsSha256", isNull, "null (no update)");
    return;
  }
  field(w, r, "factors", isFactorsName, "a plain file name inside the session's factors/ directory (no '/', no '..')");
  field(w, r, "factorsSha256", isSha256Hex, "the sha256 (64 hex digits) of the factors file");
}

function checkUpdates(w: Where, r: Record<string, unknown>, numLayers: number, nonEmpty: boolean): UpdateMeta[] {
  const v = r["updates"];
  const msg = validateUpdateMetas(v, numLayers);
  if (msg !== null) throw bad(w, `field "updates" ${msg}`);
  const updates = v as UpdateMeta[];
  if (nonEmpty && updates.length === 0) throw bad(w, `field "updates" must be a non-empty array (the batch applied requests)`);
  return updates;
}

/** Validate one parsed line against the state so far; returns the typed record and advances `st`. */
function validateRecord(w: Where, v: unknown, seq: number, st: ReplayState, numLayers: number): JournalRecord {
  if (!isObject(v)) throw bad(w, `not a journal record (got ${show(v)})`);
  const sum = v[SUM_FIELD];
  if (!isSha256Hex(sum)) throw bad(w, `field "${SUM_FIELD}" must be a sha256 checksum (64 hex digits), got ${sum === undefined ? "nothing" : show(sum)}`);
  if (recordSum(v) !== sum) throw bad(w, `checksum mismatch (the record was altered)`);
  if (v["seq"] !== seq) throw bad(w, `field "seq" is ${show(v["seq"])}, expected ${seq} (a record is missing, duplicated or out of order)`);
  if (st.finished) throw bad(w, `a record follows the "finish" record`);
  field(w, v, "time", isString, "a time string");
  const kind = v["kind"];
  if (kind === "batch") {
    const batch = field(w, v, "batch", isInt, "an integer");
    if (batch !== st.lastBatch + 1) throw bad(w, `field "batch" is ${batch}, expected ${st.lastBatch + 1}`);
    const nextIndex = field(w, v, "nextIndex", isIndex, "a stream position");
    if (nextIndex <= st.nextIndex) throw bad(w, `field "nextIndex" ${nextIndex} does not move past the previous position ${st.nextIndex}`);
    checkRequests(w, v["requests"], st.nextIndex, nextIndex);
    checkRejected(w, v["rejected"]);
    const applied = (v["requests"] as unknown[]).length > 0;
    if (applied) checkOutcome(w, v["outcome"]);
    else field(w, v, "outcome", isNull, "null (no request was applied)");
    const updates = checkUpdates(w, v, numLayers, applied);
    checkFactors(w, v, updates);
    const rng = v["rngState"];
    if (!Array.isArray(rng) || rng.length !== 4 || !rng.every(isU32)) throw bad(w, `field "rngState" must be 4 unsigned 32-bit integers, got ${show(rng)}`);
    const rec = v as unknown as BatchRecord;
    st.batches.set(batch, rec);
    st.lastBatch = batch;
    st.nextIndex = nextIndex;
    return rec;
  }
  if (kind === "undo") {
    const batch = field(w, v, "batch", isInt, "an integer");
    const target = st.batches.get(batch);
    if (!target) throw bad(w, `undo of batch ${batch}, which is not an earlier batch`);
    if (target.factors === null) throw bad(w, `undo of batch ${batch}, which applied no update`);
    if (st.undone.has(batch)) throw bad(w, `batch ${batch} is undone twice`);
    st.undone.add(batch);
    return v as unknown as UndoRecord;
  }
  if (kind === "finish") {
    const updates = checkUpdates(w, v, numLayers, false);
    checkFactors(w, v, updates);
    st.finished = true;
    return v as unknown as FinishRecord;
  }
  throw bad(w, `unknown record kind ${show(kind)}`);
}

export class Journal {
  private readonly state: ReplayState;
  private readonly list: JournalRecord[];

  private constructor(
    readonly file: string,
    private readonly numLayers: number,
  ) {
    this.state = { batches: new Map(), undone: new Set(), lastBatch: 0, nextIndex: 0, finished: false };
    this.list = [];
  }

  /**
   * Read and verify `file` (a missing file is an empty journal). A torn final fragment (no newline)
   * is ignored, and truncated away when `repair` (writers only, under the session lock).
   * `numLayers` bounds the layers named by updates.
   */
  static read(file: string, opts: { repair: boolean; numLayers: number }): Journal {
    const j = new Journal(file, opts.numLayers);
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return j;
      throw new DeltaEditError("E_IO", `${file}: cannot read the journal (${(e as Error).message})`, { cause: e, context: { file } });
    }
    const complete = buf.lastIndexOf(0x0a) + 1; // bytes of complete lines
    const lines = buf.subarray(0, complete).toString("utf8").split("\n");
    lines.pop(); // the empty string after the last newline
    lines.forEach((line, i) => {
      const w = { file, line: i + 1 };
      let v: unknown;
      if (jsonDepth(Buffer.from(line, "utf8"), JOURNAL_MAX_DEPTH).depth > JOURNAL_MAX_DEPTH) throw bad(w, `nested deeper than ${JOURNAL_MAX_DEPTH} levels (not a journal record)`);
      try {
        v = JSON.parse(line);
      } catch {
        throw bad(w, line.trim() === "" ? "empty line" : "not valid JSON");
      }
      j.list.push(validateRecord(w, v, i + 1, j.state, j.numLayers));
    });
    if (opts.repair && complete < buf.length) {
      try {
        fs.truncateSync(file, complete);
      } catch (e) {
        throw new DeltaEditError("E_IO", `${file}: cannot truncate the torn last record (${(e as Error).message})`, { cause: e, context: { file } });
      }
    }
    return j;
  }

  get records(): readonly JournalRecord[] {
    return this.list;
  }

  /** Batches applied so far (the last batch number). */
  get lastBatch(): number {
    return this.state.lastBatch;
  }

  get finished(): boolean {
    return this.state.finished;
  }

  isUndone(batch: number): boolean {
    return this.state.undone.has(batch);
  }

  batch(n: number): BatchRecord | undefined {
    return this.state.batches.get(n);
  }

  /**
   * Validate, seal (seq, sum) and durably append `rec`; `beforeWrite` runs just before the write
   * (the session checks its lock there). Returns the committed record.
   */
  append(rec: NewRecord, beforeWrite: () => void = () => {}): JournalRecord {
    const seq = this.list.length + 1;
    const full = sealed({ seq, ...rec } as Record<string, unknown>);
    const w = { file: this.file, line: seq };
    // validate a copy of the state: a record that would not read back is never written
    const st: ReplayState = { ...this.state, batches: new Map(this.state.batches), undone: new Set(this.state.undone) };
    let typed: JournalRecord;
    try {
      typed = validateRecord(w, JSON.parse(JSON.stringify(full)), seq, st, this.numLayers);
    } catch (e) {
      const what = (e as Error).message.replace(/ \(corrupted journal\)$/, "");
      throw new DeltaEditError("E_SESSION", `refusing to append an invalid record (a bug): ${what}`, { cause: e, context: { file: this.file } });
    }
    beforeWrite();
    appendDurable(this.file, JSON.stringify(full) + "\n");
    Object.assign(this.state, st);
    this.list.push(typed);
    return typed;
  }
}
