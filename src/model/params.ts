/**
 * Parameter tables. An architecture declares its parameters as a list of `ParamSpec`
 * (Hugging Face tensor name, stored shape, role); a `ParamStore` holds one Float32Array per
 * parameter under that name. Names are the checkpoint's own (without optional prefixes), so
 * loading, editing, fine-tuning and export all speak the same vocabulary.
 */
import { DeltaEditError } from "../errors.js";

export type ParamRole = "embedding" | "position" | "norm_weight" | "norm_bias" | "linear_weight" | "linear_bias" | "lm_head";

export interface ParamSpec {
  name: string; // canonical HF name, e.g. "h.3.mlp.c_proj.weight" or "model.layers.3.mlp.down_proj.weight"
  shape: number[]; // as stored in the checkpoint
  role: ParamRole;
  layer: number | null; // block index, null for embeddings / final norm / head
}

export class ParamStore {
  readonly specs: ParamSpec[];
  private readonly byName: Map<string, { spec: ParamSpec; data: Float32Array }>;

  constructor(specs: ParamSpec[], data?: Map<string, Float32Array>) {
    this.specs = specs;
    this.byName = new Map();
    for (const spec of specs) {
      const n = numel(spec.shape);
      const d = data?.get(spec.name) ?? new Float32Array(n);
      if (d.length !== n) throw new DeltaEditError("E_SHAPE", `parameter "${spec.name}": expected ${n} elements (shape [${spec.shape.join(",")}]), got ${d.length}`);
      this.byName.set(spec.name, { spec, data: d });
    }
  }

  get(name: string): Float32Array {
    const e = this.byName.get(name);
    if (!e) throw new DeltaEditError("E_ARG", `unknown parameter "${name}"`, { hint: suggest(name, [...this.byName.keys()]) });
    return e.data;
  }

  spec(name: string): ParamSpec {
    const e = this.byName.get(name);
    if (!e) throw new DeltaEditError("E_ARG", `unknown parameter "${name}"`, { hint: suggest(name, [...this.byName.keys()]) });
    return e.spec;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return this.specs.map((s) => s.name);
  }

  /** Total number of scalars. */
  count(): number {
    let n = 0;
    for (const s of this.specs) n += numel(s.shape);
    return n;
  }

  /** A store with the same specs and zero-filled buffers (gradients, Adam moments). */
  zerosLike(names?: readonly string[]): ParamStore {
    const keep = names ? new Set(names) : null;
    return new ParamStore(this.specs.filter((s) => !keep || keep.has(s.name)));
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function suggest(name: string, known: string[]): string {
  let best = "";
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best ? `did you mean "${best}"?` : "";
}

export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j;
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1);
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[n]!;
}
