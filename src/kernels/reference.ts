/**
 * Naive TypeScript implementations of every operation of docs/kernels.md: the test oracle for
 * the native core (llm.c keeps a naive kernel beside each fast one). Same signatures and
 * semantics as ops.ts, plain loops, float64 accumulation. The fused kernels also accept
 * Float64Array buffers so that finite-difference checks can run the forward in double precision.
 * Arguments are trusted (no validation); never used on a hot path.
 *
 * Dimension legend: B batch, T query length, Tk key length, NH query heads, NKV key/value heads,
 * HS head size, C channels, rows = independent rows.
 */
import { DeltaEditError } from "../errors.js";
import type { AttentionShape, FloatArray, GemmBatchedOptions, GemmOptions, SyrkOptions, TriangularSolveOptions } from "./ops.js";

type Arr = FloatArray;

function like<T extends Arr>(x: T, len: number): T {
  return (x instanceof Float64Array ? new Float64Array(len) : new Float32Array(len)) as T;
}

// ---------------------------------------------------------------------------------------------
// BLAS

export function gemm<T extends Arr>(a: T, b: T, c: T, o: GemmOptions): void {
  gemmBatched(a, b, c, { ...o, batch: 1, strideA: 0, strideB: 0, strideC: 0 });
}

export function gemmBatched<T extends Arr>(a: T, b: T, c: T, o: GemmBatchedOptions): void {
  const { m, n, k } = o;
  const transA = o.transA ?? false, transB = o.transB ?? false, alpha = o.alpha ?? 1, beta = o.beta ?? 0;
  const lda = o.lda ?? Math.max(1, transA ? m : k), ldb = o.ldb ?? Math.max(1, transB ? k : n), ldc = o.ldc ?? Math.max(1, n);
  for (let bi = 0; bi < o.batch; bi++) {
    const oa = bi * o.strideA, ob = bi * o.strideB, oc = bi * o.strideC;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) {
          const av = transA ? a[oa + p * lda + i]! : a[oa + i * lda + p]!;
          const bv = transB ? b[ob + j * ldb + p]! : b[ob + p * ldb + j]!;
          acc += av * bv;
        }
        const ci = oc + i * ldc + j;
        c[ci] = alpha * acc + (beta === 0 ? 0 : beta * c[ci]!);
      }
    }
  }
}

export function syrk<T extends Arr>(a: T, c: T, o: SyrkOptions): void {
  const { n, k } = o;
  const trans = o.trans ?? false, alpha = o.alpha ?? 1, beta = o.beta ?? 0;
  const at = (i: number, p: number): number => (trans ? a[p * n + i]! : a[i * k + p]!); // A(i,p) of the (n,k) operand
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += at(i, p) * at(j, p);
      out[i * n + j] = alpha * acc + (beta === 0 ? 0 : beta * c[i * n + j]!);
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      c[i * n + j] = out[i * n + j]!;
      c[j * n + i] = out[i * n + j]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LAPACK

/** Cyclic Jacobi eigenvalue iteration in float64; values ascending, column j = vector j. */
export function eigh<T extends Arr>(a: T, n: number): { values: T; vectors: T } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q]! - A[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1), sn = t * cs;
        for (let r = 0; r < n; r++) { // A = A J
          const arp = A[r * n + p]!, arq = A[r * n + q]!;
          A[r * n + p] = cs * arp - sn * arq;
          A[r * n + q] = sn * arp + cs * arq;
        }
        for (let r = 0; r < n; r++) { // A = Jᵀ A
          const apr = A[p * n + r]!, aqr = A[q * n + r]!;
          A[p * n + r] = cs * apr - sn * aqr;
          A[q * n + r] = sn * apr + cs * aqr;
        }
        for (let r = 0; r < n; r++) { // V = V J
          const vrp = V[r * n + p]!, vrq = V[r * n + q]!;
          V[r * n + p] = cs * vrp - sn * vrq;
          V[r * n + q] = sn * vrp + cs * vrq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => A[i * n + i]! - A[j * n + j]!);
  const values = like(a, n), vectors = like(a, n * n);
  order.forEach((src, dst) => {
    values[dst] = A[src * n + src]!;
    for (let r = 0; r < n; r++) vectors[r * n + dst] = V[r * n + src]!;
  });
  return { values, vectors };
}

/** Thin SVD through eigh of AᵀA (m >= n) or AAᵀ (m < n); fine for well-conditioned oracles. */
export function svd<T extends Arr>(a: T, m: number, n: number): { u: T; s: T; vt: T } {
  const p = Math.min(m, n);
  const u = like(a, m * p), s = like(a, p), vt = like(a, p * n);
  const A = Float64Array.from(a);
  const tall = m >= n;
  const d = tall ? n : m; // Gram size
  const G = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let acc = 0;
      if (tall) for (let r = 0; r < m; r++) acc += A[r * n + i]! * A[r * n + j]!;
      else for (let c = 0; c < n; c++) acc += A[i * n + c]! * A[j * n + c]!;
      G[i * d + j] = acc;
    }
  }
  const { values, vectors } = eigh(G, d);
  for (let idx = 0; idx < p; idx++) {
    const src = d - 1 - idx; // descending
    const sigma = Math.sqrt(Math.max(values[src]!, 0));
    s[idx] = sigma;
    if (tall) { // v = eigenvector; u = A v / sigma
      for (let c = 0; c < n; c++) vt[idx * n + c] = vectors[c * d + src]!;
      for (let r = 0; r < m; r++) {
        let acc = 0;
        for (let c = 0; c < n; c++) acc += A[r * n + c]! * vectors[c * d + src]!;
        u[r * p + idx] = sigma > 0 ? acc / sigma : 0;
      }
    } else { // u = eigenvector; v = Aᵀ u / sigma
      for (let r = 0; r < m; r++) u[r * p + idx] = vectors[r * d + src]!;
      for (let c = 0; c < n; c++) {
        let acc = 0;
        for (let r = 0; r < m; r++) acc += A[r * n + c]! * vectors[r * d + src]!;
        vt[idx * n + c] = sigma > 0 ? acc / sigma : 0;
      }
    }
  }
  return { u, s, vt };
}

export function cholesky<T extends Arr>(a: T, n: number): T {
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let p = 0; p < j; p++) d -= L[j * n + p]! ** 2;
    if (!(d > 0)) {
      throw new DeltaEditError("E_NOT_PD", `cholesky: argument a is not positive definite (the leading minor of order ${j + 1} is not)`);
    }
    const ljj = Math.sqrt(d);
    L[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let acc = a[i * n + j]!;
      for (let p = 0; p < j; p++) acc -= L[i * n + p]! * L[j * n + p]!;
      L[i * n + j] = acc / ljj;
    }
  }
  const out = like(a, n * n);
  out.set(L);
  return out;
}

export function triangularSolve<T extends Arr>(t: T, b: T, n: number, nrhs: number, o: TriangularSolveOptions): T {
  const transpose = o.transpose ?? false, unit = o.unitDiagonal ?? false;
  // op(T)(i,j): with transpose the matrix read is Tᵀ, whose triangle is the opposite one
  const at = (i: number, j: number): number => (transpose ? t[j * n + i]! : t[i * n + j]!);
  const effLower = o.lower !== transpose;
  const X = Float64Array.from(b);
  for (let c = 0; c < nrhs; c++) {
    for (let s = 0; s < n; s++) {
      const i = effLower ? s : n - 1 - s;
      let acc = X[i * nrhs + c]!;
      if (effLower) for (let j = 0; j < i; j++) acc -= at(i, j) * X[j * nrhs + c]!;
      else for (let j = i + 1; j < n; j++) acc -= at(i, j) * X[j * nrhs + c]!;
      const diag = unit ? 1 : at(i, i);
      if (diag === 0) throw new DeltaEditError("E_NATIVE", `triangularSolve: argument t is singular (t[${i},${i}] = 0)`);
      X[i * nrhs + c] = acc / diag;
    }
  }
  const out = like(b, n * nrhs);
  out.set(X);
  return out;
}

export function choleskySolve<T extends Arr>(l: T, b: T, n: number, nrhs: number): T {
  const y = triangularSolve(l, b, n, nrhs, { lower: true });
  return triangularSolve(l, y, n, nrhs, { lower: true, transpose: true });
}

/** Gaussian elimination with partial pivoting. */
export function solve<T extends Arr>(a: T, b: T, n: number, nrhs: number): T {
  const A = Float64Array.from(a), X = Float64Array.from(b);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r * n + col]!) > Math.abs(A[piv * n + col]!)) piv = r;
    if (A[piv * n + col] === 0) throw new DeltaEditError("E_NATIVE", `solve: argument a is singular (column ${col})`);
    if (piv !== col) {
      for (let c = 0; c < n; c++) [A[col * n + c], A[piv * n + c]] = [A[piv * n + c]!, A[col * n + c]!];
      for (let c = 0; c < nrhs; c++) [X[col * nrhs + c], X[piv * nrhs + c]] = [X[piv * nrhs + c]!, X[col * nrhs + c]!];
    }
    for (let r = col + 1; r < n; r++) {
      const f = A[r * n + col]! / A[col * n + col]!;
      for (let c = col; c < n; c++) A[r * n + c]! -= f * A[col * n + c]!;
      for (let c = 0; c < nrhs; c++) X[r * nrhs + c]! -= f * X[col * nrhs + c]!;
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let c = 0; c < nrhs; c++) {
      let acc = X[i * nrhs + c]!;
      for (let j = i + 1; j < n; j++) acc -= A[i * n + j]! * X[j * nrhs + c]!;
      X[i * nrhs + c] = acc / A[i * n + i]!;
    }
  }
  const out = like(b, n * nrhs);
  out.set(X);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fused kernels

export function layerNormForward(x: Arr, weight: Arr, bias: Arr, out: Arr, mean: Arr, rstd: Arr, rows: number, C: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[r * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c]! - m) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) out[r * C + c] = (x[r * C + c]! - m) * s * weight[c]! + bias[c]!;
    mean[r] = m;
    rstd[r] = s;
  }
}

export function layerNormBackward(dout: Arr, x: Arr, weight: Arr, mean: Arr, rstd: Arr, dx: Arr, dweight: Arr | null, dbias: Arr | null,
  rows: number, C: number): void {
  for (let r = 0; r < rows; r++) {
    const m = mean[r]!, s = rstd[r]!;
    let sumD = 0, sumDN = 0;
    for (let c = 0; c < C; c++) {
      const norm = (x[r * C + c]! - m) * s, dn = weight[c]! * dout[r * C + c]!;
      sumD += dn;
      sumDN += dn * norm;
    }
    for (let c = 0; c < C; c++) {
      const norm = (x[r * C + c]! - m) * s, d = dout[r * C + c]!;
      dx[r * C + c] = (weight[c]! * d - sumD / C - norm * (sumDN / C)) * s;
    }
  }
  for (let c = 0; c < C; c++) {
    let gw = 0, gb = 0;
    for (let r = 0; r < rows; r++) {
      gw += dout[r * C + c]! * (x[r * C + c]! - mean[r]!) * rstd[r]!;
      gb += dout[r * C + c]!;
    }
    if (dweight) dweight[c]! += gw;
    if (dbias) dbias[c]! += gb;
  }
}

export function rmsNormForward(x: Arr, weight: Arr, out: Arr, rstd: Arr, rows: number, C: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[r * C + c]! ** 2;
    const s = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[r * C + c] = x[r * C + c]! * s * weight[c]!;
    rstd[r] = s;
  }
}

export function rmsNormBackward(dout: Arr, x: Arr, weight: Arr, rstd: Arr, dx: Arr, dweight: Arr | null, rows: number, C: number): void {
  for (let r = 0; r < rows; r++) {
    const s = rstd[r]!;
    let sumDN = 0;
    for (let c = 0; c < C; c++) sumDN += weight[c]! * dout[r * C + c]! * x[r * C + c]! * s;
    for (let c = 0; c < C; c++) {
      const norm = x[r * C + c]! * s;
      dx[r * C + c] = s * (weight[c]! * dout[r * C + c]! - norm * (sumDN / C));
    }
  }
  if (dweight) {
    for (let c = 0; c < C; c++) {
      let gw = 0;
      for (let r = 0; r < rows; r++) gw += dout[r * C + c]! * x[r * C + c]! * rstd[r]!;
      dweight[c]! += gw;
    }
  }
}

const GELU_K = Math.sqrt(2 / Math.PI);

export function geluForward(x: Arr, out: Arr, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    out[i] = 0.5 * v * (1 + Math.tanh(GELU_K * (v + 0.044715 * v ** 3)));
  }
}

export function geluBackward(x: Arr, dout: Arr, dx: Arr, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    const th = Math.tanh(GELU_K * (v + 0.044715 * v ** 3));
    const du = GELU_K * (1 + 3 * 0.044715 * v * v);
    dx[i] = dout[i]! * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * du);
  }
}

const sigmoid = (g: number): number => 1 / (1 + Math.exp(-g));

export function swigluForward(gate: Arr, up: Arr, out: Arr, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i]! * sigmoid(gate[i]!) * up[i]!;
}

export function swigluBackward(gate: Arr, up: Arr, dout: Arr, dgate: Arr, dup: Arr, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!, sg = sigmoid(g);
    dgate[i] = dout[i]! * up[i]! * (sg + g * sg * (1 - sg));
    dup[i] = dout[i]! * g * sg;
  }
}

export function softmaxForward(x: Arr, out: Arr, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, x[r * cols + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c]! - mx);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(x[r * cols + c]! - mx) / sum;
  }
}

export function logSoftmaxForward(x: Arr, out: Arr, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, x[r * cols + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c]! - mx);
    const lse = mx + Math.log(sum);
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c]! - lse;
  }
}

function rope(x: Arr, cos: Arr, sin: Arr, positions: Int32Array, rows: number, nHeads: number, headSize: number, sign: number): void {
  const h = headSize / 2;
  for (let r = 0; r < rows; r++) {
    const p = positions[r]!;
    for (let hd = 0; hd < nHeads; hd++) {
      const base = (r * nHeads + hd) * headSize;
      for (let i = 0; i < h; i++) {
        const c = cos[p * h + i]!, s = sign * sin[p * h + i]!;
        const a = x[base + i]!, b = x[base + i + h]!;
        x[base + i] = a * c - b * s;
        x[base + i + h] = b * c + a * s;
      }
    }
  }
}

export function ropeForward(x: Arr, cos: Arr, sin: Arr, positions: Int32Array, rows: number, nHeads: number, headSize: number): void {
  rope(x, cos, sin, positions, rows, nHeads, headSize, 1);
}

export function ropeBackward(dx: Arr, cos: Arr, sin: Arr, positions: Int32Array, rows: number, nHeads: number, headSize: number): void {
  rope(dx, cos, sin, positions, rows, nHeads, headSize, -1);
}

interface Strides { qRS: number; qBS: number; kRS: number; kBS: number; vRS: number; vBS: number; qOffset: number }

function strides(o: AttentionShape): Strides {
  const qRS = o.qRowStride ?? o.nHeads * o.headSize, kRS = o.kRowStride ?? o.nKvHeads * o.headSize;
  const vRS = o.vRowStride ?? o.nKvHeads * o.headSize;
  return {
    qRS, kRS, vRS,
    qBS: o.qBatchStride ?? o.T * qRS, kBS: o.kBatchStride ?? o.Tk * kRS, vBS: o.vBatchStride ?? o.Tk * vRS,
    qOffset: o.qOffset ?? o.Tk - o.T,
  };
}

function visible(o: AttentionShape, s: Strides, b: number, t: number, j: number): boolean {
  return j <= s.qOffset + t && (o.keyMask === undefined || o.keyMask[b * o.Tk + j] !== 0);
}

export function attentionForward(q: Arr, k: Arr, v: Arr, out: Arr, probs: Arr | null, o: AttentionShape): void {
  const s = strides(o), { B, T, Tk, nHeads: NH, nKvHeads: NKV, headSize: HS } = o;
  const G = NH / NKV, scale = 1 / Math.sqrt(HS);
  const p = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kh = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        let mx = -Infinity;
        for (let j = 0; j < Tk; j++) {
          p[j] = -Infinity;
          if (!visible(o, s, b, t, j)) continue;
          let acc = 0;
          for (let d = 0; d < HS; d++) acc += q[b * s.qBS + t * s.qRS + h * HS + d]! * k[b * s.kBS + j * s.kRS + kh * HS + d]!;
          p[j] = acc * scale;
          mx = Math.max(mx, p[j]!);
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) {
          p[j] = mx === -Infinity || p[j] === -Infinity ? 0 : Math.exp(p[j]! - mx);
          sum += p[j]!;
        }
        for (let j = 0; j < Tk; j++) p[j] = sum > 0 ? p[j]! / sum : 0;
        for (let d = 0; d < HS; d++) {
          let acc = 0;
          for (let j = 0; j < Tk; j++) if (p[j] !== 0) acc += p[j]! * v[b * s.vBS + j * s.vRS + kh * HS + d]!;
          out[((b * T + t) * NH + h) * HS + d] = acc;
        }
        if (probs) for (let j = 0; j < Tk; j++) probs[((b * NH + h) * T + t) * Tk + j] = p[j]!;
      }
    }
  }
}

export function attentionBackward(dout: Arr, q: Arr, k: Arr, v: Arr, probs: Arr, dq: Arr, dk: Arr, dv: Arr, o: AttentionShape): void {
  const s = strides(o), { B, T, Tk, nHeads: NH, nKvHeads: NKV, headSize: HS } = o;
  const G = NH / NKV, scale = 1 / Math.sqrt(HS);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < Tk; j++) {
      for (let kh = 0; kh < NKV; kh++) {
        for (let d = 0; d < HS; d++) {
          dk[b * s.kBS + j * s.kRS + kh * HS + d] = 0;
          dv[b * s.vBS + j * s.vRS + kh * HS + d] = 0;
        }
      }
    }
  }
  const dp = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kh = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        const pr = ((b * NH + h) * T + t) * Tk, od = ((b * T + t) * NH + h) * HS, oq = b * s.qBS + t * s.qRS + h * HS;
        let sumPdP = 0;
        for (let j = 0; j < Tk; j++) {
          dp[j] = 0;
          if (!visible(o, s, b, t, j)) continue;
          let acc = 0;
          for (let d = 0; d < HS; d++) acc += dout[od + d]! * v[b * s.vBS + j * s.vRS + kh * HS + d]!;
          dp[j] = acc;
          sumPdP += probs[pr + j]! * acc;
          for (let d = 0; d < HS; d++) dv[b * s.vBS + j * s.vRS + kh * HS + d]! += probs[pr + j]! * dout[od + d]!;
        }
        for (let d = 0; d < HS; d++) dq[oq + d] = 0;
        for (let j = 0; j < Tk; j++) {
          if (!visible(o, s, b, t, j)) continue;
          const ds = probs[pr + j]! * (dp[j]! - sumPdP) * scale;
          for (let d = 0; d < HS; d++) {
            dq[oq + d]! += ds * k[b * s.kBS + j * s.kRS + kh * HS + d]!;
            dk[b * s.kBS + j * s.kRS + kh * HS + d]! += ds * q[oq + d]!;
          }
        }
      }
    }
  }
}
