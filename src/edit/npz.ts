/**
 * Import of the reference's second-moment statistics: `.npz` files as saved by the ROME/MEMIT
 * `layer_stats` code (`np.savez(file, **CombinedStat(mom2=SecondMoment()).state_dict())`).
 *
 * An .npz is a zip of `.npy` files. This module holds a minimal zip reader (stored or deflated
 * members, zip64 extra fields as numpy writes them with `force_zip64`) and a `.npy` parser
 * (format versions 1–3; dtypes '<f4', '<f8', '<i4', '<i8', '<u4', '<u8', '|u1', '|i1', '|b1';
 * C or Fortran order). The second moment is looked up as `mom2.mom2` (the unnormalized sum
 * Σ k kᵀ, (F, F)) and `mom2.count` (scalar), or plain `mom2` / `count`.
 */
import fs from "node:fs";
import path from "node:path";
import { inflateRawSync } from "node:zlib";
import { DeltaEditError } from "../errors.js";
import { STATS_VERSION, type SecondMoment } from "./secondMoment.js";

export interface NpyArray {
  dtype: string; // numpy descr, e.g. "<f4"
  shape: number[];
  data: Float32Array | Float64Array; // (numel) row-major; integers and f8 widened to float64
}

interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;

function npzError(file: string, msg: string, member?: string): DeltaEditError {
  return new DeltaEditError("E_CHECKPOINT", `${path.basename(file)}${member === undefined ? "" : `: member "${member}"`}: ${msg}`, { context: { file, ...(member === undefined ? {} : { member }) } });
}

function readAt(fd: number, position: number, length: number, file: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw npzError(file, `unexpected end of file at byte ${position + done} (truncated?)`);
    done += n;
  }
  return buf;
}

function u64(b: Buffer, off: number): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`zip: 64-bit field ${v} too large`);
  return Number(v);
}

function centralDirectory(fd: number, size: number, file: string): ZipEntry[] {
  const tailLen = Math.min(size, 22 + 65535);
  const tail = readAt(fd, size - tailLen, tailLen, file);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) if (tail.readUInt32LE(i) === SIG_EOCD) { eocd = i; break; }
  if (eocd < 0) throw npzError(file, "not a zip archive (no end-of-central-directory record)");
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== SIG_ZIP64_LOCATOR) throw npzError(file, "zip64 archive without a zip64 locator");
    const z = readAt(fd, u64(tail, loc + 8), 56, file);
    if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw npzError(file, "bad zip64 end-of-central-directory record");
    count = u64(z, 32);
    cdSize = u64(z, 40);
    cdOffset = u64(z, 48);
  }
  const cd = readAt(fd, cdOffset, cdSize, file);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (cd.readUInt32LE(p) !== SIG_CENTRAL) throw npzError(file, `bad central directory entry ${i}`);
    const method = cd.readUInt16LE(p + 10);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString("utf8", p + 46, p + 46 + nameLen);
    // zip64 extended information (id 0x0001): only the fields saturated above, in this order
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (uncompressedSize === U32_MAX) { uncompressedSize = u64(cd, q); q += 8; }
        if (compressedSize === U32_MAX) { compressedSize = u64(cd, q); q += 8; }
        if (localHeaderOffset === U32_MAX) { localHeaderOffset = u64(cd, q); q += 8; }
      }
      e += 4 + len;
    }
    out.push({ name, method, compressedSize, uncompressedSize, localHeaderOffset });
    p = eEnd + commentLen;
  }
  return out;
}

function memberBytes(fd: number, ent: ZipEntry, file: string): Buffer {
  const lh = readAt(fd, ent.localHeaderOffset, 30, file);
  if (lh.readUInt32LE(0) !== SIG_LOCAL) throw npzError(file, "bad local file header", ent.name);
  const start = ent.localHeaderOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
  const raw = readAt(fd, start, ent.compressedSize, file);
  if (ent.method === 0) return raw;
  if (ent.method === 8) {
    const out = inflateRawSync(raw);
    if (out.length !== ent.uncompressedSize) throw npzError(file, `inflated to ${out.length} bytes, expected ${ent.uncompressedSize}`, ent.name);
    return out;
  }
  throw npzError(file, `compression method ${ent.method} is not supported (stored or deflate only)`, ent.name);
}

/** Parses one `.npy` byte image. Numeric dtypes only. */
export function parseNpy(bytes: Buffer, what: string): NpyArray {
  if (bytes.length < 10 || bytes[0] !== 0x93 || bytes.toString("latin1", 1, 6) !== "NUMPY") throw new DeltaEditError("E_CHECKPOINT", `${what}: not a .npy array (bad magic)`);
  const major = bytes[6]!;
  const hlen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = bytes.toString(major === 3 ? "utf8" : "latin1", hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeStr === undefined) throw new DeltaEditError("E_CHECKPOINT", `${what}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  const shape = shapeStr.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new DeltaEditError("E_CHECKPOINT", `${what}: bad shape (${shapeStr})`);
  const numel = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(hstart + hlen);
  const width: Record<string, number> = { "<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8, "<u4": 4, "<u8": 8, "|u1": 1, "|i1": 1, "|b1": 1 };
  const w = width[descr];
  if (w === undefined) throw new DeltaEditError("E_CHECKPOINT", `${what}: dtype '${descr}' is not supported (little-endian float/int only)`);
  if (body.length < numel * w) throw new DeltaEditError("E_CHECKPOINT", `${what}: ${body.length} data bytes, expected ${numel * w} for shape (${shape.join(", ")}) of '${descr}'`);
  let data: Float32Array | Float64Array;
  if (descr === "<f4") {
    data = new Float32Array(numel);
    new Uint8Array(data.buffer).set(body.subarray(0, numel * 4));
  } else {
    data = new Float64Array(numel);
    for (let i = 0; i < numel; i++) {
      const o = i * w;
      data[i] = descr === "<f8" ? body.readDoubleLE(o) : descr === "<i4" ? body.readInt32LE(o) : descr === "<u4" ? body.readUInt32LE(o)
        : descr === "<i8" ? Number(body.readBigInt64LE(o)) : descr === "<u8" ? Number(body.readBigUInt64LE(o)) : descr === "|i1" ? body.readInt8(o) : body[o]!;
    }
  }
  if (fortran === "True" && shape.length === 2) {
    // Fortran order: element (i, j) at j·rows + i → transpose into row-major
    const [r, c] = shape as [number, number];
    const t = data instanceof Float32Array ? new Float32Array(numel) : new Float64Array(numel);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[i * c + j] = data[j * r + i]!;
    data = t;
  } else if (fortran === "True" && shape.length > 2) throw new DeltaEditError("E_CHECKPOINT", `${what}: Fortran-order arrays of rank > 2 are not supported`);
  return { dtype: descr, shape, data };
}

/** Reads the members of an .npz (all, or only `names`, given without the ".npy" suffix). */
export function readNpz(file: string, names?: readonly string[]): Map<string, NpyArray> {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e, context: { file } });
  }
  try {
    const size = fs.fstatSync(fd).size;
    const out = new Map<string, NpyArray>();
    for (const ent of centralDirectory(fd, size, file)) {
      const key = ent.name.endsWith(".npy") ? ent.name.slice(0, -4) : ent.name;
      if (names !== undefined && !names.includes(key)) continue;
      out.set(key, parseNpy(memberBytes(fd, ent, file), `${path.basename(file)}: member "${ent.name}"`));
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Lists the member names of an .npz (without ".npy"). */
export function npzMembers(file: string): string[] {
  const fd = fs.openSync(file, "r");
  try {
    return centralDirectory(fd, fs.fstatSync(fd).size, file).map((e) => (e.name.endsWith(".npy") ? e.name.slice(0, -4) : e.name));
  } finally {
    fs.closeSync(fd);
  }
}

export interface NpzImportOptions {
  /** Layer the file belongs to (the reference stores one file per layer). */
  layer: number;
  /** Fingerprint of the model the statistics belong to, when known ("" otherwise). */
  modelHash?: string;
  /** Provenance: where the reference's documents came from (e.g. "wikipedia/20200501.en"). */
  corpus?: string;
}

/**
 * Imports reference statistics as a SecondMoment: `mom2.mom2` (or `mom2`) → sum (F, F) as float32,
 * `mom2.count` (or `count`) → count.
 */
export function importNpzStats(file: string, opts: NpzImportOptions): SecondMoment {
  if (!Number.isInteger(opts.layer) || opts.layer < 0) throw new DeltaEditError("E_ARG", `importNpzStats: layer must be a non-negative integer, got ${opts.layer}`);
  const members = npzMembers(file);
  const sumName = ["mom2.mom2", "mom2"].find((n) => members.includes(n));
  const countName = ["mom2.count", "count"].find((n) => members.includes(n));
  if (sumName === undefined || countName === undefined) {
    throw npzError(file, `expected members "mom2.mom2" and "mom2.count" (or "mom2" and "count"), found ${JSON.stringify(members)}`);
  }
  const arrays = readNpz(file, [sumName, countName]);
  const s = arrays.get(sumName)!;
  const c = arrays.get(countName)!;
  if (s.shape.length !== 2 || s.shape[0] !== s.shape[1]) throw npzError(file, `has shape (${s.shape.join(", ")}), expected a square (F, F) matrix`, sumName);
  if (c.data.length !== 1) throw npzError(file, `has ${c.data.length} elements, expected a scalar`, countName);
  const count = c.data[0]!;
  if (!Number.isSafeInteger(count) || count <= 0) throw npzError(file, `count ${count} is not a positive integer`, countName);
  const dIn = s.shape[0]!;
  const sum = s.data instanceof Float32Array ? s.data : Float32Array.from(s.data); // (F, F)
  return {
    sum,
    count,
    dIn,
    provenance: {
      source: "npz",
      modelHash: opts.modelHash ?? "",
      corpusHash: "",
      corpus: opts.corpus ?? `imported from ${path.resolve(file)} (${s.dtype})`,
      layer: opts.layer,
      samples: 0,
      maxTokens: 0,
      shuffleSeed: null,
      docsDone: 0,
      docsTotal: 0,
      dtype: "float32",
      version: STATS_VERSION,
    },
  };
}
