/** Argument errors: E_ARG naming the argument, from the TypeScript checks and from the C++ ones. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DeltaEditError } from "../../src/errors.js";
import { native } from "../../src/kernels/native.js";
import * as ops from "../../src/kernels/ops.js";

function throwsArg(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof DeltaEditError, `expected DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, "E_ARG");
    assert.match(e.message, pattern);
    return true;
  });
}

const f32 = (n: number): Float32Array => new Float32Array(n);

describe("argument errors (TypeScript checks)", () => {
  it("wrong type names the argument and the actual type", () => {
    throwsArg(() => ops.layerNormForward(new Float64Array(8) as unknown as Float32Array, f32(4), f32(4), f32(8), f32(2), f32(2), 2, 4, 1e-5),
      /^layerNormForward: argument x expected Float32Array of length 8 \(rows\*C\), got Float64Array\(8\)$/);
    throwsArg(() => ops.gemm(f32(4), new Float64Array(4) as unknown as Float32Array, f32(4), { m: 2, n: 2, k: 2 }),
      /^gemm: argument b expected Float32Array \(the type of a\)/);
    throwsArg(() => ops.ropeForward(f32(4), f32(2), f32(2), [0, 0] as unknown as Int32Array, 2, 1, 2), /ropeForward: argument positions expected Int32Array/);
    throwsArg(() => ops.attentionForward(f32(4), f32(4), f32(4), f32(4), null,
      { B: 1, T: 1, Tk: 1, nHeads: 1, nKvHeads: 1, headSize: 4, keyMask: [1] as unknown as Uint8Array }), /argument o.keyMask expected Uint8Array/);
  });

  it("too short names the argument with expected vs actual length", () => {
    throwsArg(() => ops.gemm(f32(64 * 64), f32(64 * 64), f32(100), { m: 64, n: 64, k: 64 }),
      /^gemm: argument c expected Float32Array .*of length >= 4096 .*got 100$/);
    throwsArg(() => ops.rmsNormBackward(f32(6), f32(6), f32(3), f32(2), f32(5), null, 2, 3), /rmsNormBackward: argument dx expected .*length 6.*got 5/);
    throwsArg(() => ops.attentionForward(f32(10), f32(16), f32(16), f32(16), null, { B: 1, T: 2, Tk: 2, nHeads: 2, nKvHeads: 2, headSize: 4 }),
      /attentionForward: argument q expected Float32Array of length >= 16/);
    throwsArg(() => ops.eigh(f32(8), 3), /eigh: argument a expected Float32Array or Float64Array of length 9/);
  });

  it("non-integer / negative sizes", () => {
    throwsArg(() => ops.geluForward(f32(4), f32(4), 2.5), /^geluForward: argument n expected a non-negative integer, got number 2.5$/);
    throwsArg(() => ops.softmaxForward(f32(4), f32(4), -1, 4), /softmaxForward: argument rows expected a non-negative integer/);
    throwsArg(() => ops.gemm(f32(4), f32(4), f32(4), { m: 2, n: 2, k: Number.NaN }), /gemm: argument o.k expected a non-negative integer/);
    throwsArg(() => ops.setThreads(0), /setThreads: argument n/);
    throwsArg(() => ops.attentionForward(f32(24), f32(8), f32(8), f32(24), null, { B: 1, T: 1, Tk: 1, nHeads: 3, nKvHeads: 2, headSize: 8 }),
      /argument o.nKvHeads must divide nHeads = 3/);
    throwsArg(() => ops.ropeForward(f32(6), f32(3), f32(3), Int32Array.from([0]), 1, 2, 3), /ropeForward: argument headSize expected an even number/);
  });

  it("out-of-range rope position and bad options", () => {
    throwsArg(() => ops.ropeForward(f32(4), f32(4), f32(4), Int32Array.from([4]), 1, 2, 2), /positions element 0 is 4, expected in \[0, 4\)/);
    throwsArg(() => ops.gemm(f32(4), f32(4), f32(4), { m: 2, n: 2, k: 2, transA: 1 as unknown as boolean }), /argument o.transA expected a boolean/);
    throwsArg(() => ops.gemm(f32(6), f32(4), f32(4), { m: 2, n: 2, k: 2, lda: 1 }), /argument o.lda must be >= 2, got 1/);
  });

  it("aliasing where it is not allowed", () => {
    const buf = f32(8);
    throwsArg(() => ops.gemm(buf.subarray(0, 4), f32(4), buf.subarray(2, 6), { m: 2, n: 2, k: 2 }), /gemm: argument c must not share memory with argument a/);
    const qkv = f32(3 * 8);
    const shape = { B: 1, T: 1, Tk: 1, nHeads: 1, nKvHeads: 1, headSize: 8 };
    throwsArg(() => ops.attentionForward(qkv.subarray(0, 8), qkv.subarray(8, 16), qkv.subarray(16), qkv.subarray(0, 8), null, shape),
      /attentionForward: argument out must not share memory with argument q/);
  });
});

describe("argument errors (C++ checks behind the wrappers)", () => {
  it("raw native calls report the argument position and name", () => {
    const n = native();
    throwsArg(() => n.gemm(f32(4096), f32(4096), f32(100), 64, 64, 64, false, false, 1, 0, 64, 64, 64, 1, 0, 0, 0, true),
      /^gemm: argument 3 \(c\) expected Float32Array of length >= 4096, got 100$/);
    throwsArg(() => n.geluForward(f32(4), new Float64Array(4) as unknown as Float32Array, 4), /^geluForward: argument 2 \(out\) expected Float32Array of length >= 4, got Float64Array\(4\)$/);
    throwsArg(() => n.softmaxForward(f32(4), f32(4), 1.5, 4), /^softmaxForward: argument 3 \(rows\) expected a non-negative integer/);
    throwsArg(() => n.ropeForward(f32(4), f32(4), f32(4), Int32Array.from([9]), 1, 2, 2, 4), /ropeForward: argument 4 \(positions\) element 0 is 9/);
    throwsArg(() => n.attentionForward(f32(8), f32(8), f32(8), f32(8), null, null, 1, 1, 1, 1, 1, 8, 0, 4, 8, 8, 8, 8, 8),
      /attentionForward: argument 14 \(qRowStride\) must be >= nHeads\*headSize = 8/);
  });
});
