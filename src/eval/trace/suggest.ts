/**
 * Edit layers from a causal trace (evaluation spec §10, "Layer suggestion").
 *
 * Rule:
 *   peak  = the block where the windowed MLP AIE at the last subject token is largest
 *           (ROME's edit layer; ROME reads it off this curve);
 *   z     = min(peak, L − 2): the MEMIT-family z-layer (target layer) must lie strictly before the
 *           last block, whose output the target optimisation's loss reads;
 *   count = min(5, max(2, ⌈L/8⌉)) blocks (GPT2-XL, 48 blocks: 5 — MEMIT's 13–17 — a 6-block
 *           model: 2), fewer when z is near block 0;
 *   editLayers = z − count + 1 … z (clipped at 0); ROME's layer = z.
 * The preset written keeps every other hyperparameter of the preset matched to the model
 * (`presetFor`) and replaces only the block indices.
 */
import { DeltaEditError } from "../../errors.js";
import { presetFor, type Preset } from "../../edit/presets.js";
import type { ModelConfig } from "../../model/config.js";
import type { TraceSummary } from "./effects.js";

export interface LayerSuggestion {
  curve: (number | null)[]; // (L) windowed MLP AIE at the last subject token
  peak: number; // argmax of curve
  peakAie: number;
  singlePeak: number; // argmax of the single-block MLP AIE at the last subject token (context, not used by the rule)
  romeLayer: number;
  editLayers: number[]; // MEMIT-family range, ascending
  targetLayer: number; // z = the last of editLayers
  rule: string;
}

export const SUGGESTION_RULE =
  "ROME layer = z = min(peak, L−2) where peak = argmax over blocks of the windowed MLP AIE at the last subject token; " +
  "MEMIT-family editLayers = the min(5, max(2, ⌈L/8⌉)) blocks ending at z (clipped at block 0); the z-layer is never the last block";

export function suggestLayers(summary: TraceSummary): LayerSuggestion {
  const L = summary.numLayers;
  if (L < 2) throw new DeltaEditError("E_ARG", `trace --suggest: a ${L}-block model has no block strictly before the last`);
  const curve = summary.aie.mlpWindow.lastSubject.aie;
  let peak = -1;
  for (let l = 0; l < L; l++) if (curve[l] !== null && (peak < 0 || curve[l]! > curve[peak]!)) peak = l;
  if (peak < 0) throw new DeltaEditError("E_ARG", "trace --suggest: no windowed MLP effect at the last subject token was measured (no facts traced)");
  const single = summary.aie.mlp.lastSubject.aie;
  let singlePeak = 0;
  for (let l = 1; l < L; l++) if (single[l] !== null && (single[singlePeak] === null || single[l]! > single[singlePeak]!)) singlePeak = l;
  const z = Math.min(peak, L - 2);
  const count = Math.min(5, Math.max(2, Math.ceil(L / 8)));
  const editLayers: number[] = [];
  for (let b = Math.max(0, z - count + 1); b <= z; b++) editLayers.push(b);
  return { curve, peak, peakAie: curve[peak]!, singlePeak, romeLayer: z, editLayers, targetLayer: z, rule: SUGGESTION_RULE };
}

const LAYER_KEYS = new Set(["editLayers", "targetLayer", "lossLayer", "layer", "layers"]);

/** The preset matched to the model with the suggested block indices (lossLayer stays the last block). */
export function suggestedPreset(cfg: ModelConfig, s: LayerSuggestion, modelName: string): Preset {
  const base = presetFor(cfg);
  const L = cfg.numLayers;
  const methods: Preset["methods"] = {};
  for (const [m, params] of Object.entries(base.methods)) {
    const rest = Object.fromEntries(Object.entries(params ?? {}).filter(([k]) => !LAYER_KEYS.has(k)));
    if (m === "rome") methods.rome = { ...rest, layer: s.romeLayer, lossLayer: L - 1 };
    else if (m === "ft") methods.ft = { ...rest, layers: [s.romeLayer] };
    else methods[m as keyof Preset["methods"]] = { ...rest, editLayers: s.editLayers, targetLayer: s.targetLayer, lossLayer: L - 1 };
  }
  return {
    name: `trace-${modelName}`,
    description:
      `from deltaedit trace on ${modelName}: windowed MLP AIE at the last subject token peaks at block ${s.peak} (AIE ${s.peakAie.toFixed(4)}); ` +
      `editLayers ${s.editLayers.join(",")}, z-layer ${s.targetLayer}, ROME layer ${s.romeLayer}; other settings from preset "${base.name}". Rule: ${s.rule}`,
    numLayers: L,
    hidden: cfg.hiddenSize,
    methods,
  };
}
