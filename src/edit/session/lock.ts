/**
 * The writer lock of a session directory: one process at a time may append to a session.
 *
 *   DIR/session.lock   {"pid": 1234, "host": "node7", "since": "2025-…Z", "command": "edit", "token": "<random hex>"}
 *
 * Taken atomically: the holder's record is written and fsynced to a temporary file which is then
 * hard-linked to `session.lock` (link fails if the name exists), so the lock file is never seen
 * half written (filesystems without hard links fall back to `open(…, "wx")` + write). A lock whose
 * holder ran on this host and no longer exists (killed, crashed) is stale and taken over: it is
 * renamed aside, and removed only if the file moved is still the stale one (its token), so two
 * processes that find the same stale lock cannot both take it. A lock from another host is never
 * taken over (its pid means nothing here): the error names the file to delete.
 *
 * The holder re-reads the lock before every journal append (`assertHeld`), so a writer whose lock
 * was removed by hand stops instead of interleaving with another. `release` deletes the file only
 * while it holds our token. Signals: a killed writer leaves its lock behind, which the next writer
 * on the same host finds stale (the CLI installs no signal handlers: edits run synchronously).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { processAlive, TMP_MARK, writeAll } from "../../util/fsio.js";

export const LOCK_FILE = "session.lock";

export interface LockHolder {
  pid: number;
  host: string;
  since: string; // ISO time the lock was taken
  command: string; // what took it (edit, undo, export, bench)
  token: string; // random; identifies this lock instance
}

const TAKE_ATTEMPTS = 5;

function parseHolder(text: string): LockHolder | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (o === null || typeof o !== "object" || !Number.isInteger(o["pid"]) || typeof o["host"] !== "string" || typeof o["since"] !== "string" || typeof o["token"] !== "string") return null;
    return { pid: o["pid"] as number, host: o["host"], since: o["since"], command: typeof o["command"] === "string" ? o["command"] : "?", token: o["token"] };
  } catch {
    return null;
  }
}

/** The holder recorded in `file`: null when the file does not exist, "unreadable" when it is not a lock record. */
export function readLockHolder(file: string): LockHolder | null | "unreadable" {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new DeltaEditError("E_IO", `${file}: cannot read the session lock (${(e as Error).message})`, { cause: e, context: { file } });
  }
  return parseHolder(text) ?? "unreadable";
}

function describe(h: LockHolder): string {
  return `pid ${h.pid} on host ${h.host} (${h.command}, since ${h.since})`;
}

function lockedError(dir: string, file: string, h: LockHolder): DeltaEditError {
  const self = h.pid === process.pid && h.host === os.hostname();
  return new DeltaEditError("E_LOCKED", `${dir}: the session is locked by ${describe(h)}${self ? " — this process" : ""}`, {
    hint: h.host === os.hostname() ? `wait until it finishes; only one edit, undo or export may use a session at a time` : `it runs on another host: wait until it finishes, or delete ${file} if it no longer runs there`,
    context: { file, holder: h },
  });
}

export class SessionLock {
  private held: boolean;

  private constructor(
    readonly dir: string,
    readonly file: string,
    readonly holder: LockHolder,
  ) {
    this.held = true;
  }

  /**
   * Take the writer lock of `dir` (which must exist), or throw E_LOCKED naming the holder.
   * A stale lock (same host, holder no longer running) is taken over, reported through `log`.
   */
  static acquire(dir: string, command: string, log: (msg: string) => void = () => {}): SessionLock {
    const file = path.join(dir, LOCK_FILE);
    const holder: LockHolder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), command, token: crypto.randomBytes(16).toString("hex") };
    for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
      if (tryCreate(file, JSON.stringify(holder) + "\n")) return new SessionLock(dir, file, holder);
      const h = readLockHolder(file);
      if (h === null) continue; // released in between: try again
      if (h === "unreadable") {
        throw new DeltaEditError("E_LOCKED", `${file}: the session lock exists but is not a lock record (written by something else?)`, { hint: `if no deltaedit process uses ${dir}, delete ${file}`, context: { file } });
      }
      if (h.host !== os.hostname() || h.pid === process.pid || processAlive(h.pid)) throw lockedError(dir, file, h);
      if (removeIfStill(file, h)) log(`note: took over the stale lock of ${describe(h)}: that process no longer runs`);
    }
    const h = readLockHolder(file);
    if (h !== null && h !== "unreadable") throw lockedError(dir, file, h);
    throw new DeltaEditError("E_LOCKED", `${file}: could not take the session lock after ${TAKE_ATTEMPTS} attempts (other processes are taking it)`, { context: { file } });
  }

  /** Throws E_LOCKED unless the lock file still holds our token (call before every write). */
  assertHeld(): void {
    const h = this.held ? readLockHolder(this.file) : null;
    if (h !== null && h !== "unreadable" && h.token === this.holder.token) return;
    throw new DeltaEditError("E_LOCKED", `${this.dir}: this process no longer holds the session lock ${this.file} (${h === null ? "it was removed" : h === "unreadable" ? "it was overwritten" : `now held by ${describe(h)}`}); stopping before writing`, {
      context: { file: this.file },
    });
  }

  /** Remove the lock file if it is still ours. Idempotent. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const h = readLockHolder(this.file);
    if (h !== null && h !== "unreadable" && h.token === this.holder.token) fs.rmSync(this.file, { force: true });
  }
}

/** Create `file` holding `text` atomically; false if it exists. */
function tryCreate(file: string, text: string): boolean {
  const tmp = `${file}${TMP_MARK}${process.pid}`;
  writeSmall(tmp, text, "w");
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS" && code !== "EXDEV") {
      throw new DeltaEditError("E_IO", `${file}: cannot create the session lock (${(e as Error).message})`, { cause: e, context: { file } });
    }
    // no hard links here: exclusive create, then write (a crash in between leaves an unreadable lock)
    try {
      writeSmall(file, text, "wx");
      return true;
    } catch (e2) {
      if (e2 instanceof DeltaEditError && (e2.cause as NodeJS.ErrnoException | undefined)?.code === "EEXIST") return false;
      throw e2;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function writeSmall(file: string, text: string, flags: "w" | "wx"): void {
  let fd: number;
  try {
    fd = fs.openSync(file, flags);
  } catch (e) {
    throw new DeltaEditError("E_IO", `${file}: cannot create (${(e as Error).message})`, { cause: e, context: { file } });
  }
  try {
    writeAll(fd, text, file);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw e;
  }
  fs.closeSync(fd);
}

/**
 * Remove the stale lock `h` from `file`: rename it aside, then check that what moved is still `h`
 * (another process may have taken over and locked in between); if not, put it back. True if removed.
 */
function removeIfStill(file: string, h: LockHolder): boolean {
  const aside = `${file}.stale${TMP_MARK}${process.pid}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new DeltaEditError("E_IO", `${file}: cannot remove the stale session lock (${(e as Error).message})`, { cause: e, context: { file } });
  }
  try {
    const moved = readLockHolder(aside);
    if (moved !== null && moved !== "unreadable" && moved.token === h.token) return true;
    try {
      fs.linkSync(aside, file); // a live lock taken in between: restore it (fails only if yet another took the name)
    } catch {
      // the name was taken again meanwhile; that holder's lock stands and the displaced one sees it lost (assertHeld)
    }
    return false;
  } finally {
    fs.rmSync(aside, { force: true });
  }
}
