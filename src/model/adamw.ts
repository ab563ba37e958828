/**
 * AdamW (decoupled weight decay) over a ParamStore, the learning-rate schedule (linear warm-up,
 * cosine decay to a floor) and global gradient-norm clipping: the optimizer half of the trainer
 * (`train.ts`).
 *
 * Update of one scalar p with gradient g at step t (1-based), learning rate lr:
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr·wd·p              (only for decayed parameters, see `isDecayed`)
 *   p ← p − lr · m̂ / (√v̂ + ε)   with m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t)
 * (the PyTorch `torch.optim.AdamW` order). Arithmetic is float64 per element, stored float32, in a
 * fixed order: the update is bit-reproducible.
 *
 * Weight decay applies to the matrices of the blocks only (role "linear_weight"): not to norm
 * weights, biases, token/position embeddings or an untied LM head (an output embedding) — the
 * usual GPT/Llama recipe, since shrinking embedding rows of rare tokens and norm gains towards 0
 * only hurts.
 */
import { DeltaEditError } from "../errors.js";
import type { ParamSpec, ParamStore } from "./params.js";

export interface AdamWParams {
  /** Decay rate of the first-moment (mean) estimate. */
  beta1: number;
  /** Decay rate of the second-moment (uncentred variance) estimate. */
  beta2: number;
  /** Added to √v̂ in the denominator (numerical floor). */
  eps: number;
  /** Decoupled weight decay coefficient (per unit of learning rate), on `isDecayed` parameters. */
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Readonly<AdamWParams> = Object.freeze({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });

/** Whether decoupled weight decay applies to a parameter: block matrices only. */
export function isDecayed(spec: ParamSpec): boolean {
  return spec.role === "linear_weight";
}

/** Optimizer state: the two moment estimates (same names and shapes as the parameters) and the step count. */
export class AdamW {
  readonly m: ParamStore; // first moments, one buffer per parameter
  readonly v: ParamStore; // second moments
  /** Number of updates applied so far (the bias corrections use step + 1 for the next one). */
  step: number;
  readonly hp: Readonly<AdamWParams>;

  constructor(params: ParamStore, hp: Readonly<AdamWParams> = ADAMW_DEFAULTS, state?: { m: ParamStore; v: ParamStore; step: number }) {
    this.hp = hp;
    this.m = state?.m ?? params.zerosLike();
    this.v = state?.v ?? params.zerosLike();
    this.step = state?.step ?? 0;
    for (const name of params.names()) {
      const n = params.get(name).length;
      if (this.m.get(name).length !== n || this.v.get(name).length !== n) {
        throw new DeltaEditError("E_SHAPE", `AdamW: moment buffers of "${name}" have ${this.m.get(name).length}/${this.v.get(name).length} elements, expected ${n}`);
      }
    }
  }

  /** Apply one update with learning rate `lr` to every parameter of `params` from `grads`, except those named in `skip` (left as they are, moments included). */
  update(params: ParamStore, grads: ParamStore, lr: number, skip?: ReadonlySet<string>): void {
    const { beta1, beta2, eps, weightDecay } = this.hp;
    const t = this.step + 1;
    const bc1 = 1 - Math.pow(beta1, t);
    const bc2 = 1 - Math.pow(beta2, t);
    for (const spec of params.specs) {
      if (skip?.has(spec.name)) continue;
      const p = params.get(spec.name);
      const g = grads.get(spec.name);
      const m = this.m.get(spec.name);
      const v = this.v.get(spec.name);
      const decay = isDecayed(spec) ? 1 - lr * weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i]! * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
    this.step = t;
  }
}

export interface LrSchedule {
  /** Peak learning rate, reached at the end of warm-up. */
  lr: number;
  /** Steps of linear warm-up from lr/warmupSteps to lr. */
  warmupSteps: number;
  /** Total optimizer steps; the cosine decay ends here. */
  totalSteps: number;
  /** Final learning rate as a fraction of the peak (cosine floor). */
  minLrRatio: number;
}

/** Learning rate of optimizer step `step` (0-based): linear warm-up, then cosine decay to minLrRatio·lr. */
export function lrAt(step: number, s: Readonly<LrSchedule>): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span); // [0, 1]
  const floor = s.lr * s.minLrRatio;
  return floor + 0.5 * (s.lr - floor) * (1 + Math.cos(Math.PI * progress));
}

/** Global L2 norm of all gradients. */
export function gradNorm(grads: ParamStore): number {
  let s = 0;
  for (const name of grads.names()) {
    const g = grads.get(name);
    for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  }
  return Math.sqrt(s);
}

/** Scale all gradients so that their global norm is at most `maxNorm`. Returns the norm before clipping. */
export function clipGradNorm(grads: ParamStore, maxNorm: number): number {
  const norm = gradNorm(grads);
  if (norm > maxNorm && norm > 0) {
    const scale = maxNorm / norm;
    for (const name of grads.names()) {
      const g = grads.get(name);
      for (let i = 0; i < g.length; i++) g[i]! *= scale;
    }
  }
  return norm;
}
