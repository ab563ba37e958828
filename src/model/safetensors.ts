/**
 * safetensors reader and writer.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *
 *   [ 8 bytes: N, u64 little-endian ][ N bytes: JSON header ][ data section ]
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` where the
 * offsets are relative to the start of the data section; the optional `__metadata__` key holds a
 * string→string map.
 *
 * Memory: the reader never loads the whole file. `readInto` reads one tensor with `fs.readSync`
 * straight into the caller's Float32Array (F32) or through a bounded conversion buffer
 * (F16/BF16/F64, `CONVERT_CHUNK_BYTES` at a time), so loading a 6 GB checkpoint costs the
 * destination arrays plus a few MB. The writer streams tensor by tensor to `path.tmp-<pid>` and
 * renames it into place, so a partial file never appears at `path`.
 *
 * Limits (`limits.ts`): the header is at most LIMITS.maxSafetensorsHeaderBytes and nests at most
 * LIMITS.maxJsonDepth deep (checked on the raw bytes before parsing); every shape dimension is a
 * non-negative safe integer and a tensor has at most LIMITS.maxTensorElements elements; the
 * tensors' data_offsets tile the data section exactly (from 0, no gaps, no overlaps, ending at the
 * end of the file), as the Rust reference requires. A limit exceeded is DeltaEditError("E_LIMIT"),
 * any other failure DeltaEditError("E_CHECKPOINT"); both name the file and, where there is one,
 * the tensor. Little-endian hosts only (checked).
 */
import { writeAll } from "../util/fsio.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { brief, checkJsonDepth } from "./boundedjson.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./half.js";
import { LIMITS, limitError } from "./limits.js";

export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 };

/** Every dtype the safetensors format defines, with its size in bytes. */
const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const satisfies Record<string, number>;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;
/** dtypes that `readInto` converts to float32. */
export type FloatDtype = "F32" | "F16" | "BF16" | "F64";
/** dtypes the writer can produce. */
export type WriteDtype = "F32" | "F16" | "BF16";

const READABLE_AS_F32: readonly string[] = ["F32", "F16", "BF16", "F64"];

/** Largest single read: fs.readSync takes at most 2^31 − 1 bytes, and a Uint8Array view at most 2^32. */
const READ_CHUNK_BYTES = 1 << 30;
/** Size of the temporary buffer used to convert F16/BF16/F64 to F32 and F32 to F16/BF16. */
const CONVERT_CHUNK_BYTES = 4 * 1024 * 1024;

/** One tensor of a safetensors file: name, dtype, shape and byte range. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the tensor's first byte in the file. */
  byteOffset: number;
  byteLength: number;
}

function isDtype(s: string): s is SafetensorsDtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function assertLittleEndian(what: string): void {
  if (os.endianness() !== "LE") {
    throw new DeltaEditError("E_CHECKPOINT", `${what}: safetensors support assumes a little-endian host, this one is ${os.endianness()}`);
  }
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Longest tensor name shown in a message (a header may hold a name of megabytes). */
const MAX_SHOWN_NAME = 200;

function ckptError(file: string, msg: string, tensor?: string): DeltaEditError {
  const shown = tensor !== undefined && tensor.length > MAX_SHOWN_NAME ? `${tensor.slice(0, MAX_SHOWN_NAME)}…` : tensor;
  const where = shown === undefined ? path.basename(file) : `${path.basename(file)}: tensor "${shown}"`;
  return new DeltaEditError("E_CHECKPOINT", `${where}: ${msg}`, { context: { file, ...(tensor === undefined ? {} : { tensor }) } });
}

/** Reads exactly `length` bytes at `position` into `dst[offset..]`; a short read means truncation. */
function readFully(fd: number, dst: Uint8Array, offset: number, length: number, position: number, file: string, tensor?: string): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, dst, offset + done, Math.min(length - done, READ_CHUNK_BYTES), position + done);
    if (n === 0) throw ckptError(file, `unexpected end of file at byte ${position + done} (file truncated?)`, tensor);
    done += n;
  }
}

/** An open safetensors file. Holds one file descriptor until `close()`. */
export class SafetensorsFile {
  readonly path: string;
  /** Size of the whole file in bytes. */
  readonly fileSize: number;
  /** Length N of the JSON header (the data section starts at 8 + N). */
  readonly headerLength: number;
  /** `__metadata__` from the header ({} when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  private fd: number | null;
  private readonly tensors: Map<string, TensorInfo>; // in data-offset order

  private constructor(file: string, fd: number, fileSize: number, headerLength: number, metadata: Record<string, string>, tensors: Map<string, TensorInfo>) {
    this.path = file;
    this.fd = fd;
    this.fileSize = fileSize;
    this.headerLength = headerLength;
    this.metadata = metadata;
    this.tensors = tensors;
  }

  /** Opens and validates `file`; throws E_CHECKPOINT (or E_NOT_FOUND if it does not exist). */
  static open(file: string): SafetensorsFile {
    assertLittleEndian(file);
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new DeltaEditError("E_NOT_FOUND", `${file}: no such safetensors file`, { cause: e, context: { file } });
      throw new DeltaEditError("E_CHECKPOINT", `${file}: cannot open (${code ?? String(e)})`, { cause: e, context: { file } });
    }
    try {
      const { headerLength, metadata, tensors, fileSize } = parseHeader(fd, file);
      return new SafetensorsFile(file, fd, fileSize, headerLength, metadata, tensors);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Tensor names in the order their data appears in the file. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** Whether the file holds tensor `name`. */
  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Dtype, shape and byte range of tensor `name`. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) {
      throw new DeltaEditError("E_NOT_FOUND", `${path.basename(this.path)}: no tensor "${name}"`, { context: { file: this.path, tensor: name } });
    }
    return { ...t, shape: [...t.shape] };
  }

  /** The raw 8-byte length prefix plus JSON header bytes (used for fingerprinting). */
  rawHeader(): Buffer {
    const buf = Buffer.alloc(8 + this.headerLength);
    readFully(this.openFd(), buf, 0, buf.length, 0, this.path);
    return buf;
  }

  /**
   * Reads tensor `name` as float32 into `out` (out.length must equal the tensor's element count).
   * F32 bytes go straight into `out`; F16/BF16/F64 are converted through a bounded buffer.
   */
  readInto(name: string, out: Float32Array): void {
    const t = this.tensors.get(name);
    if (t === undefined) {
      throw new DeltaEditError("E_NOT_FOUND", `${path.basename(this.path)}: no tensor "${name}"`, { context: { file: this.path, tensor: name } });
    }
    if (!(out instanceof Float32Array)) {
      throw new DeltaEditError("E_ARG", `${path.basename(this.path)}: tensor "${name}": readInto expects a Float32Array destination`);
    }
    const numel = numelOf(t.shape);
    if (out.length !== numel) {
      throw new DeltaEditError(
        "E_SHAPE",
        `${path.basename(this.path)}: tensor "${name}" has shape [${t.shape.join(",")}] (${numel} elements), destination has ${out.length}`,
        { context: { file: this.path, tensor: name, expected: numel, actual: out.length } },
      );
    }
    if (!READABLE_AS_F32.includes(t.dtype)) {
      throw ckptError(this.path, `dtype ${t.dtype} cannot be read as float32 (supported: ${READABLE_AS_F32.join(", ")})`, name);
    }
    const fd = this.openFd();
    if (t.dtype === "F32") {
      // straight into `out`, through views of at most READ_CHUNK_BYTES (a tensor may exceed 4 GiB)
      for (let done = 0; done < t.byteLength; done += READ_CHUNK_BYTES) {
        const n = Math.min(READ_CHUNK_BYTES, t.byteLength - done);
        readFully(fd, new Uint8Array(out.buffer, out.byteOffset + done, n), 0, n, t.byteOffset + done, this.path, name);
      }
      return;
    }
    const itemBytes = DTYPE_BYTES[t.dtype];
    const chunkElems = Math.max(1, Math.floor(CONVERT_CHUNK_BYTES / itemBytes));
    const scratch = new ArrayBuffer(Math.min(numel, chunkElems) * itemBytes);
    const scratchBytes = new Uint8Array(scratch);
    for (let start = 0; start < numel; start += chunkElems) {
      const n = Math.min(chunkElems, numel - start);
      readFully(fd, scratchBytes, 0, n * itemBytes, t.byteOffset + start * itemBytes, this.path, name);
      const dst = out.subarray(start, start + n);
      if (t.dtype === "F16") f16ToF32(new Uint16Array(scratch, 0, n), dst);
      else if (t.dtype === "BF16") bf16ToF32(new Uint16Array(scratch, 0, n), dst);
      else {
        const src = new Float64Array(scratch, 0, n);
        for (let i = 0; i < n; i++) dst[i] = src[i] as number;
      }
    }
  }

  /** Reads tensor `name` into a new Float32Array. */
  read(name: string): Float32Array {
    const t = this.info(name);
    const out = new Float32Array(numelOf(t.shape));
    this.readInto(name, out);
    return out;
  }

  /** Close the file. */
  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  private openFd(): number {
    if (this.fd === null) throw new DeltaEditError("E_ARG", `${path.basename(this.path)}: file is closed`);
    return this.fd;
  }
}

function parseHeader(fd: number, file: string): { headerLength: number; fileSize: number; metadata: Record<string, string>; tensors: Map<string, TensorInfo> } {
  const fileSize = fs.fstatSync(fd).size;
  if (fileSize < 8) throw ckptError(file, `file is ${fileSize} bytes, shorter than the 8-byte header length prefix (truncated or not safetensors)`);
  const prefix = Buffer.alloc(8);
  readFully(fd, prefix, 0, 8, 0, file);
  const n64 = prefix.readBigUInt64LE(0);
  if (n64 > BigInt(LIMITS.maxSafetensorsHeaderBytes)) {
    throw limitError(path.basename(file), "header length in bytes (corrupt or not safetensors)", n64, "maxSafetensorsHeaderBytes", { file });
  }
  const headerLength = Number(n64);
  if (8 + headerLength > fileSize) {
    throw ckptError(file, `header claims ${headerLength} bytes but the file has only ${fileSize - 8} after the prefix (truncated)`);
  }
  const headerBytes = Buffer.alloc(headerLength);
  readFully(fd, headerBytes, 0, headerLength, 8, file);
  checkJsonDepth(headerBytes, `${path.basename(file)}: header`);
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString("utf8"));
  } catch (e) {
    throw ckptError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw ckptError(file, `header must be a JSON object, got ${Array.isArray(header) ? "array" : typeof header}`);
  }
  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const list: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw ckptError(file, `__metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") throw ckptError(file, `__metadata__["${k}"] must be a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    list.push(parseEntry(file, name, entry, dataStart, dataSize));
  }
  checkTiling(file, list, dataStart, fileSize);
  return { headerLength, fileSize, metadata, tensors: new Map(list.map((t) => [t.name, t])) };
}

/**
 * Sorts `list` by data offset and checks that the tensors tile the data section exactly: the first
 * starts at 0, each starts where the previous ends (no overlap, no gap), the last ends at the end of
 * the file. Trailing or unreferenced bytes mean the header and the data disagree.
 */
function checkTiling(file: string, list: TensorInfo[], dataStart: number, fileSize: number): void {
  list.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  const rel = (t: TensorInfo): string => `[${t.byteOffset - dataStart},${t.byteOffset - dataStart + t.byteLength}]`;
  let end = dataStart; // absolute end of the previous tensor
  let prev: TensorInfo | null = null;
  for (const cur of list) {
    if (cur.byteOffset < end) {
      throw ckptError(file, `data_offsets ${rel(cur)} overlap tensor "${(prev as TensorInfo).name}" ${rel(prev as TensorInfo)}`, cur.name);
    }
    if (cur.byteOffset > end) {
      throw ckptError(file, `data_offsets ${rel(cur)} leave a gap: bytes [${end - dataStart},${cur.byteOffset - dataStart}) of the data section belong to no tensor`, cur.name);
    }
    end = cur.byteOffset + cur.byteLength;
    prev = cur;
  }
  if (end !== fileSize) {
    const what = prev === null ? "the header lists no tensors" : `the last tensor "${prev.name}" ends at data offset ${end - dataStart}`;
    throw ckptError(file, `the data section has ${fileSize - dataStart} bytes but ${what}: ${fileSize - end} bytes belong to no tensor (data_offsets must cover the data section exactly)`);
  }
}

/** Elements of `shape` (dims already checked to be safe non-negative integers), or Infinity past the limit. */
function boundedNumel(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > LIMITS.maxTensorElements) return Infinity;
  }
  return n;
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw ckptError(file, `header entry must be an object`, name);
  const e = entry as Record<string, unknown>;
  for (const key of ["dtype", "shape", "data_offsets"]) {
    if (!(key in e)) throw ckptError(file, `header entry is missing "${key}"`, name);
  }
  const dtype = e["dtype"];
  if (typeof dtype !== "string" || !isDtype(dtype)) {
    throw ckptError(file, `unknown dtype ${brief(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(", ")})`, name);
  }
  const shape = e["shape"];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw ckptError(file, `shape must be an array of non-negative integers, got ${brief(shape)}`, name);
  }
  if (boundedNumel(shape as number[]) > LIMITS.maxTensorElements) {
    throw limitError(`${path.basename(file)}: tensor "${name}"`, `element count of shape ${brief(shape)}`, `${(shape as number[]).reduce((a, d) => a * d, 1)}`, "maxTensorElements", { file, tensor: name });
  }
  const offs = e["data_offsets"];
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
    throw ckptError(file, `data_offsets must be two non-negative integers, got ${brief(offs)}`, name);
  }
  const [begin, end] = offs as [number, number];
  if (end < begin) throw ckptError(file, `data_offsets [${begin},${end}] are decreasing`, name);
  if (end > dataSize) {
    throw ckptError(file, `data_offsets [${begin},${end}] run past the end of the data section (${dataSize} bytes; file truncated?)`, name);
  }
  const numel = numelOf(shape as number[]);
  const expected = numel * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw ckptError(
      file,
      `data_offsets [${begin},${end}] span ${end - begin} bytes, expected ${expected} for shape [${(shape as number[]).join(",")}] of ${dtype}`,
      name,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], byteOffset: dataStart + begin, byteLength: end - begin };
}

// ---------------------------------------------------------------------------------------------
// Writer

/** A float32 tensor to write, with its storage dtype. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Storage dtype; default F32. F16/BF16 round to nearest even. */
  dtype?: WriteDtype;
}

/**
 * Writes `tensors` (in the given order, contiguous) to `file` atomically: bytes go to
 * `file.tmp-<pid>`, are fsynced, and the temp file is renamed over `file`. The header is padded
 * with spaces to a multiple of 8 so the data section is 8-byte aligned.
 */
export function writeSafetensors(file: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  assertLittleEndian(file);
  const seen = new Set<string>();
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new DeltaEditError("E_ARG", `${path.basename(file)}: metadata["${k}"] must be a string, got ${typeof v}`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const t of tensors) {
    if (typeof t.name !== "string" || t.name.length === 0 || t.name === "__metadata__") {
      throw new DeltaEditError("E_ARG", `${path.basename(file)}: invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (seen.has(t.name)) throw new DeltaEditError("E_ARG", `${path.basename(file)}: tensor "${t.name}" given twice`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new DeltaEditError("E_SHAPE", `${path.basename(file)}: tensor "${t.name}": shape must be non-negative integers, got ${JSON.stringify(t.shape)}`);
    }
    if (!(t.data instanceof Float32Array)) throw new DeltaEditError("E_ARG", `${path.basename(file)}: tensor "${t.name}": data must be a Float32Array`);
    const numel = numelOf(t.shape);
    if (t.data.length !== numel) {
      throw new DeltaEditError(
        "E_SHAPE",
        `${path.basename(file)}: tensor "${t.name}" has shape [${t.shape.join(",")}] (${numel} elements) but data has ${t.data.length}`,
      );
    }
    const dtype = t.dtype ?? "F32";
    if (dtype !== "F32" && dtype !== "F16" && dtype !== "BF16") {
      throw new DeltaEditError("E_ARG", `${path.basename(file)}: tensor "${t.name}": cannot write dtype ${String(dtype)} (supported: F32, F16, BF16)`);
    }
    const bytes = numel * DTYPE_BYTES[dtype];
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, offset + bytes] })}`);
    offset += bytes;
  }
  let headerJson = `{${parts.join(",")}}`;
  const unpadded = Buffer.byteLength(headerJson, "utf8");
  headerJson += " ".repeat((8 - (unpadded % 8)) % 8);
  const header = Buffer.from(headerJson, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length), 0);

  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, "w");
    writeAll(fd, prefix, tmp);
    writeAll(fd, header, tmp);
    for (const t of tensors) writeTensorData(fd, t.data, t.dtype ?? "F32", tmp);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof DeltaEditError) throw e;
    throw new DeltaEditError("E_CHECKPOINT", `${file}: write failed (${(e as Error).message})`, { cause: e, context: { file } });
  }
}

function writeTensorData(fd: number, data: Float32Array, dtype: WriteDtype, file: string): void {
  if (dtype === "F32") {
    writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), file);
    return;
  }
  const chunkElems = CONVERT_CHUNK_BYTES / 2;
  const scratch = new Uint16Array(Math.min(chunkElems, data.length));
  for (let start = 0; start < data.length; start += chunkElems) {
    const n = Math.min(chunkElems, data.length - start);
    const dst = scratch.subarray(0, n);
    const src = data.subarray(start, start + n);
    if (dtype === "F16") f32ToF16(src, dst);
    else f32ToBf16(src, dst);
    writeAll(fd, new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength), file);
  }
}
