/**
 * Durable storage primitives of a session directory: atomic file writes (temp + fsync + rename),
 * an append-only JSONL journal that survives `kill -9` at any byte (a torn last line is ignored and
 * truncated on the next open), and the factor files of every update (safetensors).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../../model/safetensors.js";
import type { LayerUpdate } from "../methods/method.js";

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, "w");
  try {
    if (typeof data === "string") fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** Append one JSON record as a line, fsynced: the record is committed when this returns. */
export function appendJournal(file: string, record: unknown): void {
  const fd = fs.openSync(file, "a");
  try {
    fs.writeSync(fd, JSON.stringify(record) + "\n");
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Read every complete record. A final line without its newline, or that is not valid JSON, is a write
 * torn by a crash: it is dropped (and truncated away when `repair`). A bad line elsewhere is corruption.
 */
export function readJournal<T>(file: string, repair: boolean): T[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split("\n");
  const out: T[] = [];
  let good = 0; // bytes of complete records
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const complete = i < lines.length - 1; // followed by a newline
    if (!complete) break; // trailing fragment (or the empty string after the last newline)
    if (line.trim() === "") {
      good += Buffer.byteLength(line) + 1;
      continue;
    }
    try {
      out.push(JSON.parse(line) as T);
      good += Buffer.byteLength(line) + 1;
    } catch {
      if (i === lines.length - 2) break; // torn last record
      throw new DeltaEditError("E_SESSION", `${file}: line ${i + 1} is not valid JSON (corrupted journal)`);
    }
  }
  if (repair && good < Buffer.byteLength(text)) fs.truncateSync(file, good);
  return out;
}

/** Shape of one update in the journal (its tensors live in the factors file). */
export interface UpdateMeta {
  layer: number;
  n: number;
  tensors: ("keys" | "influence" | "activation" | "dense" | "biasDelta")[];
  biasName?: string;
}

export function saveFactors(file: string, updates: readonly LayerUpdate[], C: number, F: number): UpdateMeta[] {
  const tensors: TensorToWrite[] = [];
  const metas: UpdateMeta[] = [];
  updates.forEach((u, i) => {
    const meta: UpdateMeta = { layer: u.layer, n: u.n, tensors: [] };
    const add = (kind: UpdateMeta["tensors"][number], data: Float32Array | null | undefined, shape: number[]): void => {
      if (!data) return;
      tensors.push({ name: `u${i}.L${u.layer}.${kind}`, shape, data });
      meta.tensors.push(kind);
    };
    add("keys", u.keys, [F, u.n]);
    add("influence", u.influence, [C, u.n]);
    add("activation", u.activation, [F, u.n]);
    add("dense", u.dense, [C, F]);
    if (u.biasName && u.biasDelta) {
      add("biasDelta", u.biasDelta, [u.biasDelta.length]);
      meta.biasName = u.biasName;
    }
    metas.push(meta);
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeSafetensors(file, tensors, { format: "deltaedit-factors", version: "1" });
  return metas;
}

export function loadFactors(file: string, metas: readonly UpdateMeta[]): LayerUpdate[] {
  if (!fs.existsSync(file)) throw new DeltaEditError("E_SESSION", `missing factors file ${file} (the session directory is incomplete)`);
  const st = SafetensorsFile.open(file);
  try {
    return metas.map((m, i) => {
      const get = (kind: UpdateMeta["tensors"][number]): Float32Array | null => (m.tensors.includes(kind) ? st.read(`u${i}.L${m.layer}.${kind}`) : null);
      const u: LayerUpdate = { layer: m.layer, n: m.n, keys: get("keys"), influence: get("influence"), activation: get("activation"), dense: get("dense") };
      if (m.biasName) {
        u.biasName = m.biasName;
        const b = get("biasDelta");
        if (b) u.biasDelta = b;
      }
      return u;
    });
  } finally {
    st.close();
  }
}
