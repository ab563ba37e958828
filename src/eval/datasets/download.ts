/**
 * Dataset files of evaluation spec §1.1, downloaded once into a cache directory.
 *
 * - Remote root: `https://memit.baulab.info/data/dsets/` (override: `opts.baseUrl` or env
 *   `DELTAEDIT_DATA_URL`, e.g. a mirror or a local test server).
 * - Cache: `opts.cacheDir`, else `$DELTAEDIT_CACHE/data`, else `~/.cache/deltaedit/data`.
 * - A download streams into `<name>.<pid>.<time>.part` next to the target and is renamed into
 *   place only when complete, so an interrupted download never leaves a truncated file.
 * - Offline (`opts.offline` or env `DELTAEDIT_OFFLINE=1`) with no cached file → E_NOT_FOUND;
 *   a network or HTTP failure → E_NETWORK. Both name the URL and the path where the file can be
 *   put by hand.
 */
import { writeAll } from "../../util/fsio.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import type { DatasetKind } from "./record.js";

export const DEFAULT_DATA_URL = "https://memit.baulab.info/data/dsets/";

/** The files the evaluation may need (§1.1). */
export const DATASET_FILES = ["counterfact.json", "multi_counterfact.json", "zsre_mend_eval.json", "attribute_snippets.json", "idf.npy", "tfidf_vocab.json", "known_1000.json"] as const;
export type DatasetFile = (typeof DATASET_FILES)[number];

/** The data file of a dataset kind. */
export function datasetFileName(kind: DatasetKind): DatasetFile {
  return kind === "cf" ? "counterfact.json" : kind === "mcf" ? "multi_counterfact.json" : "zsre_mend_eval.json";
}

/** Options of `ensureDataset`: cache directory, offline mode, mirror. */
export interface EnsureOptions {
  cacheDir?: string;
  offline?: boolean;
  baseUrl?: string;
  /** Progress and status lines. */
  log?: (msg: string) => void;
}

export function defaultDataDir(): string {
  return path.join(process.env["DELTAEDIT_CACHE"] ?? path.join(os.homedir(), ".cache", "deltaedit"), "data");
}

function envFlag(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/** The URL a file is downloaded from. */
export function datasetUrl(name: string, baseUrl?: string): string {
  const base = baseUrl ?? process.env["DELTAEDIT_DATA_URL"] ?? DEFAULT_DATA_URL;
  return base.endsWith("/") ? base + name : base + "/" + name;
}

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/**
 * The local path of dataset file `name`, downloading it first when it is not cached.
 * Returns the absolute path of the cached file.
 */
export async function ensureDataset(name: DatasetFile | string, opts: EnsureOptions = {}): Promise<string> {
  if (!/^[\w.-]+$/.test(name)) throw new DeltaEditError("E_ARG", `ensureDataset: bad file name ${JSON.stringify(name)} (expected one of ${DATASET_FILES.join(", ")})`);
  const dir = opts.cacheDir ?? defaultDataDir();
  const dest = path.resolve(dir, name);
  if (fs.existsSync(dest)) return dest;
  const url = datasetUrl(name, opts.baseUrl);
  const manual = `download ${url} and save it as ${dest}`;
  if (opts.offline === true || envFlag("DELTAEDIT_OFFLINE")) {
    throw new DeltaEditError("E_NOT_FOUND", `dataset file ${name} is not in the cache (${dest}) and offline mode is on; it is downloaded from ${url}`, {
      hint: `go online (drop --offline / unset DELTAEDIT_OFFLINE), or ${manual}`,
      context: { url, path: dest },
    });
  }
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${dest}.${process.pid}.${Date.now()}.part`;
  const log = opts.log;
  const fail = (why: string, cause?: unknown): never => {
    fs.rmSync(tmp, { force: true });
    throw new DeltaEditError("E_NETWORK", `cannot download ${url}: ${why}; expected file: ${dest}`, { hint: `check the network, or ${manual}`, context: { url, path: dest }, cause });
  };
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    return fail((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message, e);
  }
  if (!res.ok || !res.body) return fail(`HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get("content-length") ?? NaN);
  log?.(`downloading ${url} → ${dest}${Number.isFinite(total) ? ` (${fmtBytes(total)})` : ""}`);
  let got = 0;
  let lastReport = 0;
  const fd = fs.openSync(tmp, "w");
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      writeAll(fd, value, tmp);
      got += value.length;
      if (log && got - lastReport >= 8 << 20) {
        lastReport = got;
        log(`  ${name}: ${fmtBytes(got)}${Number.isFinite(total) && total > 0 ? ` / ${fmtBytes(total)} (${((100 * got) / total).toFixed(0)}%)` : ""}`);
      }
    }
  } catch (e) {
    fs.closeSync(fd);
    return fail(`transfer interrupted after ${fmtBytes(got)} (${(e as Error).message})`, e);
  }
  fs.closeSync(fd);
  if (Number.isFinite(total) && got !== total) return fail(`received ${got} bytes, expected ${total}`);
  fs.renameSync(tmp, dest);
  log?.(`  ${name}: done, ${fmtBytes(got)}`);
  return dest;
}
