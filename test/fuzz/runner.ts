/**
 * Child process of the fuzz test: runs jobs[start..] of a job file through the CLI's `main()` in this
 * process, one after another, and prints one `@@FUZZ {json}` line per job. The parent supervises time
 * and memory and restarts it after a hang, a kill or a crash of this process.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { main } from "../../src/cli/main.js";

export interface FuzzJob {
  id: number;
  kind: string;
  what: string;
  argv: string[];
  /** Strings of which an error message must contain at least one (the file, field or tensor at fault). */
  culprit: string[];
  /** What must hold when the command exits 0. */
  check: { type: "none" } | { type: "finite-logits" } | { type: "export-in"; out: string; sha256: string[] } | { type: "no-garbage-ids" };
}

export interface FuzzResult {
  id: number;
  code: number;
  err: string;
  checkFailure: string | null;
}

function runCheck(job: FuzzJob, out: string, err: string): string | null {
  const c = job.check;
  if (c.type === "finite-logits") {
    const j = JSON.parse(out) as { logits: unknown[][] };
    for (const row of j.logits) for (const v of row) if (typeof v !== "number" || !Number.isFinite(v)) return `logits contain ${JSON.stringify(v)}`;
    return null;
  }
  if (c.type === "export-in") {
    const file = path.join(c.out, "model.safetensors");
    if (!fs.existsSync(file)) return "export reported success but wrote no model.safetensors";
    const h = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    return c.sha256.includes(h) ? null : "the exported weights match no prefix of the original session (a corrupted session was applied)";
  }
  if (c.type === "no-garbage-ids") {
    if (/\[object Object\]|case_id (undefined|NaN|null)\b/.test(err + out)) return "a case id was printed as garbage";
    return null;
  }
  return null;
}

async function run(): Promise<void> {
  const [jobFile, startArg] = process.argv.slice(2);
  const jobs = JSON.parse(fs.readFileSync(jobFile!, "utf8")) as FuzzJob[];
  for (let i = Number(startArg ?? 0); i < jobs.length; i++) {
    const job = jobs[i]!;
    let out = "";
    let err = "";
    const code = await main(job.argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
    let checkFailure: string | null = null;
    if (code === 0) {
      try {
        checkFailure = runCheck(job, out, err);
      } catch (e) {
        checkFailure = `check failed: ${(e as Error).message}`;
      }
    }
    const res: FuzzResult = { id: job.id, code, err: err.length > 4000 ? err.slice(0, 2000) + " … " + err.slice(-2000) : err, checkFailure };
    process.stdout.write(`@@FUZZ ${JSON.stringify(res)}\n`);
  }
}

await run();
