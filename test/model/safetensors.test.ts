import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { SafetensorsFile, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, writeSafetensors } from "../../src/model/safetensors.js";

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-st-"));
}

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 8;
  }
  return out;
}

/** Builds a raw safetensors file from a header object (or raw header text) and data bytes. */
function rawFile(file: string, header: unknown, data: Uint8Array, opts: { headerText?: string; lengthOverride?: number } = {}): void {
  const text = opts.headerText ?? JSON.stringify(header);
  const h = Buffer.from(text, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(opts.lengthOverride ?? h.length));
  fs.writeFileSync(file, Buffer.concat([prefix, h, data]));
}

function expectCkpt(fn: () => unknown, ...mustContain: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DeltaEditError, `expected DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, "E_CHECKPOINT", e.message);
    for (const s of mustContain) assert.ok(e.message.includes(s), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(s)}`);
    return true;
  });
}

test("F32 round trip is exact; header padded to 8; metadata kept; order kept", () => {
  const dir = tmpDir();
  const file = path.join(dir, "rt.safetensors");
  const a = randn(6 * 7, 1);
  const b = randn(5, 2);
  const empty = new Float32Array(0);
  writeSafetensors(
    file,
    [
      { name: "z.weight", shape: [6, 7], data: a },
      { name: "a.bias", shape: [5], data: b },
      { name: "empty", shape: [0, 3], data: empty },
    ],
    { format: "pt", note: "x" },
  );
  const st = SafetensorsFile.open(file);
  try {
    assert.equal(st.headerLength % 8, 0);
    assert.deepEqual(st.metadata, { format: "pt", note: "x" });
    assert.deepEqual(st.names(), ["z.weight", "a.bias", "empty"]);
    const info = st.info("a.bias");
    assert.equal(info.dtype, "F32");
    assert.deepEqual(info.shape, [5]);
    assert.equal(info.byteOffset, 8 + st.headerLength + a.byteLength);
    assert.equal(info.byteLength, 20);
    assert.deepEqual(st.read("z.weight"), a);
    const out = new Float32Array(5);
    st.readInto("a.bias", out);
    assert.deepEqual(out, b);
    assert.equal(st.read("empty").length, 0);
    // Reading into a view with a non-zero byteOffset.
    const big = new Float32Array(10);
    st.readInto("a.bias", big.subarray(3, 8));
    assert.deepEqual(big.subarray(3, 8), b);
  } finally {
    st.close();
  }
  assert.deepEqual(fs.readdirSync(dir), ["rt.safetensors"], "no temp files left behind");
});

test("F16 and BF16 round trip within their precision; F64 read as f32", () => {
  const dir = tmpDir();
  const file = path.join(dir, "half.safetensors");
  const x = randn(3 * 1003, 3);
  writeSafetensors(file, [
    { name: "h", shape: [3, 1003], data: x, dtype: "F16" },
    { name: "b", shape: [x.length], data: x, dtype: "BF16" },
  ]);
  const st = SafetensorsFile.open(file);
  try {
    assert.equal(st.info("h").dtype, "F16");
    assert.equal(st.info("b").dtype, "BF16");
    const h = st.read("h");
    for (let i = 0; i < h.length; i++) {
      const v = x[i] as number;
      // F16 has 11 significant bits: relative error ≤ 2^-11 for normal values (|v| ≤ 4 here).
      assert.ok(Math.abs((h[i] as number) - v) <= Math.abs(v) * 2 ** -11 + 2 ** -24, `F16 element ${i}: ${h[i]} vs ${v}`);
    }
    const b = st.read("b");
    for (let i = 0; i < b.length; i++) {
      const v = x[i] as number;
      // BF16 has 8 significant bits: relative error ≤ 2^-8.
      assert.ok(Math.abs((b[i] as number) - v) <= Math.abs(v) * 2 ** -8, `BF16 element ${i}: ${b[i]} vs ${v}`);
    }
  } finally {
    st.close();
  }
  // F64 (hand-built file).
  const f64 = new Float64Array([1.5, -2.25, 1e-3]);
  const f64file = path.join(dir, "f64.safetensors");
  rawFile(f64file, { d: { dtype: "F64", shape: [3], data_offsets: [0, 24] } }, new Uint8Array(f64.buffer));
  const st64 = SafetensorsFile.open(f64file);
  assert.deepEqual(st64.read("d"), new Float32Array([1.5, -2.25, 1e-3]));
  st64.close();
});

test("half conversions: exact values, round-to-nearest-even, specials", () => {
  const vals = new Float32Array([0, -0, 1, -2, 65504, 65520, 1e9, -1e9, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -14, Infinity, -Infinity, NaN]);
  const h = f32ToF16(vals);
  assert.deepEqual(
    [...h].map((v) => v.toString(16)),
    ["0", "8000", "3c00", "c000", "7bff", "7c00", "7c00", "fc00", "1", "0", "2", "400", "7c00", "fc00", "7e00"],
  );
  const back = f16ToF32(h);
  assert.deepEqual([...back.subarray(0, 5)], [0, -0, 1, -2, 65504]);
  assert.ok(Object.is(back[1], -0));
  assert.equal(back[8], 2 ** -24);
  assert.ok(Number.isNaN(back[14]));
  // Ties: 1 + 2^-11 is halfway between 1 and 1+2^-10 → even (1); 1 + 3·2^-11 → 1 + 2^-9.
  const ties = f32ToF16(new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11]));
  assert.deepEqual([...ties], [0x3c00, 0x3c02]);
  // Every finite f16 value survives f16 → f32 → f16.
  const all = new Uint16Array(65536).map((_, i) => i);
  const again = f32ToF16(f16ToF32(all));
  for (let i = 0; i < 65536; i++) {
    const isNan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
    if (!isNan) assert.equal(again[i], i, `f16 bits ${i.toString(16)}`);
  }
  // BF16: 1 + 2^-8 ties to 1; 1 + 3·2^-8 → 1 + 2^-6; exact values survive.
  const bf = f32ToBf16(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.5, Infinity, NaN]));
  assert.deepEqual([...bf].slice(0, 4), [0x3f80, 0x3f82, 0xc060, 0x7f80]);
  const bfBack = bf16ToF32(bf);
  assert.equal(bfBack[2], -3.5);
  assert.ok(Number.isNaN(bfBack[4]));
});

test("readInto checks the destination length and rejects non-float dtypes", () => {
  const dir = tmpDir();
  const file = path.join(dir, "ints.safetensors");
  rawFile(
    file,
    { "ids": { dtype: "I64", shape: [2], data_offsets: [0, 16] }, "w": { dtype: "F32", shape: [2], data_offsets: [16, 24] } },
    new Uint8Array(24),
  );
  const st = SafetensorsFile.open(file);
  try {
    assert.equal(st.info("ids").dtype, "I64");
    expectCkpt(() => st.read("ids"), "ints.safetensors", '"ids"', "I64");
    assert.throws(
      () => st.readInto("w", new Float32Array(3)),
      (e: unknown) => e instanceof DeltaEditError && e.code === "E_SHAPE" && e.message.includes('"w"') && e.message.includes("ints.safetensors"),
    );
    assert.throws(() => st.read("nope"), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NOT_FOUND" && e.message.includes('"nope"'));
  } finally {
    st.close();
  }
});

test("malformed files produce E_CHECKPOINT naming the file and tensor", () => {
  const dir = tmpDir();
  let k = 0;
  const f = (): string => path.join(dir, `bad${k++}.safetensors`);
  const data16 = new Uint8Array(16);

  // Shorter than 8 bytes.
  const short = f();
  fs.writeFileSync(short, Buffer.from([1, 2, 3]));
  expectCkpt(() => SafetensorsFile.open(short), path.basename(short), "truncated");

  // Header length beyond the file.
  const trunc = f();
  rawFile(trunc, { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, data16, { lengthOverride: 5000 });
  expectCkpt(() => SafetensorsFile.open(trunc), path.basename(trunc), "truncated");

  // Not JSON / not an object.
  const notJson = f();
  rawFile(notJson, null, data16, { headerText: "{not json" });
  expectCkpt(() => SafetensorsFile.open(notJson), path.basename(notJson), "JSON");
  const notObj = f();
  rawFile(notObj, null, data16, { headerText: "[1,2]" });
  expectCkpt(() => SafetensorsFile.open(notObj), path.basename(notObj), "object");

  const cases: [string, unknown, string][] = [
    ["missing dtype", { "t.miss": { shape: [4], data_offsets: [0, 16] } }, "dtype"],
    ["missing shape", { "t.miss": { dtype: "F32", data_offsets: [0, 16] } }, "shape"],
    ["missing offsets", { "t.miss": { dtype: "F32", shape: [4] } }, "data_offsets"],
    ["unknown dtype", { "t.dt": { dtype: "F128", shape: [4], data_offsets: [0, 16] } }, "F128"],
    ["offsets not ints", { "t.off": { dtype: "F32", shape: [4], data_offsets: [0, 16.5] } }, "data_offsets"],
    ["offsets one value", { "t.off": { dtype: "F32", shape: [4], data_offsets: [16] } }, "data_offsets"],
    ["offsets decreasing", { "t.off": { dtype: "F32", shape: [0], data_offsets: [16, 0] } }, "decreasing"],
    ["past end", { "t.end": { dtype: "F32", shape: [8], data_offsets: [0, 32] } }, "truncated"],
    ["size mismatch", { "t.size": { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, "expected 12"],
    ["shape negative", { "t.neg": { dtype: "F32", shape: [-4], data_offsets: [0, 16] } }, "shape"],
    [
      "overlap",
      { "t.first": { dtype: "F32", shape: [3], data_offsets: [0, 12] }, "t.second": { dtype: "F32", shape: [2], data_offsets: [8, 16] } },
      "overlap",
    ],
  ];
  for (const [label, header, word] of cases) {
    const file = f();
    rawFile(file, header, data16);
    const tensor = Object.keys(header as object).at(-1) as string;
    expectCkpt(() => SafetensorsFile.open(file), path.basename(file), `"${tensor}"`, word);
    void label;
  }

  // Data truncated after a valid header: the last tensor runs past the end.
  const good = f();
  writeSafetensors(good, [
    { name: "a", shape: [4], data: new Float32Array(4) },
    { name: "last.weight", shape: [16], data: new Float32Array(16) },
  ]);
  const cut = f();
  fs.writeFileSync(cut, fs.readFileSync(good).subarray(0, fs.statSync(good).size - 10));
  expectCkpt(() => SafetensorsFile.open(cut), path.basename(cut), '"last.weight"', "truncated");
});

test("writer is atomic: a failed write leaves no file and no temp file", () => {
  const dir = tmpDir();
  const file = path.join(dir, "out.safetensors");
  writeSafetensors(file, [{ name: "keep", shape: [2], data: new Float32Array([1, 2]) }]);
  assert.throws(
    () => writeSafetensors(file, [{ name: "bad", shape: [3], data: new Float32Array(2) }]),
    (e: unknown) => e instanceof DeltaEditError && e.code === "E_SHAPE" && e.message.includes('"bad"'),
  );
  assert.deepEqual(fs.readdirSync(dir), ["out.safetensors"]);
  const st = SafetensorsFile.open(file);
  assert.deepEqual(st.read("keep"), new Float32Array([1, 2]), "previous content intact");
  st.close();
  assert.throws(() =>
    writeSafetensors(file, [
      { name: "dup", shape: [1], data: new Float32Array(1) },
      { name: "dup", shape: [1], data: new Float32Array(1) },
    ]),
  );
});
