/**
 * GGUF v3, llama.cpp's model file format: the parts deltaedit writes, and the encoder.
 *
 * Layout (all integers little-endian):
 *   "GGUF" · u32 version = 3 · u64 tensor count · u64 metadata count
 *   metadata, in order:  string key · u32 value type · value
 *   tensor infos:        string name · u32 n_dims · u64 ne[n_dims] · u32 ggml type · u64 offset
 *   zero padding to the alignment (32, `general.alignment` unset) · tensor data
 * A string is a u64 byte length and UTF-8 bytes; an array is u32 element type · u64 count · elements.
 * Each tensor's offset (from the start of the data section) is a multiple of the alignment.
 * `ne` lists dimensions innermost first: a row-major (rows, cols) matrix has ne = [cols, rows].
 *
 * Value types: 0 u8 · 1 i8 · 2 u16 · 3 i16 · 4 u32 · 5 i32 · 6 f32 · 7 bool · 8 string · 9 array ·
 * 10 u64 · 11 i64 · 12 f64 (only u32, i32, f32, bool, string and arrays of string / i32 / f32 are written).
 */
import { DeltaEditError } from "../../errors.js";

/** GGUF format version written. */
export const GGUF_VERSION = 3;
/** Default data alignment in bytes (no `general.alignment` key is written). */
export const GGUF_ALIGNMENT = 32;
/** llama.cpp's GGML_MAX_NAME: tensor names must be shorter than this many bytes. */
export const GGUF_MAX_NAME_BYTES = 64;

const VT = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

/** One typed metadata value. */
export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "i32[]"; value: ArrayLike<number> }
  | { type: "f32[]"; value: ArrayLike<number> };

/** Metadata in file order: key → typed value. */
export type GgufMetadata = [key: string, value: GgufValue][];

export const u32 = (value: number): GgufValue => ({ type: "u32", value });
export const f32 = (value: number): GgufValue => ({ type: "f32", value });
export const bool = (value: boolean): GgufValue => ({ type: "bool", value });
export const str = (value: string): GgufValue => ({ type: "string", value });

/** Tensor element types written: ggml_type id, elements per block, bytes per block. */
export const GGML_TYPES = {
  F32: { id: 0, block: 1, bytes: 4 },
  F16: { id: 1, block: 1, bytes: 2 },
  Q8_0: { id: 8, block: 32, bytes: 34 }, // f16 scale + 32 × int8
} as const;
export type GgmlType = keyof typeof GGML_TYPES;

/** llama.cpp's `general.file_type` (LLAMA_FTYPE) for a file whose 2-D tensors are mostly of this type. */
export const FILE_TYPE: Record<GgmlType, number> = { F32: 0, F16: 1, Q8_0: 7 };

/** Token types of `tokenizer.ggml.token_type`. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** A tensor to write: its row-major shape (outermost first, as PyTorch prints it) and its encoded bytes. */
export interface GgufTensor {
  name: string;
  shape: readonly number[]; // outermost first; ne = reversed
  type: GgmlType;
  /** The encoded data, produced when the file is written (one tensor at a time). */
  bytes: () => Uint8Array;
}

/** Bytes of a tensor of `shape` and `type` (E_SHAPE naming it when a row is not whole blocks). */
export function tensorBytes(name: string, shape: readonly number[], type: GgmlType): number {
  const t = GGML_TYPES[type];
  const ne0 = shape[shape.length - 1] ?? 1;
  if (ne0 % t.block !== 0) throw new DeltaEditError("E_SHAPE", `GGUF tensor "${name}": rows of ${ne0} elements are not whole ${type} blocks of ${t.block}`, { context: { tensor: name } });
  let n = 1;
  for (const d of shape) n *= d;
  return (n / t.block) * t.bytes;
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private need(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u32(v: number): void {
    this.need(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.need(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.need(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  f32(v: number): void {
    this.need(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u8(v: number): void {
    this.need(1);
    this.buf[this.length++] = v;
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.need(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  zeros(n: number): void {
    this.need(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  const int = (x: number, lo: number, hi: number): number => {
    if (!Number.isInteger(x) || x < lo || x > hi) throw new DeltaEditError("E_ARG", `GGUF metadata "${key}": ${x} is not a ${v.type} value`, { context: { field: key } });
    return x;
  };
  switch (v.type) {
    case "u32":
      w.u32(VT.u32);
      w.u32(int(v.value, 0, 0xffffffff));
      return;
    case "i32":
      w.u32(VT.i32);
      w.i32(int(v.value, -0x80000000, 0x7fffffff));
      return;
    case "f32":
      w.u32(VT.f32);
      w.f32(v.value);
      return;
    case "bool":
      w.u32(VT.bool);
      w.u8(v.value ? 1 : 0);
      return;
    case "string":
      w.u32(VT.string);
      w.string(v.value);
      return;
    case "string[]":
      w.u32(VT.array);
      w.u32(VT.string);
      w.u64(v.value.length);
      for (const s of v.value) w.string(s);
      return;
    case "i32[]":
      w.u32(VT.array);
      w.u32(VT.i32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.i32(int(v.value[i]!, -0x80000000, 0x7fffffff));
      return;
    case "f32[]":
      w.u32(VT.array);
      w.u32(VT.f32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]!);
      return;
  }
}

const pad = (n: number): number => (GGUF_ALIGNMENT - (n % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;

/**
 * The file as a lazy sequence of chunks: the header (metadata, tensor infos, padding), then each
 * tensor's bytes and padding, produced one tensor at a time. Names must be unique and shorter than
 * GGUF_MAX_NAME_BYTES; each tensor's `bytes()` must have the length its shape and type imply.
 */
export function* ggufChunks(metadata: GgufMetadata, tensors: readonly GgufTensor[]): Generator<Uint8Array> {
  const keys = new Set<string>();
  for (const [k] of metadata) {
    if (keys.has(k)) throw new DeltaEditError("E_ARG", `GGUF metadata key "${k}" given twice`, { context: { field: k } });
    keys.add(k);
  }
  const names = new Set<string>();
  const sizes: number[] = [];
  for (const t of tensors) {
    if (names.has(t.name)) throw new DeltaEditError("E_ARG", `GGUF tensor "${t.name}" given twice`, { context: { tensor: t.name } });
    if (Buffer.byteLength(t.name, "utf8") >= GGUF_MAX_NAME_BYTES) throw new DeltaEditError("E_ARG", `GGUF tensor name "${t.name}" is ${Buffer.byteLength(t.name, "utf8")} bytes; llama.cpp allows at most ${GGUF_MAX_NAME_BYTES - 1}`, { context: { tensor: t.name } });
    names.add(t.name);
    sizes.push(tensorBytes(t.name, t.shape, t.type));
  }
  const w = new ByteWriter();
  for (const c of "GGUF") w.u8(c.charCodeAt(0));
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [k, v] of metadata) {
    w.string(k);
    writeValue(w, k, v);
  }
  let offset = 0;
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]!);
    w.u32(GGML_TYPES[t.type].id);
    w.u64(offset);
    offset += sizes[i]! + pad(sizes[i]!);
  });
  w.zeros(pad(w.length));
  yield w.bytes();
  const zeros = new Uint8Array(GGUF_ALIGNMENT);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    const b = t.bytes();
    if (b.byteLength !== sizes[i]) throw new DeltaEditError("E_SHAPE", `GGUF tensor "${t.name}": ${b.byteLength} bytes encoded, its shape [${t.shape.join(",")}] in ${t.type} needs ${sizes[i]}`, { context: { tensor: t.name } });
    yield b;
    const p = pad(b.byteLength);
    if (p > 0) yield zeros.subarray(0, p);
  }
}
