/**
 * `Editor`: the library's face of an edit session: create one on a model, edit, generate, score,
 * undo, export, close, reopen. A thin layer over `EditSession` (edit/session/session.ts: the durable
 * directory, journal, resume, undo) that adds what a program needs in one place: requests in any of
 * the field's formats, hyperparameters from a preset, an EasyEdit hparams file and explicit values,
 * statistics found or computed as the CLI does (edit/statsProvider.ts), per-request reports, and the
 * CounterFact / ZsRE metrics on the current weights. The CLI's `edit` runs through it; `undo`,
 * `export` and `generate` share its functions.
 *
 * ```ts
 * const editor = await Editor.create({ dir: "runs/s1", model: "worlds/factworld-v1", method: "deltaedit" });
 * const report = await editor.edit([{ prompt: "{} was born in", subject: "Ada", targetNew: "Paris" }]);
 * const text = await editor.generate("Ada was born in", { maxNewTokens: 8 });
 * await editor.undo(report.batch!);
 * await editor.close();
 * ```
 *
 * Work is synchronous CPU work inside the returned promises (the native kernels are synchronous);
 * the methods are async so that a later backend can be.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { describeHparams, readHparamsFile, type HparamsMapping } from "../edit/hparams.js";
import type { MethodName, RequestReport } from "../edit/methods/method.js";
import { parseRequests, type ParsedRequests, type Rejection } from "../edit/request.js";
import { exportSession, type ExportOptions, type ExportResult } from "../edit/session/exportSession.js";
import { EditSession, type BatchProgress, type JournalRecord, type Manifest } from "../edit/session/session.js";
import { secondMomentFactory, type StatsOptions } from "../edit/statsProvider.js";
import { generateText, type GenerateTextOptions } from "../model/generateText.js";
import type { LanguageModel } from "../model/model.js";
import { packageVersion } from "../util/version.js";
import { loadDatasetFile, type DetectedDataset } from "./datasets/detect.js";
import type { DatasetKind, EvalRecord, LoadedDataset } from "./datasets/record.js";
import { evaluateCounterfactCase, type NeighborhoodMode, type NeighborhoodReference } from "./metrics/counterfact.js";
import { summarize, type CaseResult } from "./metrics/summary.js";
import type { CounterfactSummary } from "./metrics/counterfact.js";
import { evaluateZsreCase, type ZsreRoute, type ZsreSummary } from "./metrics/zsre.js";

/** Hint given when statistics are missing: the API's option, not the CLI flag. */
const STATS_HINT = "pass stats: { corpus: FILE|DIR } (plain text, JSONL with a \"text\" field, or a directory of them); the statistics are computed once and cached";

/** Options of `Editor.create`. */
export interface EditorCreateOptions {
  /** Session directory (created; must not hold a session yet). */
  dir: string;
  /** Model directory (Hugging Face layout) or Hub repo id. */
  model: string;
  /** Editing method; may be left out when `hparams` names it (`alg_name`). */
  method?: MethodName;
  /** Preset name or preset JSON file (default: matched to the model's shape; see `PRESETS`). */
  preset?: string;
  /** EasyEdit / official-repository hparams file (YAML or JSON), applied on top of the preset (docs/hparams.md). */
  hparams?: string;
  /** Method parameters by our names (e.g. `{ l2: 10, editLayers: [1, 2] }`), applied last. */
  params?: Record<string, unknown>;
  /** Requests per batch (default 1: the papers' sequential protocol). */
  batchSize?: number;
  /** Seed of the session's RNG (context templates, randomized SVD); default 0. */
  seed?: number;
  /** Compute threads (recorded; a reopened session uses the same count). */
  threads?: number;
  /** How to compute covariance statistics the model does not ship. */
  stats?: StatsOptions;
  /** Progress and notes (default: discarded). */
  log?: (msg: string) => void;
  /** Recorded in the session lock (default "api"). */
  command?: string;
}

/** Options of `Editor.open`. */
export interface EditorOpenOptions {
  /**
   * "write" (default): hold the session's writer lock, continue editing, undo, finish.
   * "read": no lock, nothing written (generate, evaluate, export only). "read-locked": as "read",
   * holding the lock so no writer changes the session meanwhile.
   */
  access?: "write" | "read" | "read-locked";
  /** Load the model from here instead of the manifest's source (its content hash must match). */
  model?: string;
  /** Replay onto the model without checking its content hash (results are right only for the original model). */
  skipModelCheck?: boolean;
  /** How to compute covariance statistics the model does not ship. */
  stats?: StatsOptions;
  /** Progress and notes (default: discarded). */
  log?: (msg: string) => void;
  /** Recorded in the session lock (default "api"). */
  command?: string;
}

/**
 * One edit request in the API's form: `prompt` holds "{}" where the subject goes (or the subject
 * written out, as in EasyEdit), `targetNew` is the object to insert. An `EditRequest` from a dataset
 * record (`record.request`) fits too.
 */
export interface EditInput {
  prompt: string;
  subject: string;
  targetNew: string;
  targetTrue?: string | null;
  /** Identifies the request in reports and rejections (default: its stream position). */
  caseId?: string | number;
}

/** A request to `edit`: the API form, or a raw record in any supported format (CounterFact, EasyEdit/KnowEdit, ZsRE, flat JSONL). */
export type EditRecordInput = EditInput | Record<string, unknown>;

/** A request that was applied: the method's report (steps, loss, norms, DeltaEdit's noise statistics) and its batch. */
export interface AppliedRequest extends RequestReport {
  batch: number;
}

/** What one `edit` / `editStream` call did. */
export interface EditResult {
  /** The last batch that applied an update (what `undo` takes), or null when nothing was applied. */
  batch: number | null;
  /** Every batch of this call that applied an update, in order. */
  batches: number[];
  /** Number of requests applied. */
  applied: number;
  /** The method's report of each applied request, in stream order. */
  requests: AppliedRequest[];
  /** Requests not applied, by case id, with the field at fault and why. */
  rejected: Rejection[];
  /** The session's stream position after the call (requests consumed, rejected ones included). */
  position: number;
}

/** Options of `edit` and `editStream`. */
export interface EditOptions {
  /** Called after every committed batch. */
  onBatch?: (p: BatchProgress) => void;
}

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** CounterFact neighborhood reference (default "standard"; the deltaedit modes need `neighborhoodTrue`). */
  neighborhoodMode?: NeighborhoodMode;
  /** Greedy ids of the UNEDITED model per neighborhood prompt (`neighborhoodReference`), for the deltaedit modes. */
  neighborhoodTrue?: NeighborhoodReference;
  /** ZsRE scoring route (default "teacher-forced"). */
  zsreRoute?: ZsreRoute;
  /** `num_edits` written into each case result (default: the session's batch size). */
  numEdits?: number;
}

/** Scores of records on the current weights: the run summary (×100, population std) and the per-case results. */
export interface Evaluation {
  summary: CounterfactSummary | ZsreSummary;
  cases: CaseResult[];
}

function isApiInput(x: EditRecordInput): x is EditInput {
  return typeof (x as { targetNew?: unknown }).targetNew === "string";
}

/** An API-form input as the snake_case record the request parser reads. */
function asRecord(x: EditRecordInput, caseId: string): unknown {
  if (!isApiInput(x)) return { case_id: caseId, ...x };
  return { case_id: x.caseId ?? caseId, prompt: x.prompt, subject: x.subject, target_new: x.targetNew, ...(x.targetTrue != null ? { target_true: x.targetTrue } : {}) };
}

/** An editing session on one model with one method, durable in a directory. */
export class Editor {
  private constructor(
    /**
     * The underlying low-level session (journal, manifest, model, method state).
     * @internal
     */
    readonly session: EditSession,
    /** How an hparams file was read (mapped and ignored fields), or null. */
    readonly hparams: HparamsMapping | null,
    private readonly log: (msg: string) => void,
  ) {}

  /** Start a new session in `o.dir`; it holds the session's writer lock until `close()`. */
  static async create(o: EditorCreateOptions): Promise<Editor> {
    const log = o.log ?? (() => {});
    const h = o.hparams !== undefined ? readHparamsFile(o.hparams, o.method) : null;
    if (h) for (const line of describeHparams(h)) log(line);
    const method = o.method ?? h?.method;
    if (!method) throw new DeltaEditError("E_ARG", "Editor.create: no method: give `method` (or an hparams file that names it with alg_name)");
    const so: Parameters<typeof EditSession.create>[0] = {
      dir: o.dir,
      modelSource: o.model,
      method,
      overrides: { ...(h?.overrides ?? {}), ...(o.params ?? {}) },
      batchSize: o.batchSize ?? 1,
      seed: o.seed ?? 0,
      codeVersion: packageVersion(),
      secondMoments: secondMomentFactory({ missingHint: STATS_HINT, ...o.stats }, log),
      log,
      command: o.command ?? "api",
    };
    if (o.preset !== undefined) so.preset = o.preset;
    if (o.threads !== undefined) so.threads = o.threads;
    try {
      return new Editor(await EditSession.create(so), h, log);
    } catch (e) {
      throw h ? attributeToHparams(e, h) : e;
    }
  }

  /**
   * Reopen a session (verify, reload the original model, replay the journal); default access "write".
   * Statistics not shipped with the model are taken from the statistics cache; without `stats.corpus`,
   * the corpus recorded in the manifest is used when it still exists.
   */
  static async open(dir: string, o: EditorOpenOptions = {}): Promise<Editor> {
    const log = o.log ?? (() => {});
    const corpus = o.stats?.corpus ?? recordedCorpus(dir);
    const oo: Parameters<typeof EditSession.open>[1] = {
      secondMoments: secondMomentFactory({ missingHint: STATS_HINT, ...o.stats, ...(corpus !== undefined ? { corpus } : {}) }, log),
      log,
      access: o.access ?? "write",
      command: o.command ?? "api",
    };
    if (o.model !== undefined) oo.modelSource = o.model;
    if (o.skipModelCheck !== undefined) oo.skipModelCheck = o.skipModelCheck;
    return new Editor(await EditSession.open(dir, oo), null, log);
  }

  /** The session directory. */
  get dir(): string {
    return this.session.dir;
  }

  /** The editing method. */
  get method(): MethodName {
    return this.session.manifest.method;
  }

  /** The method's resolved parameters (preset, hparams file and explicit values applied). */
  get params(): Readonly<Record<string, unknown>> {
    return this.session.manifest.params;
  }

  /** The session manifest (model identity and hash, method, parameters, seed, templates). */
  get manifest(): Manifest {
    return this.session.manifest;
  }

  /** The model with every applied edit (not a copy: edits change it in place). */
  get model(): LanguageModel {
    return this.session.model;
  }

  /** Requests consumed so far (the stream position). */
  get position(): number {
    return this.session.position;
  }

  /** The verified journal records (batches, undos, finish), in order. */
  get journal(): readonly JournalRecord[] {
    return this.session.journal;
  }

  /**
   * Apply `requests` after everything edited so far, one batch of `batchSize` at a time. A request
   * that is malformed or cannot be edited is rejected by case id (the rest go on); nothing about it
   * is applied.
   */
  async edit(requests: readonly EditRecordInput[], opts: EditOptions = {}): Promise<EditResult> {
    if (!Array.isArray(requests)) throw new DeltaEditError("E_ARG", `Editor.edit: requests must be a list, got ${requests === null ? "null" : typeof requests}`);
    const pos = this.session.position;
    const parsed = parseRequests(requests.map((r, i) => asRecord(r, String(pos + i))));
    const shift = <T extends { index: number }>(x: T): T => ({ ...x, index: x.index + pos });
    return this.run({ requests: parsed.requests.map(shift), rejected: parsed.rejected.map(shift) }, opts, true);
  }

  /**
   * Apply a whole stream whose positions are fixed (e.g. a file read with `readRequestsFile`), from
   * the session's position on: after an interruption, calling it again with the same stream applies
   * only the rest (what `deltaedit edit --resume` does).
   */
  async editStream(stream: ParsedRequests, opts: EditOptions & { limit?: number } = {}): Promise<EditResult> {
    return this.run(stream, opts, false);
  }

  /** `skipEmpty`: with no editable request left, report the rejections without journaling an empty batch. */
  private run(stream: ParsedRequests, opts: EditOptions & { limit?: number }, skipEmpty: boolean): EditResult {
    const result: EditResult = { batch: null, batches: [], applied: 0, requests: [], rejected: [], position: this.session.position };
    const pending = stream.requests.filter((r) => r.index >= this.session.position);
    const pendingRejected = stream.rejected.filter((r) => r.index >= this.session.position);
    if (skipEmpty && pending.length === 0) {
      result.rejected.push(...pendingRejected);
      return result;
    }
    const runOpts: Parameters<EditSession["run"]>[1] = {
      rejected: stream.rejected,
      onBatch: (p) => {
        result.rejected.push(...p.record.rejected);
        result.applied += p.record.requests.length;
        if (p.record.factors !== null) {
          result.batches.push(p.batch);
          result.batch = p.batch;
        }
        for (const q of p.record.outcome?.requests ?? []) result.requests.push({ ...q, batch: p.batch });
        opts.onBatch?.(p);
      },
    };
    if (opts.limit !== undefined) runOpts.limit = opts.limit;
    this.session.run(stream.requests, runOpts);
    result.position = this.session.position;
    return result;
  }

  /** Generate a continuation of `prompt` on the current weights; returns the new text only. */
  async generate(prompt: string, opts: GenerateTextOptions = {}): Promise<string> {
    return generateText(this.session.model, prompt, opts).text;
  }

  /**
   * Load an evaluation set with this model's tokenizer, its format detected from the fields
   * (CounterFact, EasyEdit / KnowEdit, ZsRE); malformed records are in `rejected`.
   */
  async loadDataset(file: string, o: { size?: number; kind?: DatasetKind } = {}): Promise<DetectedDataset> {
    const tok = this.session.model.tokenizer;
    return loadDatasetFile(file, { ...o, ...(tok ? { tokenizer: tok } : {}) });
  }

  /**
   * Score records on the current weights with the CounterFact metrics (efficacy, generalization,
   * specificity; KnowEdit portability / locality where the records have them) or the ZsRE token
   * accuracies. `records`: loaded records, a loaded dataset, or a file (read with `loadDataset`).
   * Metrics a format cannot support are absent from the summary, never zero.
   */
  async evaluate(records: readonly EvalRecord[] | LoadedDataset | string, opts: EvaluateOptions = {}): Promise<Evaluation> {
    const list = typeof records === "string" ? (await this.loadDataset(records)).records : Array.isArray(records) ? (records as readonly EvalRecord[]) : (records as LoadedDataset).records;
    if (list.length === 0) throw new DeltaEditError("E_ARG", "Editor.evaluate: no records to score");
    const numEdits = opts.numEdits ?? this.session.manifest.batchSize;
    const model = this.session.model;
    const cases: CaseResult[] = list.map((r) =>
      r.kind === "zsre"
        ? evaluateZsreCase(model, r, { numEdits, ...(opts.zsreRoute ? { route: opts.zsreRoute } : {}) })
        : evaluateCounterfactCase(model, r, { numEdits, neighborhoodMode: opts.neighborhoodMode ?? "standard", ...(opts.neighborhoodTrue ? { neighborhoodTrue: opts.neighborhoodTrue } : {}) }),
    );
    return { summary: summarize(cases), cases };
  }

  /**
   * Subtract the recorded update of a batch (or of several, last first). This is not the same as
   * never having applied it: later edits were computed on the model that contained it.
   */
  async undo(batch: number | readonly number[]): Promise<void> {
    const list = typeof batch === "number" ? [batch] : [...batch].sort((a, b) => b - a);
    for (const n of list) this.session.undo(n);
  }

  /** The method's final step after the last batch (PRUNE's restraint); returns the number of layer updates it applied. */
  async finish(): Promise<number> {
    return this.session.finish().length;
  }

  /** Write the current model as a Hugging Face checkpoint or a PEFT LoRA adapter. */
  async export(o: ExportOptions): Promise<ExportResult> {
    return exportSession(this.session, o);
  }

  /** Release the session lock; the editor can still be read (generate, evaluate, export), not edited. */
  async close(): Promise<void> {
    this.session.close();
  }
}

/** The statistics corpus a session's manifest records (an absolute path), if it still exists; unvalidated (open() verifies the manifest). */
function recordedCorpus(dir: string): string | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as { stats?: Record<string, { corpus?: unknown }> };
    for (const v of Object.values(m.stats ?? {})) if (typeof v?.corpus === "string" && path.isAbsolute(v.corpus) && fs.existsSync(v.corpus)) return v.corpus;
  } catch {
    // no readable manifest: open() reports it
  }
  return undefined;
}

/** A parameter error caused by an hparams field names the file and the field. */
function attributeToHparams(e: unknown, h: HparamsMapping): unknown {
  if (!(e instanceof DeltaEditError) || e.code !== "E_CONFIG") return e;
  const param = e.context["field"];
  const from = h.mapped.find((x) => typeof param === "string" && x.to.split(/[ ,()]+/).includes(param)) ?? h.mapped.find((x) => e.message.includes(`${x.to.split(/[ ,]+/)[0]!} `));
  if (!from) return e;
  return new DeltaEditError("E_CONFIG", `${e.message} (set by field "${from.field}" = ${JSON.stringify(from.value)} of ${h.file})`, { ...(e.hint ? { hint: e.hint } : {}), context: { ...e.context, file: h.file, hparamsField: from.field }, cause: e });
}

