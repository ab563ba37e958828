/**
 * In-memory safetensors encoding of F32 tensors, so the bytes can be checksummed and written with
 * util/fsio's checked, atomic writes (factor files, LoRA adapters). Same layout as
 * model/safetensors.ts writes: u64 LE header length, JSON header padded with spaces to 8 bytes
 * ({"__metadata__": {...}, name: {dtype, shape, data_offsets}}), then the data in tensor order.
 */

import os from "node:os";
import { DeltaEditError } from "../../errors.js";

export interface F32Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The safetensors encoding (F32 tensors, metadata) of `tensors`, in order. */
export function encodeSafetensors(tensors: readonly F32Tensor[], metadata: Record<string, string>): Buffer {
  if (os.endianness() !== "LE") throw new DeltaEditError("E_ARG", "safetensors files are little-endian; this host is big-endian");
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let pos = 8 + head.length;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}
