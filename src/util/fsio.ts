/**
 * Checked file writes: every write loops until all bytes are on disk or fails with an E_IO error
 * naming the file, and atomic writes (temp + fsync + rename) remove their temporary file on every
 * error path. `fs.writeSync` may write fewer bytes than asked (a nearly full disk, a signal), so its
 * return value is never ignored.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";

/** Suffix of every temporary file or directory deltaedit creates (`<name>.tmp-<pid>`). */
export const TMP_MARK = ".tmp-";

function ioError(file: string, what: string, e: unknown): DeltaEditError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why = code === "ENOSPC" ? "no space left on device" : code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EROFS" ? "read-only file system" : e instanceof Error ? e.message : String(e);
  return new DeltaEditError("E_IO", `${file}: ${what} failed: ${why}`, { cause: e, context: { file } });
}

/**
 * Write all of `data` to `fd`, looping over short writes: at the current file position, or from
 * byte `position` on when given (positional writes do not move the file position).
 */
export function writeAll(fd: number, data: string | Uint8Array, file: string, position?: number): void {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let off = 0;
  let stalls = 0;
  while (off < buf.length) {
    let n: number;
    try {
      n = position === undefined ? fs.writeSync(fd, buf, off, buf.length - off) : fs.writeSync(fd, buf, off, buf.length - off, position + off);
    } catch (e) {
      throw ioError(file, "write", e);
    }
    if (n <= 0) {
      if (++stalls > 3) throw new DeltaEditError("E_IO", `${file}: write made no progress after ${off} of ${buf.length} bytes (disk full?)`, { context: { file } });
      continue;
    }
    stalls = 0;
    off += n;
  }
}

/**
 * Write `chunks` (consumed lazily) to a new temp file `tmp`, in full, then fsync and close it. The
 * caller renames or links it into place and removes it on error (the open's failure names `tmp`).
 */
function writeTemp(tmp: string, chunks: Iterable<string | Uint8Array>): void {
  let fd: number;
  try {
    fd = fs.openSync(tmp, "w");
  } catch (e) {
    throw ioError(tmp, "open", e);
  }
  try {
    for (const c of chunks) writeAll(fd, c, tmp);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Atomically replace `file` with `data` (temp + fsync + rename); the temp file never survives an error. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}${TMP_MARK}${process.pid}`;
  try {
    writeTemp(tmp, [data]);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e instanceof DeltaEditError ? e : ioError(file, "atomic write", e);
  }
}

/**
 * Create `file` from a stream of chunks, atomically and without replacing anything: the chunks go to
 * `<file>.tmp-<pid>` (each written in full, then fsync), which is then linked to `file` — failing
 * with E_IO naming `file` when it exists by then — and removed. Where the file system has no hard
 * links, the temp file is renamed after a last existence check. On every error the temp file is
 * removed and `file` does not exist. For files too large to build in memory (a GGUF model):
 * `chunks` is consumed lazily, one chunk at a time.
 */
export function createFileFromChunks(file: string, chunks: Iterable<Uint8Array>): void {
  if (fs.existsSync(file)) throw new DeltaEditError("E_IO", `${file}: already exists; nothing was written`, { context: { file } });
  const tmp = `${file}${TMP_MARK}${process.pid}`;
  try {
    writeTemp(tmp, chunks);
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException | undefined)?.code;
      if (code === "EEXIST") throw new DeltaEditError("E_IO", `${file}: created by someone else while it was being written; nothing was written`, { context: { file } });
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EXDEV" && code !== "ENOSYS") throw e;
      if (fs.existsSync(file)) throw new DeltaEditError("E_IO", `${file}: created by someone else while it was being written; nothing was written`, { context: { file } });
      fs.renameSync(tmp, file);
    }
    fs.rmSync(tmp, { force: true });
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    // ours, or a bug in a chunk producer (not an I/O failure): as it is
    if (e instanceof DeltaEditError || typeof (e as NodeJS.ErrnoException | undefined)?.code !== "string") throw e;
    throw ioError(file, "write", e);
  }
}

/** Atomically write `value` as pretty JSON with a trailing newline. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** Append `text` to `file` and fsync; on a short or failed write the file is truncated back to its old size. */
export function appendDurable(file: string, text: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, "a");
  } catch (e) {
    throw ioError(file, "open", e);
  }
  const before = fs.fstatSync(fd).size;
  try {
    writeAll(fd, text, file);
    fs.fsyncSync(fd);
  } catch (e) {
    try {
      fs.ftruncateSync(fd, before);
    } catch {
      // the caller's next open treats a fragment without newline as torn
    }
    throw e instanceof DeltaEditError ? e : ioError(file, "append", e);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Remove temporary files/directories (`*.tmp-<pid>`) in `dir` left by processes that no longer run.
 * Returns the removed names. Temporaries of live processes (another writer) are kept. With
 * `prefix`, only names starting with it are considered (a directory shared with other files, such
 * as the parent of an export target: `prefix` = "<target name>.tmp-").
 */
export function removeStaleTemporaries(dir: string, opts: { prefix?: string } = {}): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (opts.prefix !== undefined && !name.startsWith(opts.prefix)) continue;
    const i = name.lastIndexOf(TMP_MARK);
    if (i < 0) continue;
    const pid = Number(name.slice(i + TMP_MARK.length));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (pid !== process.pid && processAlive(pid)) continue;
    if (pid === process.pid) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** Whether a process with this pid exists on this host (EPERM counts as alive). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
