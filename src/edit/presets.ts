/**
 * Hyperparameter presets (spec §6). A preset names a model shape and gives each method's
 * overrides on top of the method's defaults (which are the gpt2-xl values).
 *
 * Reference presets: gpt2-xl (all methods), llama3-8b (AlphaEdit, MEMIT, ROME, FT from the AlphaEdit
 * repository; DeltaEdit from the DeltaEdit repository). The reference's DeltaEdit Llama3-8B preset
 * has v_loss_layer = 35 although the model has blocks 0..31 (ODD-10): we use 31, the last block,
 * as AlphaEdit does. Our own presets (not from the papers): gpt2 / gpt2-medium (edit layers chosen
 * at the same relative depth as gpt2-xl's 13–17 of 48), the bundled fixtures and the fact world.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { METHOD_NAMES, type MethodName } from "./methods/method.js";

/** Hyperparameters per method for one model shape. */
export interface Preset {
  name: string;
  description: string;
  /** Model shape the preset was written for (checked: numLayers must match). */
  numLayers: number;
  /** Hidden width of that shape (presets are matched on both). */
  hidden: number;
  methods: Partial<Record<MethodName, Record<string, unknown>>>;
}

function memitFamily(layers: number[], lossLayer: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { editLayers: layers, targetLayer: Math.max(...layers), lossLayer, ...extra };
}

interface FamilySettings {
  /** Target-optimisation settings every MEMIT-family method shares (numGradSteps, lr, …). */
  shared?: Record<string, unknown>;
  /** AlphaEdit/DeltaEdit λ. */
  l2?: number;
  /** MEMIT/PRUNE/RECT λ_m. */
  mom2UpdateWeight?: number;
  /** DeltaEdit's noise-monitor settings (varMultiplier, space, …). */
  deltaedit?: Record<string, unknown>;
}

/** The five MEMIT-family entries of a preset: same layers and target settings, each method's own λ. */
function memitFamilies(layers: number[], lossLayer: number, o: FamilySettings = {}): Preset["methods"] {
  const entry = (extra: Record<string, unknown>): Record<string, unknown> => memitFamily(layers, lossLayer, { ...o.shared, ...extra });
  const ridge = o.l2 === undefined ? {} : { l2: o.l2 };
  const covWeight = o.mom2UpdateWeight === undefined ? {} : { mom2UpdateWeight: o.mom2UpdateWeight };
  return {
    deltaedit: entry({ ...ridge, ...o.deltaedit }),
    alphaedit: entry(ridge),
    memit: entry(covWeight),
    prune: entry(covWeight),
    rect: entry(covWeight),
  };
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** The built-in presets (the papers' gpt2-xl and llama3-8b, ours for other shapes and the bundled models). */
export const PRESETS: readonly Preset[] = [
  {
    name: "gpt2-xl",
    description: "reference presets for GPT2-XL (48 blocks, d 1600, d_ff 6400): spec §6.1–6.5",
    numLayers: 48,
    hidden: 1600,
    methods: {
      ...memitFamilies(range(13, 17), 47, { shared: { numGradSteps: 20, lr: 0.5 }, l2: 1, mom2UpdateWeight: 20000, deltaedit: { varMultiplier: 3, space: 0.25 } }),
      rome: { layer: 17, lossLayer: 47, numGradSteps: 20, lr: 0.5, weightDecay: 0.5, clampNormFactor: 4, mom2Adjustment: true },
      ft: { layers: [0], lr: 5e-4, numSteps: 25, batchSize: 64, normConstraint: 5e-4 },
    },
  },
  {
    name: "llama3-8b",
    description: "reference presets for Llama3-8B(-Instruct) (32 blocks, d 4096, d_ff 14336); DeltaEdit loss layer 31 instead of the reference's invalid 35 (ODD-10)",
    numLayers: 32,
    hidden: 4096,
    methods: {
      ...memitFamilies(range(4, 8), 31, { shared: { numGradSteps: 25, lr: 0.1 }, l2: 10, mom2UpdateWeight: 15000, deltaedit: { varMultiplier: 1.5, space: 0.25 } }),
      rome: { layer: 5, lossLayer: 31, numGradSteps: 25, lr: 0.5, weightDecay: 1e-3, clampNormFactor: 4, mom2Adjustment: false },
      ft: { layers: [21], lr: 5e-4, numSteps: 25, batchSize: 64, normConstraint: null },
    },
  },
  {
    name: "gpt2",
    description: "our preset for GPT-2 small (12 blocks): edit layers 3–4 … at gpt2-xl's relative depth (13–17 of 48 → 3–4 of 12), gpt2-xl optimisation settings",
    numLayers: 12,
    hidden: 768,
    methods: {
      ...memitFamilies(range(3, 4), 11, { l2: 1 }),
      rome: { layer: 4, lossLayer: 11 },
      ft: { layers: [0] },
    },
  },
  {
    name: "gpt2-medium",
    description: "our preset for GPT-2 medium (24 blocks): edit layers 6–8 (gpt2-xl's relative depth)",
    numLayers: 24,
    hidden: 1024,
    methods: {
      ...memitFamilies(range(6, 8), 23, { l2: 1 }),
      rome: { layer: 8, lossLayer: 23 },
      ft: { layers: [0] },
    },
  },
  {
    name: "stories260k",
    description: "the bundled stories260k fixture (5 blocks, d 64, d_ff 172): edit layers 1–3, z-layer 3; λ = 0.1: with λ = 1 one AlphaEdit edit (\"Lily went to the\" → store) left p(target) at 0.35, with 0.1 it reached 0.70",
    numLayers: 5,
    hidden: 64,
    methods: {
      ...memitFamilies([1, 2, 3], 4, { l2: 0.1, mom2UpdateWeight: 100 }),
      rome: { layer: 2, lossLayer: 4, mom2Adjustment: true },
      ft: { layers: [2], normConstraint: 5e-3 },
    },
  },
  {
    name: "tiny-gpt2-random",
    description:
      "the bundled random tiny GPT-2 fixture (2 blocks, d 64): edit layer 0, z-layer 0, loss at block 1 (the z-layer must precede the " +
      "last block: a shift injected after the last block at the subject reaches no later position, so its gradient is exactly zero)",
    numLayers: 2,
    hidden: 64,
    methods: {
      ...memitFamilies([0], 1, { l2: 1, mom2UpdateWeight: 100 }),
      rome: { layer: 0, lossLayer: 1, mom2Adjustment: true },
      ft: { layers: [0], normConstraint: 5e-3 },
    },
  },
  {
    name: "factworld",
    description:
      "the bundled fact world worlds/factworld-v1 (Llama, 6 blocks, d 256, d_ff 768): edit layers 1–2, z-layer 2, loss at block 5; " +
      "target search lr 2, 40 steps, norm clamp 1.5 (with 20 steps and clamp 0.75, 20 single AlphaEdit edits reached the new object in the " +
      "target search for 13 and after the insertion for 0; with 40 steps and clamp 1.5, 14 and 6 — this model needs target shifts as large as " +
      "the hidden state); AlphaEdit/DeltaEdit L2 0.5, MEMIT covariance weight 300 (200 sequential edits, efficacy / specificity / control facts: " +
      "AlphaEdit L2 1: 35.5 / 92.5 / 60.6 %, L2 0.5: 51.5 / 85.2 / 41.9 %, L2 0.3: 61.0 / 78.1 / 28.1 %; " +
      "MEMIT 300: 70.5 / 82.0 / 38.1 %, 100: 69.5 / 77.3 / 36.9 %) — all measured on worlds/factworld-v1",
    numLayers: 6,
    hidden: 256,
    methods: {
      ...memitFamilies([1, 2], 5, { shared: { lr: 2, numGradSteps: 40, clampNormFactor: 1.5 }, l2: 0.5, mom2UpdateWeight: 300 }),
      rome: { layer: 2, lossLayer: 5, lr: 2, mom2Adjustment: true },
      ft: { layers: [2], normConstraint: 5e-3 },
    },
  },
];

/** The built-in preset named `name` (E_CONFIG with the known names otherwise). */
export function presetByName(name: string): Preset {
  const p = PRESETS.find((x) => x.name === name);
  if (!p) throw new DeltaEditError("E_CONFIG", `unknown preset "${name}"`, { hint: `known presets: ${PRESETS.map((x) => x.name).join(", ")}` });
  return p;
}

/**
 * A model directory may ship its own preset under this name (the Preset JSON of `loadPresetFile`,
 * e.g. `worlds/factworld-v2/deltaedit-preset.json`, whose edit layers come from `deltaedit trace
 * --suggest`). It is the default for that model: an explicit preset still wins.
 */
export const MODEL_PRESET_FILE = "deltaedit-preset.json";

/**
 * The preset for a model: explicit name (or preset file), else the preset the model directory ships
 * (`MODEL_PRESET_FILE`), else the first built-in whose shape matches, else a generic rule.
 */
export function presetFor(cfg: ModelConfig, name?: string, modelDir?: string): Preset {
  const shipped = !name && modelDir !== undefined ? path.join(modelDir, MODEL_PRESET_FILE) : null;
  if (shipped !== null && fs.existsSync(shipped)) name = shipped;
  if (name) {
    const p = isPresetPath(name) ? loadPresetFile(name) : presetByName(name);
    if (p.numLayers !== cfg.numLayers) throw new DeltaEditError("E_CONFIG", `preset "${name}" is for ${p.numLayers}-block models, this model has ${cfg.numLayers}`);
    return p;
  }
  const byShape = PRESETS.find((p) => p.numLayers === cfg.numLayers && p.hidden === cfg.hiddenSize);
  if (byShape) return byShape;
  return genericPreset(cfg);
}

/**
 * Generic rule for other shapes: z-layer at ~35 % depth (gpt2-xl: 17 of 48) and never the last
 * block, the edited layers the z-layer and up to 4 blocks below it, loss at the last block;
 * gpt2-xl optimisation settings. A 1-block model has no valid z-layer: the methods reject it.
 */
export function genericPreset(cfg: ModelConfig): Preset {
  const L = cfg.numLayers;
  const z = Math.max(0, Math.min(L - 2, Math.round(0.35 * L)));
  const layers = range(Math.max(0, z - Math.min(4, Math.floor(L / 4))), z);
  return {
    name: `generic-${L}`,
    description: `generic preset for a ${L}-block model: edit layers ${layers.join(",")}, z-layer ${z}, loss layer ${L - 1}`,
    numLayers: L,
    hidden: cfg.hiddenSize,
    methods: {
      ...memitFamilies(layers, L - 1, { mom2UpdateWeight: 20000 }),
      rome: { layer: z, lossLayer: L - 1 },
      ft: { layers: [0] },
    },
  };
}

/** A `--preset` value names a file (not a built-in preset) when it ends in .json or contains a path separator. */
export function isPresetPath(s: string): boolean {
  return s.endsWith(".json") || s.includes("/") || s.includes(path.sep);
}

/** Parameters holding block indices, checked against the preset's numLayers when loading a file. */
const LAYER_FIELDS = ["editLayers", "targetLayer", "lossLayer", "layer", "layers"] as const;

/**
 * Read a preset from a JSON file: `{name, description?, numLayers, hidden, methods: {<method>: {…}}}`
 * (the Preset record; `deltaedit trace --suggest` writes one). Validated: known top-level fields,
 * known method names, block indices (editLayers, targetLayer, lossLayer, layer, layers) integers in
 * [0, numLayers − 1]. Errors name the file and the field. Method parameters themselves are checked
 * by the method (unknown keys suggest the right one).
 */
export function loadPresetFile(file: string): Preset {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read preset file ${file}: ${(e as Error).message}`, { context: { file } });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DeltaEditError("E_CONFIG", `${file}: not valid JSON (${(e as Error).message})`, { context: { file } });
  }
  return validatePreset(raw, file);
}

export function validatePreset(raw: unknown, file: string): Preset {
  const fail = (field: string, msg: string): never => {
    throw new DeltaEditError("E_CONFIG", `${file}: field "${field}" ${msg}`, { context: { file, field }, hint: "a preset file is {name, description?, numLayers, hidden, methods: {<method>: {parameter: value}}}" });
  };
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) fail("(file)", "must be a JSON object");
  const r = raw as Record<string, unknown>;
  const known = ["name", "description", "numLayers", "hidden", "methods"];
  for (const k of Object.keys(r)) if (!known.includes(k)) fail(k, `is not a preset field (known: ${known.join(", ")})`);
  const name = r["name"];
  if (typeof name !== "string" || name.trim().length === 0) fail("name", "is missing or empty");
  const description = r["description"] ?? "";
  if (typeof description !== "string") fail("description", "must be a string");
  const numLayers = r["numLayers"];
  if (typeof numLayers !== "number" || !Number.isInteger(numLayers) || numLayers < 1) fail("numLayers", `must be a positive integer, got ${JSON.stringify(numLayers)}`);
  const hidden = r["hidden"];
  if (typeof hidden !== "number" || !Number.isInteger(hidden) || hidden < 1) fail("hidden", `must be a positive integer, got ${JSON.stringify(hidden)}`);
  const methods = r["methods"];
  if (!methods || typeof methods !== "object" || Array.isArray(methods)) fail("methods", "must be an object {<method>: {parameter: value}}");
  const L = numLayers as number;
  const inRange = (v: unknown, field: string): void => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= L) fail(field, `must be a block index in [0, ${L - 1}] (numLayers ${L}), got ${JSON.stringify(v)}`);
  };
  for (const [m, params] of Object.entries(methods as Record<string, unknown>)) {
    if (!METHOD_NAMES.includes(m as MethodName)) fail(`methods.${m}`, `is not a method (known: ${METHOD_NAMES.join(", ")})`);
    if (!params || typeof params !== "object" || Array.isArray(params)) fail(`methods.${m}`, "must be an object of parameters");
    const p = params as Record<string, unknown>;
    for (const k of LAYER_FIELDS) {
      const v = p[k];
      if (v === undefined) continue;
      if (k === "editLayers" || k === "layers") {
        if (!Array.isArray(v) || v.length === 0) fail(`methods.${m}.${k}`, `must be a non-empty list of block indices, got ${JSON.stringify(v)}`);
        (v as unknown[]).forEach((x, i) => inRange(x, `methods.${m}.${k}[${i}]`));
      } else inRange(v, `methods.${m}.${k}`);
    }
  }
  return { name: name as string, description: description as string, numLayers: L, hidden: hidden as number, methods: methods as Preset["methods"] };
}
