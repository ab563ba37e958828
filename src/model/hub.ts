/**
 * Resolve a model argument to a local directory: an existing directory, or a Hugging Face Hub
 * repo id looked up in (and, when online, downloaded into) the standard huggingface_hub cache:
 *
 *   <cache>/models--{org}--{name}/refs/{revision}          file holding the commit hash
 *   <cache>/models--{org}--{name}/snapshots/{commit}/{f}   relative symlink → ../../blobs/{etag}
 *   <cache>/models--{org}--{name}/blobs/{etag}             file content
 *
 * <cache> = $HF_HUB_CACHE ?? ($HF_HOME ?? ~/.cache/huggingface)/hub, so a cache filled by Python
 * (transformers, huggingface-cli) is reused and vice versa. A complete cached snapshot is
 * returned with no network access. Offline mode: `opts.offline` or HF_HUB_OFFLINE=1.
 *
 * Nothing the server says is used as a path unchecked: the commit (`x-repo-commit`) must be 40
 * lowercase hex characters, an ETag (the blob's file name) a plain name, every file name (shards
 * listed by the index) a relative path without `..`, `.`, empty components, backslashes or NUL;
 * a violation is DeltaEditError("E_NETWORK") naming the header or file, raised before anything is
 * written, and every path written is checked to lie inside the repo's cache directory. A ref file
 * holding anything but a commit hash is a cache miss. Refs are written atomically (util/fsio);
 * JSON files larger than LIMITS.maxJsonFileBytes are refused while downloading.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { writeAll, writeFileAtomic } from "../util/fsio.js";
import { brief, readBoundedJson } from "./boundedjson.js";
import { LIMITS, limitError } from "./limits.js";
import { unsafeRelativePathReason } from "./relpath.js";

/** Options of `resolveModelDir`: Hub revision, offline mode, log. */
export interface ResolveOptions {
  /** Branch, tag or commit hash; default "main". */
  revision?: string;
  /** Never touch the network (also: env HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** Progress sink (download sizes, MB/s, ETA). */
  log?: (msg: string) => void;
}

const REQUIRED_FILES = ["config.json", "tokenizer.json"] as const;
const OPTIONAL_FILES = ["tokenizer_config.json", "generation_config.json"] as const;
const SINGLE_WEIGHTS = "model.safetensors";
const INDEX_WEIGHTS = "model.safetensors.index.json";
/** Minimum interval between progress messages for one file. */
const PROGRESS_INTERVAL_MS = 2000;
const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

function envFlag(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && ["1", "true", "yes", "on"].includes(v.toLowerCase());
}

function hfHome(): string {
  return process.env["HF_HOME"] ?? path.join(os.homedir(), ".cache", "huggingface");
}

/** The huggingface_hub cache root in effect. */
export function hubCacheDir(): string {
  return process.env["HF_HUB_CACHE"] ?? process.env["HUGGINGFACE_HUB_CACHE"] ?? path.join(hfHome(), "hub");
}

function repoCacheDir(repoId: string): string {
  return path.join(hubCacheDir(), `models--${repoId.split("/").join("--")}`);
}

/** Resolves `idOrPath` to a local model directory (see the module comment). */
export async function resolveModelDir(idOrPath: string, opts: ResolveOptions = {}): Promise<string> {
  if (fs.existsSync(idOrPath)) {
    if (fs.statSync(idOrPath).isDirectory()) return idOrPath;
    throw new DeltaEditError("E_NOT_FOUND", `${idOrPath} is a file; expected a model directory (config.json, model.safetensors, tokenizer.json) or a Hub repo id`, {
      context: { path: idOrPath },
    });
  }
  const looksLikePath = idOrPath.startsWith(".") || idOrPath.startsWith("/") || idOrPath.startsWith("~") || idOrPath.includes("\\");
  if (looksLikePath || !REPO_ID.test(idOrPath) || idOrPath.includes("--") || idOrPath.includes("..")) {
    throw new DeltaEditError("E_NOT_FOUND", `"${idOrPath}" is neither an existing directory nor a Hugging Face repo id (like gpt2-xl or meta-llama/Meta-Llama-3-8B)`, {
      hint: "check the path, or pass a repo id",
      context: { path: idOrPath },
    });
  }
  const repoId = idOrPath;
  const revision = opts.revision ?? "main";
  const badRevision = unsafeRelativePathReason(revision);
  if (badRevision !== null) {
    throw new DeltaEditError("E_ARG", `revision ${brief(revision)} is not a branch, tag or commit name (${badRevision})`, { context: { revision } });
  }
  const repoDir = repoCacheDir(repoId);
  const cached = findCachedSnapshot(repoDir, revision);
  if (cached.dir !== null) return cached.dir;

  if (opts.offline === true || envFlag("HF_HUB_OFFLINE") || envFlag("TRANSFORMERS_OFFLINE")) {
    throw new DeltaEditError("E_NOT_FOUND", `model "${repoId}" (revision ${revision}) is not in the Hugging Face cache and offline mode is on; searched ${repoDir} (${cached.why})`, {
      hint: "go online (unset HF_HUB_OFFLINE / drop --offline) to download it, set HF_HUB_CACHE to a cache that holds it, or pass a local model directory",
      context: { repoId, revision, cacheDir: repoDir },
    });
  }
  return download(repoId, revision, repoDir, opts.log ?? (() => {}));
}

// ---------------------------------------------------------------------------------------------
// Cache lookup

function isCommitHash(s: unknown): s is string {
  return typeof s === "string" && /^[0-9a-f]{40}$/.test(s);
}

/** Throws unless `p` lies strictly inside `root` (defence in depth: every written path is built from checked parts). */
function assertInside(root: string, p: string): void {
  const rel = path.relative(root, p);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) {
    throw new DeltaEditError("E_NETWORK", `refusing to write ${p}: outside the cache directory ${root}`, { context: { path: p, root } });
  }
}

/** Missing files of a snapshot directory (empty when complete). Follows symlinks into blobs. */
function missingInSnapshot(snap: string): string[] {
  const missing: string[] = REQUIRED_FILES.filter((f) => !fs.existsSync(path.join(snap, f)));
  if (fs.existsSync(path.join(snap, SINGLE_WEIGHTS))) return missing;
  const index = path.join(snap, INDEX_WEIGHTS);
  if (!fs.existsSync(index)) return [...missing, `${SINGLE_WEIGHTS} or ${INDEX_WEIGHTS}`];
  let shards: string[];
  try {
    shards = shardFiles(readBoundedJson(index, "E_CHECKPOINT")?.value, index);
  } catch {
    return [...missing, `${INDEX_WEIGHTS} (unreadable)`];
  }
  return [...missing, ...shards.filter((f) => !fs.existsSync(path.join(snap, f)))];
}

function findCachedSnapshot(repoDir: string, revision: string): { dir: string | null; why: string } {
  if (!fs.existsSync(repoDir)) return { dir: null, why: "repo not cached" };
  let commit = revision;
  if (!isCommitHash(revision)) {
    const ref = path.join(repoDir, "refs", revision);
    if (!fs.existsSync(ref)) return { dir: null, why: `no refs/${revision}` };
    commit = fs.readFileSync(ref, "utf8").trim();
    if (!isCommitHash(commit)) return { dir: null, why: `refs/${revision} does not hold a commit hash` };
  }
  const snap = path.join(repoDir, "snapshots", commit);
  if (!fs.existsSync(snap)) return { dir: null, why: `snapshot ${commit} missing` };
  const missing = missingInSnapshot(snap);
  if (missing.length > 0) return { dir: null, why: `snapshot ${commit} lacks ${missing.join(", ")}` };
  return { dir: snap, why: "" };
}

function shardFiles(index: unknown, source: string): string[] {
  const wm = typeof index === "object" && index !== null ? (index as Record<string, unknown>)["weight_map"] : undefined;
  if (typeof wm !== "object" || wm === null) throw new DeltaEditError("E_CHECKPOINT", `${source}: missing "weight_map" object`, { context: { file: source } });
  const files = new Set<string>();
  for (const f of Object.values(wm as Record<string, unknown>)) {
    const why = unsafeRelativePathReason(f);
    if (why !== null) {
      throw new DeltaEditError("E_CHECKPOINT", `${source}: invalid shard file name ${brief(f)} in weight_map (${why})`, { context: { file: source, shard: brief(f) } });
    }
    files.add(f as string);
  }
  return [...files].sort();
}

// ---------------------------------------------------------------------------------------------
// Download

function readToken(): string | undefined {
  const env = process.env["HF_TOKEN"]?.trim();
  if (env) return env;
  const file = process.env["HF_TOKEN_PATH"] ?? path.join(hfHome(), "token");
  try {
    const t = fs.readFileSync(file, "utf8").trim();
    return t.length > 0 ? t : undefined;
  } catch {
    return undefined;
  }
}

interface FileMeta {
  commit: string | null;
  etag: string;
  size: number | null;
}

interface Ctx {
  repoId: string;
  revision: string;
  repoDir: string;
  endpoint: string;
  headers: Record<string, string>;
  log: (msg: string) => void;
  /** Commit of the first response; every file goes into this snapshot. */
  commit: string | null;
}

async function download(repoId: string, revision: string, repoDir: string, log: (msg: string) => void): Promise<string> {
  const token = readToken();
  const ctx: Ctx = {
    repoId,
    revision,
    repoDir,
    endpoint: (process.env["HF_ENDPOINT"] ?? "https://huggingface.co").replace(/\/+$/, ""),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    log,
    commit: isCommitHash(revision) ? revision : null,
  };
  log(`downloading ${repoId} (revision ${revision}) into ${repoDir}`);
  for (const f of REQUIRED_FILES) await fetchFile(ctx, f, true);
  for (const f of OPTIONAL_FILES) await fetchFile(ctx, f, false);
  const single = await fetchFile(ctx, SINGLE_WEIGHTS, false);
  if (single === null) {
    const index = await fetchFile(ctx, INDEX_WEIGHTS, false);
    if (index === null) {
      throw new DeltaEditError("E_NOT_FOUND", `${repoId}: the repo has neither ${SINGLE_WEIGHTS} nor ${INDEX_WEIGHTS} (revision ${revision})`, {
        hint: "deltaedit needs safetensors weights; convert PyTorch weights with transformers' save_pretrained(..., safe_serialization=True) and pass the local directory",
        context: { repoId, revision },
      });
    }
    let shards: string[];
    try {
      shards = shardFiles(readBoundedJson(index, "E_CHECKPOINT")?.value, `${repoId}/${INDEX_WEIGHTS}`);
    } catch (e) {
      // the index came from the server: a hostile or broken one is a network-side failure
      throw e instanceof DeltaEditError ? new DeltaEditError(e.code === "E_LIMIT" ? "E_LIMIT" : "E_NETWORK", e.message, { cause: e, context: e.context }) : e;
    }
    for (const shard of shards) await fetchFile(ctx, shard, true);
  }
  const commit = ctx.commit ?? revision;
  if (commit !== revision) {
    const ref = path.join(repoDir, "refs", revision);
    assertInside(repoDir, ref);
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    writeFileAtomic(ref, commit);
  }
  const snap = path.join(repoDir, "snapshots", commit);
  const missing = missingInSnapshot(snap);
  if (missing.length > 0) throw new DeltaEditError("E_NETWORK", `${repoId}: download finished but snapshot ${snap} lacks ${missing.join(", ")}`);
  return snap;
}

function fileUrl(ctx: Ctx, file: string): string {
  const repo = ctx.repoId.split("/").map(encodeURIComponent).join("/");
  return `${ctx.endpoint}/${repo}/resolve/${encodeURIComponent(ctx.revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as Error & { cause?: unknown }).cause;
    throw new DeltaEditError("E_NETWORK", `request to ${url} failed: ${(e as Error).message}${cause === undefined ? "" : ` (${String(cause)})`}`, {
      cause: e,
      hint: "check the network connection and HF_ENDPOINT, or run offline with a cached model / local directory",
      context: { url },
    });
  }
}

/** Throws the DeltaEditError for a failed HTTP status; `null` for a 404 of an optional file. */
function checkStatus(ctx: Ctx, res: Response, url: string, file: string, required: boolean): "ok" | "missing" {
  if (res.ok || (res.status >= 300 && res.status < 400)) return "ok";
  if (res.status === 401 || res.status === 403) {
    throw new DeltaEditError("E_NETWORK", `HTTP ${res.status} for ${url}: ${ctx.repoId} is private, gated or does not exist (set HF_TOKEN to a token with access)`, {
      hint: "accept the model's licence on huggingface.co if it is gated, and set HF_TOKEN (or log in with huggingface-cli) to a token with access",
      context: { url, status: res.status, repoId: ctx.repoId },
    });
  }
  if (res.status === 404) {
    if (!required) return "missing";
    throw new DeltaEditError("E_NOT_FOUND", `${ctx.repoId}: file "${file}" not found at revision ${ctx.revision} (HTTP 404 for ${url})`, {
      hint: "check the repo id and revision",
      context: { url, repoId: ctx.repoId, file },
    });
  }
  throw new DeltaEditError("E_NETWORK", `HTTP ${res.status} ${res.statusText} for ${url}`, { context: { url, status: res.status } });
}

/** The ETag as a blob file name: a weak/quoted ETag unwrapped; null when absent; E_NETWORK when unusable as a name. */
function cleanEtag(v: string | null, header: string, url: string): string | null {
  if (v === null) return null;
  const e = v.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(e) || e.includes("..")) {
    throw new DeltaEditError("E_NETWORK", `${url}: the server's ${header} header ${brief(v)} is not a plain file name; refusing to use it as a cache path`, {
      hint: "check HF_ENDPOINT: the server does not behave like the Hugging Face Hub",
      context: { url, header },
    });
  }
  return e;
}

/** The commit the server reports, checked to be 40 lowercase hex characters; null when absent. */
function repoCommit(v: string | null, url: string): string | null {
  if (v === null) return null;
  if (!isCommitHash(v)) {
    throw new DeltaEditError("E_NETWORK", `${url}: the server's x-repo-commit header ${brief(v)} is not a 40-character lowercase hex commit hash; refusing to use it as a cache path`, {
      hint: "check HF_ENDPOINT: the server does not behave like the Hugging Face Hub",
      context: { url, header: "x-repo-commit" },
    });
  }
  return v;
}

/** HEAD without following cross-host redirects: the Hub's metadata headers sit on the 302. */
async function fetchMeta(ctx: Ctx, url: string, file: string, required: boolean): Promise<FileMeta | null> {
  let current = url;
  for (let hop = 0; hop < 5; hop++) {
    const res = await request(current, { method: "HEAD", redirect: "manual", headers: { ...ctx.headers, "accept-encoding": "identity" } });
    if (checkStatus(ctx, res, current, file, required) === "missing") return null;
    const location = res.headers.get("location");
    const isRedirect = res.status >= 300 && res.status < 400 && location !== null;
    const etagHeader = res.headers.get("x-linked-etag") !== null ? "x-linked-etag" : "etag";
    const etag = cleanEtag(res.headers.get(etagHeader), etagHeader, current);
    // Relative redirects (renamed repos) are followed; absolute ones point at the CDN.
    if (isRedirect && etag === null && location.startsWith("/")) {
      current = new URL(location, current).toString();
      continue;
    }
    if (etag === null) throw new DeltaEditError("E_NETWORK", `${url}: response has no ETag; cannot place the file in the Hugging Face cache`, { context: { url } });
    const sizeHeader = res.headers.get("x-linked-size") ?? (isRedirect ? null : res.headers.get("content-length"));
    const size = sizeHeader === null ? null : Number(sizeHeader);
    return { commit: repoCommit(res.headers.get("x-repo-commit"), current), etag, size: size !== null && Number.isSafeInteger(size) && size >= 0 ? size : null };
  }
  throw new DeltaEditError("E_NETWORK", `${url}: too many redirects`, { context: { url } });
}

/** Downloads `file` into blobs/ + snapshot symlink; returns the snapshot path, or null if an optional file is absent. */
async function fetchFile(ctx: Ctx, file: string, required: boolean): Promise<string | null> {
  const url = fileUrl(ctx, file);
  const badName = unsafeRelativePathReason(file);
  if (badName !== null) throw new DeltaEditError("E_NETWORK", `${ctx.repoId}: refusing file name ${brief(file)} (${badName})`, { context: { repoId: ctx.repoId, file: brief(file) } });
  const meta = await fetchMeta(ctx, url, file, required);
  if (meta === null) return null;
  if (meta.commit === null && ctx.commit === null) {
    throw new DeltaEditError("E_NETWORK", `${url}: the response has no x-repo-commit header; cannot tell which commit revision "${ctx.revision}" is`, {
      hint: "check HF_ENDPOINT, or pass a 40-character commit hash as the revision",
      context: { url, header: "x-repo-commit" },
    });
  }
  if (meta.commit !== null && ctx.commit !== null && meta.commit !== ctx.commit) {
    throw new DeltaEditError("E_NETWORK", `${url}: x-repo-commit ${meta.commit} differs from ${ctx.commit} of the files before it (revision "${ctx.revision}" moved during the download?)`, {
      hint: "retry, or pass a commit hash as the revision",
      context: { url, header: "x-repo-commit" },
    });
  }
  if (ctx.commit === null) ctx.commit = meta.commit;
  const commit = ctx.commit as string;
  const blobsDir = path.join(ctx.repoDir, "blobs");
  const blob = path.join(blobsDir, meta.etag);
  const snapFile = path.join(ctx.repoDir, "snapshots", commit, file);
  assertInside(blobsDir, blob);
  assertInside(path.join(ctx.repoDir, "snapshots", commit), snapFile);
  assertInside(ctx.repoDir, snapFile);
  const maxBytes = file.endsWith(".json") ? LIMITS.maxJsonFileBytes : null;
  if (maxBytes !== null && meta.size !== null && meta.size > maxBytes) {
    throw limitError(`${ctx.repoId}/${file}`, "size in bytes announced by the server", meta.size, "maxJsonFileBytes", { url, file });
  }
  fs.mkdirSync(blobsDir, { recursive: true });
  fs.mkdirSync(path.dirname(snapFile), { recursive: true });
  if (!fs.existsSync(blob)) await downloadBlob(ctx, url, file, blob, meta.size, maxBytes);
  else ctx.log(`${ctx.repoId}/${file}: already cached`);
  fs.rmSync(snapFile, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(snapFile), blob), snapFile);
  } catch {
    fs.copyFileSync(blob, snapFile); // filesystems without symlinks (as huggingface_hub does)
  }
  return snapFile;
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60)}s` : `${Math.round(s)}s`;
}

async function downloadBlob(ctx: Ctx, url: string, file: string, blob: string, expected: number | null, maxBytes: number | null): Promise<void> {
  const res = await request(url, { headers: { ...ctx.headers, "accept-encoding": "identity" } });
  checkStatus(ctx, res, url, file, true);
  if (res.body === null) throw new DeltaEditError("E_NETWORK", `${url}: empty response body`, { context: { url } });
  const total = expected ?? (res.headers.get("content-length") === null ? null : Number(res.headers.get("content-length")));
  const incomplete = `${blob}.incomplete`;
  const fd = fs.openSync(incomplete, "w");
  const start = Date.now();
  let lastLog = start;
  let bytes = 0;
  const label = `${ctx.repoId}/${file}`;
  try {
    const reader = res.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new DeltaEditError("E_NETWORK", `download of ${url} interrupted after ${bytes} bytes: ${(e as Error).message}`, { cause: e, context: { url } });
      }
      if (chunk.done) break;
      if (maxBytes !== null && bytes + chunk.value.length > maxBytes) {
        await reader.cancel().catch(() => {});
        throw limitError(`${ctx.repoId}/${file}`, "size in bytes of the download", `more than ${bytes + chunk.value.length}`, "maxJsonFileBytes", { url, file });
      }
      writeAll(fd, chunk.value, incomplete);
      bytes += chunk.value.length;
      const now = Date.now();
      if (now - lastLog >= PROGRESS_INTERVAL_MS) {
        lastLog = now;
        const rate = bytes / 1e6 / ((now - start) / 1000);
        const eta = total === null ? "" : `, ETA ${fmtSeconds((total - bytes) / 1e6 / rate)}`;
        ctx.log(`${label}: ${(bytes / 1e6).toFixed(1)}${total === null ? "" : `/${(total / 1e6).toFixed(1)}`} MB (${rate.toFixed(1)} MB/s${eta})`);
      }
    }
    fs.closeSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(incomplete, { force: true });
    throw e;
  }
  if (total !== null && Number.isSafeInteger(total) && bytes !== total) {
    fs.rmSync(incomplete, { force: true });
    throw new DeltaEditError("E_NETWORK", `download of ${url} is incomplete: got ${bytes} bytes, expected ${total}`, { context: { url } });
  }
  fs.renameSync(incomplete, blob);
  const secs = (Date.now() - start) / 1000;
  ctx.log(`${label}: ${(bytes / 1e6).toFixed(1)} MB in ${fmtSeconds(secs)} (${(bytes / 1e6 / Math.max(secs, 1e-3)).toFixed(1)} MB/s)`);
}
