/**
 * Durable stages of the `paper` run: each stage's output is one JSON file
 * `<out>/stages/<name>.json`, written atomically (temp + fsync + rename) when the stage completes,
 * so a file is there iff the stage finished. A rerun with `resume` skips a stage whose file exists
 * and whose recorded `inputs` (the stage's own inputs, e.g. the methods it analysed) equal the
 * current ones; deleting a stage's file makes the next resume recompute that stage only.
 *
 * Stage file: { format: "deltaedit-paper-stage", version: 1, stage, inputs, completed (ISO 8601),
 * seconds, data }.
 *
 * The run's configuration (`<out>/paper-config.json`) is written when a run starts; a resume with a
 * different configuration is refused (naming the fields that differ), since its stages would mix.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { writeJsonAtomic } from "../../util/fsio.js";

export const STAGE_FORMAT = "deltaedit-paper-stage";
export const STAGE_VERSION = 1;
export const STAGES_DIR = "stages";
export const CONFIG_FILE = "paper-config.json";

/** One completed stage's file. */
export interface StageRecord<T> {
  format: typeof STAGE_FORMAT;
  version: number;
  stage: string;
  inputs: string; // canonical JSON of the stage's inputs
  completed: string;
  seconds: number;
  data: T;
}

/** The stage files of one output directory. */
export class StageStore {
  readonly dir: string;

  constructor(out: string) {
    this.dir = path.join(out, STAGES_DIR);
  }

  /** `bench:memit` → `<out>/stages/bench-memit.json`. */
  file(stage: string): string {
    return path.join(this.dir, `${stage.replace(/[^A-Za-z0-9._-]/g, "-")}.json`);
  }

  /** The completed stage with these inputs, or null (absent, or computed from other inputs). */
  read<T>(stage: string, inputs: unknown): StageRecord<T> | null {
    const f = this.file(stage);
    if (!fs.existsSync(f)) return null;
    let rec: StageRecord<T>;
    try {
      rec = JSON.parse(fs.readFileSync(f, "utf8")) as StageRecord<T>;
    } catch (e) {
      throw new DeltaEditError("E_IO", `${f}: cannot read the stage file (${(e as Error).message})`, { hint: "delete it to recompute the stage", context: { file: f } });
    }
    if (rec.format !== STAGE_FORMAT || rec.version !== STAGE_VERSION || rec.stage !== stage) {
      throw new DeltaEditError("E_ARG", `${f}: not a ${STAGE_FORMAT} v${STAGE_VERSION} file of stage ${stage}`, { hint: "delete it to recompute the stage", context: { file: f } });
    }
    return rec.inputs === canonical(inputs) ? rec : null;
  }

  write<T>(stage: string, inputs: unknown, data: T, seconds: number): StageRecord<T> {
    fs.mkdirSync(this.dir, { recursive: true });
    const rec: StageRecord<T> = { format: STAGE_FORMAT, version: STAGE_VERSION, stage, inputs: canonical(inputs), completed: new Date().toISOString(), seconds, data };
    writeJsonAtomic(this.file(stage), rec);
    return rec;
  }
}

/** JSON with object keys sorted (so equal inputs give equal strings). */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x !== null && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

/**
 * Start or resume a run in `out`: without `resume`, an existing run there is an error (nothing is
 * overwritten); with `resume`, its configuration must equal `config`. Writes the configuration.
 */
export function claimOutput(out: string, config: Record<string, unknown>, resume: boolean): "new" | "resumed" {
  const f = path.join(out, CONFIG_FILE);
  if (fs.existsSync(f)) {
    if (!resume) throw new DeltaEditError("E_USAGE", `paper: ${out} already holds a paper run (${CONFIG_FILE})`, { hint: "pass --resume to continue it, --fresh to start over, or another --out" });
    const old = JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(old), ...Object.keys(config)])].sort();
    const differ = keys.filter((k) => canonical(old[k]) !== canonical(config[k]));
    if (differ.length > 0) {
      throw new DeltaEditError("E_USAGE", `paper: --resume with a different configuration than the run in ${out}: ${differ.map((k) => `${k} ${canonical(old[k])} → ${canonical(config[k])}`).join("; ")}`, { hint: "resume with the original options, or use another --out (or --fresh)" });
    }
    return "resumed";
  }
  fs.mkdirSync(out, { recursive: true });
  writeJsonAtomic(f, config);
  return "new";
}
