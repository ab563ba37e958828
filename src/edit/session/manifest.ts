/**
 * The manifest of a session (`manifest.json`): written once, atomically, when the session is
 * created, sealed with `sum` (sha256 of its canonical JSON without `sum`, see checksum.ts), and
 * validated field by field whenever it is read; every error names the file and the field.
 *
 *   { format: "deltaedit-session", version: 2, codeVersion, created,
 *     model: { source (absolute directory, or Hub repo id), hash (sha256 content hash, modelhash.ts),
 *              hashKind, modelType, numLayers, hidden, dFF },
 *     method, preset, overrides {}, params {}, batchSize (≥ 1), seed, threads (≥ 1),
 *     templates { memit: string[][], rome: string[] }, rngStateAfterTemplates (4 × u32), stats {}, sum }
 */
import { checkJsonDepth } from "../../model/boundedjson.js";
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { writeJsonAtomic } from "../../util/fsio.js";
import { METHOD_NAMES, type MethodName } from "../methods/method.js";
import type { ContextTemplates } from "../templates.js";
import { isSha256Hex, recordSum, sealed, SUM_FIELD } from "./checksum.js";
import { MODEL_HASH_KIND } from "./modelhash.js";

export const MANIFEST_FILE = "manifest.json";
export const SESSION_FORMAT = "deltaedit-session";
/** v2: journal records with seq + sum, factor files with sha256, model pinned by content hash. */
export const SESSION_VERSION = 2;

/** The model a session was started with. */
export interface ManifestModel {
  source: string; // absolute model directory, or a Hub repo id
  hash: string; // content hash (hashKind); "" only in hand-made manifests, refused unless the model check is skipped
  hashKind: string;
  modelType: string;
  numLayers: number;
  hidden: number; // C
  dFF: number; // F
}

/** A session's manifest.json (docs/formats.md). */
export interface Manifest {
  format: typeof SESSION_FORMAT;
  version: number;
  codeVersion: string;
  created: string;
  model: ManifestModel;
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
  sum: string;
}

function bad(file: string, fieldName: string | null, what: string, hint?: string): DeltaEditError {
  return new DeltaEditError("E_SESSION", `${file}: ${fieldName === null ? "" : `field "${fieldName}" `}${what}`, {
    hint: hint ?? "the session's manifest was modified or damaged; restore it from a copy, or start a new session",
    context: fieldName === null ? { file } : { file, field: fieldName },
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const show = (v: unknown): string => (v === undefined ? "nothing" : (JSON.stringify(v) ?? String(v)).slice(0, 60));

/** Write the sealed manifest atomically; returns it with its `sum`. */
export function writeManifest(file: string, m: Omit<Manifest, "sum">): Manifest {
  const s = sealed(m) as Manifest;
  writeJsonAtomic(file, s);
  return s;
}

/**
 * Read and validate `file`. `requireModelHash`: an empty model hash is an error (the caller skips the
 * model check only on the user's explicit request).
 */
export function readManifest(file: string, opts: { requireModelHash: boolean }): Manifest {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw bad(file, null, "missing (not a session directory)", "give the directory an `edit` run created");
    throw new DeltaEditError("E_IO", `${file}: cannot read (${(e as Error).message})`, { cause: e, context: { file } });
  }
  let v: unknown;
  checkJsonDepth(Buffer.from(text, "utf8"), file);
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(file, null, `not valid JSON (${(e as Error).message}): the manifest is truncated or damaged`);
  }
  return validateManifest(file, v, opts);
}

export function validateManifest(file: string, v: unknown, opts: { requireModelHash: boolean }): Manifest {
  if (!isObject(v)) throw bad(file, null, `is not a session manifest (a JSON object), got ${show(v)}`);
  if (v["format"] !== SESSION_FORMAT) throw bad(file, "format", `must be "${SESSION_FORMAT}", got ${show(v["format"])}`);
  if (v["version"] !== SESSION_VERSION) {
    throw bad(file, "version", `is ${show(v["version"])}: session format version ${show(v["version"])} is not supported (this deltaedit reads version ${SESSION_VERSION}: checksummed journal and factor files, model pinned by its content hash)`, `use the deltaedit version that created the session (codeVersion ${show(v["codeVersion"])}) to export it, or re-run its edit stream in a new session`);
  }
  const sum = v[SUM_FIELD];
  if (!isSha256Hex(sum)) throw bad(file, SUM_FIELD, `must be the manifest's sha256 checksum (64 hex digits), got ${show(sum)}`);
  if (recordSum(v) !== sum) throw bad(file, SUM_FIELD, "does not match the manifest's content (the manifest was altered)");
  const need = <T>(name: string, ok: (x: unknown) => x is T, what: string, from: Record<string, unknown> = v, prefix = ""): T => {
    const x = from[name];
    if (!ok(x)) throw bad(file, prefix + name, `must be ${what}, got ${show(x)}`);
    return x;
  };
  const isString = (x: unknown): x is string => typeof x === "string";
  const isNonEmpty = (x: unknown): x is string => typeof x === "string" && x.length > 0;
  const isPosInt = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 1;
  const isInt = (x: unknown): x is number => Number.isSafeInteger(x);
  need("codeVersion", isString, "a string");
  need("created", isString, "a string");
  const model = need("model", isObject, "an object");
  need("source", isNonEmpty, "a model directory or Hub repo id", model, "model.");
  const hash = need("hash", isString, "a string", model, "model.");
  if (hash === "") {
    if (opts.requireModelHash) throw bad(file, "model.hash", "is empty: the session does not pin its model, so replaying it onto the model found is unverified", "pass --skip-model-check to use the model anyway (the results are only right if it is the model the session was started with)");
  } else if (!isSha256Hex(hash)) throw bad(file, "model.hash", `must be a sha256 content hash (64 hex digits), got ${show(hash)}`);
  if (model["hashKind"] !== MODEL_HASH_KIND) throw bad(file, "model.hashKind", `must be "${MODEL_HASH_KIND}", got ${show(model["hashKind"])}`);
  need("modelType", isString, "a string", model, "model.");
  for (const k of ["numLayers", "hidden", "dFF"]) need(k, isPosInt, "a positive integer", model, "model.");
  const method = v["method"];
  if (typeof method !== "string" || !METHOD_NAMES.includes(method as MethodName)) throw bad(file, "method", `must be one of ${METHOD_NAMES.join(", ")}, got ${show(method)}`);
  need("preset", isString, "a string");
  need("overrides", isObject, "an object");
  need("params", isObject, "an object");
  need("batchSize", isPosInt, "a positive integer");
  need("seed", isInt, "an integer");
  need("threads", isPosInt, "a positive integer");
  const t = need("templates", isObject, "an object");
  const memit = t["memit"];
  if (!Array.isArray(memit) || !memit.every((g) => Array.isArray(g) && g.every(isString))) throw bad(file, "templates.memit", `must be an array of string arrays, got ${show(memit)}`);
  const rome = t["rome"];
  if (!Array.isArray(rome) || !rome.every(isString)) throw bad(file, "templates.rome", `must be an array of strings, got ${show(rome)}`);
  const rng = v["rngStateAfterTemplates"];
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) throw bad(file, "rngStateAfterTemplates", `must be 4 unsigned 32-bit integers, got ${show(rng)}`);
  need("stats", isObject, "an object");
  return v as unknown as Manifest;
}
