/**
 * Hyperparameter files of EasyEdit (`hparams/<METHOD>/<model>.yaml`) and of the official repositories
 * (ROME / MEMIT / AlphaEdit / DeltaEdit `hparams/<METHOD>/<model>.json`), read into our method
 * parameters. Every field is accounted for:
 *   - mapped: the field sets one of our parameters (`v_lr` → `lr`, `L2` → `l2`, …);
 *   - ignored, with the reason: fields that have no meaning here (`device`, `model_name`,
 *     `stats_dir`, module-name templates: the architecture comes from config.json, …), reported in
 *     `ignored` (the CLI prints them), never dropped silently; an ignored field whose value would
 *     change the method (e.g. `fact_token` other than "subject_last") is an error instead;
 *   - anything else is an error naming the file and field, with the closest known field suggested.
 * `layers` follows the reference: for the MEMIT family the LAST entry is the z-layer (targetLayer), and
 * the official DeltaEdit files repeat it (`[13,14,15,16,17,17]`, ODD-12): the repeat is dropped. The
 * mapping table is in docs/hparams.md. Precedence where a session is created: preset < hparams file <
 * explicit parameters (`--set`, `params`).
 */
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { DeltaEditError } from "../errors.js";
import { editDistance } from "../model/params.js";
import { METHOD_NAMES, type MethodName } from "./methods/method.js";

/** A field that set one of our parameters. */
export interface MappedField {
  field: string;
  /** Our parameter name(s). */
  to: string;
  value: unknown;
}

/** A field that has no meaning here, and why. */
export interface IgnoredField {
  field: string;
  value: unknown;
  reason: string;
}

/** The result of reading an hparams file for one method. */
export interface HparamsMapping {
  file: string;
  method: MethodName;
  /** Our parameters, to be applied on top of the preset. */
  overrides: Record<string, unknown>;
  mapped: MappedField[];
  ignored: IgnoredField[];
}

const FAMILY: readonly MethodName[] = ["memit", "alphaedit", "deltaedit", "prune", "rect"];
const NULLSPACE: readonly MethodName[] = ["alphaedit", "deltaedit"];
const COV_WEIGHT: readonly MethodName[] = ["memit", "prune", "rect"];
const TARGET: readonly MethodName[] = [...FAMILY, "rome"];

/** How one hparams field is handled, per method: mapped onto our parameter `to`, or ignored for `reason` (with an optional value check). */
export type HparamsRule =
  | { kind: "map"; to: string; methods: readonly MethodName[] }
  | {
      kind: "ignore";
      reason: string;
      methods?: readonly MethodName[];
      /** Returns what is wrong with a value that would change the method (an error), or null. */
      check?: (v: unknown) => string | null;
    };

const ARCH = "the architecture (module names, layout) is read from the model's config.json";
const STATS = "the second-moment statistics come from the model's shipped stats or --stats-corpus / --stats-samples (API: stats)";
const RUNTIME = "runtime setting of the Python code (CPU here; threads via --threads)";

const isDownProjection = (v: unknown): string | null =>
  typeof v === "string" && /mlp\.(c_proj|down_proj|fc_out|dense_4h_to_h)(\.weight)?$/.test(v) ? null : `names ${JSON.stringify(v)}; only the MLP down projection (c_proj / down_proj) is edited here`;

/** The field table (docs/hparams.md shows it). */
export const HPARAMS_RULES: Readonly<Record<string, readonly HparamsRule[]>> = Object.freeze({
  alg_name: [{ kind: "ignore", reason: "selects the method (checked against the method asked for)" }],
  model_name: [{ kind: "ignore", reason: "the model is the one given to --model (API: model)" }],
  device: [{ kind: "ignore", reason: RUNTIME }],
  model_parallel: [{ kind: "ignore", reason: RUNTIME }],
  fp16: [{ kind: "ignore", reason: "weights are computed in float32 here" }],
  stats_dir: [{ kind: "ignore", reason: STATS }],
  P_loc: [{ kind: "ignore", reason: "the null-space projector is computed from the statistics and kept in the session" }],
  max_length: [{ kind: "ignore", reason: "EasyEdit's tokenizer truncation; requests longer than the model's positions are rejected by case id" }],
  layers: [
    { kind: "map", to: "editLayers, targetLayer (the last entry; a repeated last entry is dropped)", methods: FAMILY },
    { kind: "map", to: "layer", methods: ["rome"] },
    { kind: "map", to: "layers", methods: ["ft"] },
  ],
  layer_selection: [{ kind: "ignore", reason: "unused by the reference code (every listed layer is edited)", methods: TARGET }],
  fact_token: [{ kind: "ignore", reason: "keys are read at the subject's last token", methods: TARGET, check: (v) => (v === "subject_last" ? null : `is ${JSON.stringify(v)}; only "subject_last" is implemented`) }],
  v_num_grad_steps: [{ kind: "map", to: "numGradSteps", methods: TARGET }],
  v_lr: [{ kind: "map", to: "lr", methods: TARGET }],
  v_loss_layer: [{ kind: "map", to: "lossLayer", methods: TARGET }],
  v_weight_decay: [{ kind: "map", to: "weightDecay", methods: TARGET }],
  clamp_norm_factor: [{ kind: "map", to: "clampNormFactor", methods: TARGET }],
  kl_factor: [
    { kind: "map", to: "klFactor", methods: TARGET },
    { kind: "ignore", reason: "FT has no KL term (0 in every reference file)", methods: ["ft"], check: (v) => (v === 0 ? null : `is ${JSON.stringify(v)}; FT here has no KL term (only 0 is accepted)`) },
  ],
  mom2_adjustment: [
    { kind: "map", to: "mom2Adjustment", methods: ["rome"] },
    { kind: "ignore", reason: "unused by the MEMIT-family solves (C0 is always used)", methods: FAMILY },
  ],
  mom2_update_weight: [
    { kind: "map", to: "mom2UpdateWeight", methods: COV_WEIGHT },
    { kind: "ignore", reason: "unused by AlphaEdit's / DeltaEdit's solve (spec §6.1–6.2)", methods: NULLSPACE },
  ],
  mom2_dataset: [{ kind: "ignore", reason: STATS, methods: TARGET }],
  mom2_n_samples: [{ kind: "ignore", reason: STATS, methods: TARGET }],
  mom2_dtype: [{ kind: "ignore", reason: "statistics are accumulated in float32 (the reference's setting)", methods: TARGET }],
  context_template_length_params: [
    {
      kind: "ignore",
      reason: "ROME's context templates are the reference's (20 × lengths 5 and 10)",
      methods: ["rome"],
      check: (v) => (JSON.stringify(v) === "[[5,10],[10,10]]" ? null : `is ${JSON.stringify(v)}; only the reference's [[5, 10], [10, 10]] is implemented`),
    },
  ],
  rewrite_module_tmp: [{ kind: "ignore", reason: ARCH, check: isDownProjection }],
  layer_module_tmp: [{ kind: "ignore", reason: ARCH }],
  mlp_module_tmp: [{ kind: "ignore", reason: ARCH }],
  attn_module_tmp: [{ kind: "ignore", reason: ARCH }],
  ln_f_module: [{ kind: "ignore", reason: ARCH }],
  lm_head_module: [{ kind: "ignore", reason: ARCH }],
  nullspace_threshold: [{ kind: "map", to: "nullspaceThreshold", methods: NULLSPACE }],
  L2: [{ kind: "map", to: "l2", methods: NULLSPACE }],
  solve_method: [{ kind: "ignore", reason: "DeltaEdit's solve is AlphaEdit's (the only value the reference supports)", methods: ["deltaedit"], check: (v) => (v === "alphaedit" ? null : `is ${JSON.stringify(v)}; the reference supports only "alphaedit"`) }],
  var: [{ kind: "map", to: "varMultiplier", methods: ["deltaedit"] }],
  space: [{ kind: "map", to: "space", methods: ["deltaedit"] }],
  num_steps: [{ kind: "map", to: "numSteps", methods: ["ft"] }],
  lr: [{ kind: "map", to: "lr", methods: ["ft"] }],
  weight_decay: [{ kind: "map", to: "weightDecay", methods: ["ft"] }],
  norm_constraint: [{ kind: "map", to: "normConstraint (false → none)", methods: ["ft"] }],
  batch_size: [
    { kind: "map", to: "batchSize", methods: ["ft"] },
    { kind: "ignore", reason: "requests per batch is the session's --batch (API: batchSize)", methods: TARGET },
  ],
  objective_optimization: [{ kind: "map", to: "objective", methods: ["ft"] }],
});

/** EasyEdit / reference `alg_name` → our method. */
const ALG_NAMES: Readonly<Record<string, MethodName>> = Object.freeze({ rome: "rome", memit: "memit", alphaedit: "alphaedit", deltaedit: "deltaedit", delta: "deltaedit", ft: "ft", "ft-l": "ft", "ft-m": "ft", prune: "prune", rect: "rect" });

function suggest(field: string, known: readonly string[]): string {
  const best = known.map((k) => [k, editDistance(field.toLowerCase(), k.toLowerCase())] as const).sort((a, b) => a[1] - b[1])[0];
  return best && best[1] <= 3 ? `did you mean "${best[0]}"? ` : "";
}

/** The method an hparams file names (`alg_name`), or null. Throws on a name we do not implement. */
export function hparamsMethod(raw: Record<string, unknown>, file: string): MethodName | null {
  const alg = raw["alg_name"];
  if (alg === undefined) return null;
  const m = typeof alg === "string" ? ALG_NAMES[alg.toLowerCase()] : undefined;
  if (!m) throw new DeltaEditError("E_CONFIG", `${file}: field "alg_name" is ${JSON.stringify(alg)}, a method not implemented here`, { hint: `implemented: ${METHOD_NAMES.join(", ")}`, context: { file, field: "alg_name" } });
  return m;
}

function layerList(v: unknown, file: string): number[] {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== "number" || !Number.isInteger(x))) {
    throw new DeltaEditError("E_CONFIG", `${file}: field "layers" must be a non-empty list of block indices, got ${JSON.stringify(v)}`, { context: { file, field: "layers" } });
  }
  return v as number[];
}

/** Our parameters for one mapped field. */
function mapValue(field: string, v: unknown, method: MethodName, file: string): Record<string, unknown> {
  const fail = (msg: string): never => {
    throw new DeltaEditError("E_CONFIG", `${file}: field "${field}" ${msg}`, { context: { file, field } });
  };
  if (field === "layers") {
    const layers = layerList(v, file);
    if (method === "rome") {
      if (layers.length !== 1) fail(`must list exactly one layer for ROME, got ${JSON.stringify(layers)}`);
      return { layer: layers[0] };
    }
    if (method === "ft") return { layers };
    // MEMIT family: the last entry is the z-layer; the official DeltaEdit files repeat it to mark it (ODD-12)
    const edit = layers.length > 1 && layers[layers.length - 1] === layers[layers.length - 2] ? layers.slice(0, -1) : layers;
    if (new Set(edit).size !== edit.length) fail(`repeats a layer other than the last entry: ${JSON.stringify(layers)}`);
    return { editLayers: edit, targetLayer: edit[edit.length - 1] };
  }
  if (field === "norm_constraint") return { normConstraint: v === false || v === null ? null : v };
  const rule = HPARAMS_RULES[field]!.find((r) => r.kind === "map" && r.methods.includes(method)) as { to: string };
  return { [rule.to]: v };
}

/** Map an already parsed hparams object for `method` (default: its `alg_name`). */
export function mapHparams(raw: unknown, file: string, method?: MethodName): HparamsMapping {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new DeltaEditError("E_CONFIG", `${file}: an hparams file must hold one mapping of fields, got ${Array.isArray(raw) ? "a list" : JSON.stringify(raw)}`, { context: { file } });
  const r = raw as Record<string, unknown>;
  const named = hparamsMethod(r, file);
  if (method && named && named !== method) {
    throw new DeltaEditError("E_CONFIG", `${file}: field "alg_name" is ${JSON.stringify(r["alg_name"])} (${named}), but the method asked for is ${method}`, { hint: "use the file written for that method, or ask for the method it names", context: { file, field: "alg_name" } });
  }
  const m = method ?? named;
  if (!m) throw new DeltaEditError("E_CONFIG", `${file}: no "alg_name" field, so the method must be given (the official repositories' files do not name it)`, { hint: "pass --method NAME (bench: --hparams METHOD=FILE; API: method)", context: { file } });
  const out: HparamsMapping = { file, method: m, overrides: {}, mapped: [], ignored: [] };
  const known = Object.keys(HPARAMS_RULES);
  for (const [field, v] of Object.entries(r)) {
    const rules = HPARAMS_RULES[field];
    if (!rules) {
      throw new DeltaEditError("E_CONFIG", `${file}: unknown field "${field}"`, { hint: `${suggest(field, known)}known fields: ${known.join(", ")} (docs/hparams.md)`, context: { file, field } });
    }
    const rule = rules.find((x) => x.methods === undefined || x.methods.includes(m));
    if (!rule) {
      const owners = [...new Set(rules.flatMap((x) => x.methods ?? []))];
      throw new DeltaEditError("E_CONFIG", `${file}: field "${field}" is a parameter of ${owners.join(", ")}, not of ${m}`, { hint: `is this file written for ${m}?`, context: { file, field } });
    }
    if (rule.kind === "ignore") {
      const bad = rule.check?.(v) ?? null;
      if (bad !== null) throw new DeltaEditError("E_CONFIG", `${file}: field "${field}" ${bad}`, { context: { file, field } });
      out.ignored.push({ field, value: v, reason: rule.reason });
      continue;
    }
    Object.assign(out.overrides, mapValue(field, v, m, file));
    out.mapped.push({ field, to: rule.to, value: v });
  }
  return out;
}

/** Read an hparams file (`.yaml` / `.yml` with a YAML 1.2 parser, else JSON) and map it for `method`. */
export function readHparamsFile(file: string, method?: MethodName): HparamsMapping {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read hparams file ${file}: ${(e as Error).message}`, { context: { file } });
  }
  const ext = path.extname(file).toLowerCase();
  let raw: unknown;
  try {
    raw = ext === ".yaml" || ext === ".yml" ? YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new DeltaEditError("E_CONFIG", `${file}: not valid ${ext === ".json" ? "JSON" : "YAML"} (${(e as Error).message.split("\n")[0]})`, { context: { file } });
  }
  return mapHparams(raw, file, method);
}

/** One line per field for logs: "hparams FILE: v_lr → lr = 0.5", "… ignored device (reason)". */
export function describeHparams(h: HparamsMapping): string[] {
  return [
    ...h.mapped.map((x) => `hparams ${h.file}: ${x.field} → ${x.to} = ${JSON.stringify(x.value)}`),
    ...h.ignored.map((x) => `hparams ${h.file}: ignored ${x.field} = ${JSON.stringify(x.value)} (${x.reason})`),
  ];
}
