/**
 * AlphaEdit null-space projector P (spec §3.6, §7.7, ODD-30).
 *
 * From the preserved-key second moment `C0 = K0 K0ᵀ / n` (dIn, dIn) of a layer:
 *   1. symmetric eigendecomposition `C0 = U diag(λ) Uᵀ` (`ops.eigh`; equal to the reference's
 *      SVD of the PSD matrix, thresholding |λ|, ODD-30);
 *   2. `J = { i : |λ_i| < nullspaceThreshold }` (absolute threshold, default 2e-2);
 *   3. `P = U_J U_Jᵀ`, rank r = |J|.
 * Only one basis is stored for applying P, whichever is smaller (§7.7):
 *   - "nullspace":  U0 = U_J (dIn, r),         P X = U0 (U0ᵀ X)       when r ≤ dIn/2;
 *   - "complement": U1 = U_{∖J} (dIn, dIn−r),  P X = X − U1 (U1ᵀ X)   otherwise.
 * The primal AlphaEdit solve (solve.ts, §7.4) needs U0 itself; ask for it with
 * `keepNullBasis: true` when the complement is stored.
 *
 * Dimension legend: dIn = input width of the edited matrix (d_ff), r = rank of P,
 * b = columns of the stored basis, n = columns of a block P is applied to.
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";
import { checkDim, checkF32, checkPositive, gatherColumns } from "./_linalg.js";

/** Parameters of the null-space projector. */
export interface ProjectorParams {
  /** Absolute eigenvalue threshold τ on C0: eigenvectors with |λ| < τ span range(P). Spec default 2e-2. */
  nullspaceThreshold: number;
  /** Also keep U0 (dIn, r) when the complement U1 is the stored basis (needed by the primal solve). */
  keepNullBasis: boolean;
}

export const defaultProjectorParams: Readonly<ProjectorParams> = Object.freeze({
  nullspaceThreshold: 2e-2,
  keepNullBasis: false,
});

/** Which eigenvectors the application basis holds. */
export type ProjectorBasisKind = "nullspace" | "complement";

/** JSON-able part of a serialized projector. */
export interface ProjectorMeta {
  format: "deltaedit.nullspace-projector";
  version: 1;
  dIn: number;
  rank: number; // r
  nullspaceThreshold: number;
  basisKind: ProjectorBasisKind;
  hasNullBasis: boolean;
}

/** Raw arrays + JSON meta (see docs/formats.md once the session store exists). */
export interface SerializedProjector {
  meta: ProjectorMeta;
  arrays: {
    basis: Float32Array; // (dIn, b): U0 (b = r) or U1 (b = dIn − r)
    eigenvalues: Float32Array; // (dIn) eigenvalues of C0, ascending
    nullBasis?: Float32Array; // (dIn, r) U0, present iff meta.hasNullBasis and basisKind = "complement"
  };
}

export class NullSpaceProjector {
  readonly dIn: number;
  /** r = |J| = dim range(P). */
  readonly rank: number;
  readonly nullspaceThreshold: number;
  readonly basisKind: ProjectorBasisKind;
  /** (dIn) eigenvalues of C0, ascending (diagnostics). */
  readonly eigenvalues: Float32Array;
  private readonly basis: Float32Array; // (dIn, b) U0 or U1, see basisKind
  private readonly u0: Float32Array | null; // (dIn, r) U0 when available

  private constructor(
    dIn: number,
    rank: number,
    threshold: number,
    kind: ProjectorBasisKind,
    basis: Float32Array,
    u0: Float32Array | null,
    eigenvalues: Float32Array,
  ) {
    this.dIn = dIn;
    this.rank = rank;
    this.nullspaceThreshold = threshold;
    this.basisKind = kind;
    this.basis = basis;
    this.u0 = u0;
    this.eigenvalues = eigenvalues;
  }

  /**
   * Builds P from the preserved-key second moment `preservedCov` = C0 (dIn, dIn), float32,
   * symmetric PSD. The input is not modified.
   */
  static fromSecondMoment(
    preservedCov: Float32Array, // (dIn, dIn)
    dIn: number,
    opts: Partial<ProjectorParams> = {},
  ): NullSpaceProjector {
    const fn = "NullSpaceProjector.fromSecondMoment";
    checkDim(dIn, "dIn", fn, 1);
    checkF32(preservedCov, dIn * dIn, "preservedCov", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
    const params = resolveParams(opts, fn);
    const { values, vectors } = ops.eigh(preservedCov, dIn); // values (dIn) ascending; vectors (dIn, dIn), column j ↔ values[j]
    const nullIdx: number[] = []; // J
    const rangeIdx: number[] = []; // complement of J
    for (let i = 0; i < dIn; i++) {
      const v = values[i]!;
      if (Number.isNaN(v)) throw new DeltaEditError("E_NATIVE", `${fn}: eigenvalue ${i} of preservedCov is NaN`);
      (Math.abs(v) < params.nullspaceThreshold ? nullIdx : rangeIdx).push(i);
    }
    const r = nullIdx.length;
    const kind: ProjectorBasisKind = r <= dIn / 2 ? "nullspace" : "complement";
    const basis = gatherColumns(vectors, dIn, dIn, kind === "nullspace" ? nullIdx : rangeIdx); // (dIn, b)
    const u0 = kind === "nullspace" ? basis : params.keepNullBasis ? gatherColumns(vectors, dIn, dIn, nullIdx) : null;
    return new NullSpaceProjector(dIn, r, params.nullspaceThreshold, kind, basis, u0, Float32Array.from(values));
  }

  /** Columns of the stored application basis (r for "nullspace", dIn − r for "complement"). */
  get basisColumns(): number {
    return this.basisKind === "nullspace" ? this.rank : this.dIn - this.rank;
  }

  /** U0 (dIn, r), an orthonormal basis of range(P), or null when not kept (see keepNullBasis). */
  get nullBasis(): Float32Array | null {
    return this.u0;
  }

  /** P X for a block X (dIn, cols); returns a new (dIn, cols) array. Cost O(dIn · b · cols). */
  apply(x: Float32Array, cols: number): Float32Array {
    const fn = "NullSpaceProjector.apply";
    checkDim(cols, "cols", fn);
    const dIn = this.dIn;
    checkF32(x, dIn * cols, "x", fn, `(dIn, cols) = (${dIn}, ${cols})`);
    const b = this.basisColumns;
    const out = this.basisKind === "nullspace" ? new Float32Array(dIn * cols) : Float32Array.from(x); // (dIn, cols)
    if (b === 0 || cols === 0) return out;
    const coeff = new Float32Array(b * cols); // (b, cols) = Uᵀ X
    ops.gemm(this.basis, x, coeff, { m: b, n: cols, k: dIn, transA: true });
    // "nullspace": out = U0 coeff;  "complement": out = X − U1 coeff
    ops.gemm(this.basis, coeff, out, { m: dIn, n: cols, k: b, alpha: this.basisKind === "nullspace" ? 1 : -1, beta: this.basisKind === "nullspace" ? 0 : 1 });
    return out;
  }

  /** The dense projector P (dIn, dIn) — for oracles and tests only (O(dIn²) memory). */
  toDense(): Float32Array {
    const dIn = this.dIn;
    const b = this.basisColumns;
    const outer = new Float32Array(dIn * dIn); // (dIn, dIn) = U Uᵀ
    if (b > 0) ops.syrk(this.basis, outer, { n: dIn, k: b });
    if (this.basisKind === "nullspace") return outer;
    for (let i = 0; i < dIn * dIn; i++) outer[i] = -outer[i]!;
    for (let i = 0; i < dIn; i++) outer[i * dIn + i]! += 1;
    return outer;
  }

  /** Raw arrays (copies) + JSON meta; `deserialize(serialize())` reproduces P bit for bit. */
  serialize(): SerializedProjector {
    const keepSeparateU0 = this.basisKind === "complement" && this.u0 !== null;
    const arrays: SerializedProjector["arrays"] = {
      basis: Float32Array.from(this.basis),
      eigenvalues: Float32Array.from(this.eigenvalues),
    };
    if (keepSeparateU0) arrays.nullBasis = Float32Array.from(this.u0!);
    return {
      meta: {
        format: "deltaedit.nullspace-projector",
        version: 1,
        dIn: this.dIn,
        rank: this.rank,
        nullspaceThreshold: this.nullspaceThreshold,
        basisKind: this.basisKind,
        hasNullBasis: this.u0 !== null,
      },
      arrays,
    };
  }

  static deserialize(s: SerializedProjector): NullSpaceProjector {
    const fn = "NullSpaceProjector.deserialize";
    const m = s.meta;
    if (m.format !== "deltaedit.nullspace-projector" || m.version !== 1) {
      throw new DeltaEditError("E_CHECKPOINT", `${fn}: unsupported projector format ${String(m.format)} v${String(m.version)}`);
    }
    checkDim(m.dIn, "meta.dIn", fn, 1);
    checkDim(m.rank, "meta.rank", fn);
    if (m.rank > m.dIn) throw new DeltaEditError("E_CHECKPOINT", `${fn}: meta.rank ${m.rank} exceeds meta.dIn ${m.dIn}`);
    const b = m.basisKind === "nullspace" ? m.rank : m.dIn - m.rank;
    checkF32(s.arrays.basis, m.dIn * b, "arrays.basis", fn, `(dIn, b) = (${m.dIn}, ${b})`);
    checkF32(s.arrays.eigenvalues, m.dIn, "arrays.eigenvalues", fn, `(dIn) = (${m.dIn})`);
    const basis = Float32Array.from(s.arrays.basis);
    let u0: Float32Array | null = null;
    if (m.basisKind === "nullspace") u0 = basis;
    else if (m.hasNullBasis) {
      checkF32(s.arrays.nullBasis, m.dIn * m.rank, "arrays.nullBasis", fn, `(dIn, r) = (${m.dIn}, ${m.rank})`);
      u0 = Float32Array.from(s.arrays.nullBasis);
    }
    return new NullSpaceProjector(m.dIn, m.rank, m.nullspaceThreshold, m.basisKind, basis, u0, Float32Array.from(s.arrays.eigenvalues));
  }
}

function resolveParams(opts: Partial<ProjectorParams>, fn: string): ProjectorParams {
  for (const key of Object.keys(opts)) {
    if (!(key in defaultProjectorParams)) {
      throw new DeltaEditError("E_CONFIG", `${fn}: unknown option "${key}" (known: ${Object.keys(defaultProjectorParams).join(", ")})`);
    }
  }
  const p: ProjectorParams = { ...defaultProjectorParams, ...opts };
  checkPositive(p.nullspaceThreshold, "nullspaceThreshold", fn);
  return p;
}
