import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { exportSession, type ExportOptions } from "../../edit/session/exportSession.js";
import { EditSession } from "../../edit/session/session.js";
import type { LoraLayerReport } from "../../edit/session/loraFactors.js";
import { GGUF_DTYPES, type GgufDtype } from "../../model/gguf/writeModel.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { renderTable } from "../table.js";
import { prepareSecondMoments } from "./_stats.js";

const FORMATS = ["hf", "lora", "gguf", "gguf-lora"] as const;
type Format = (typeof FORMATS)[number];

/** Refuse an unusable --out before anything is loaded (the export re-checks when it commits). */
function checkOut(out: string, format: Format): void {
  const file = format === "gguf" || format === "gguf-lora";
  if (out.trim() === "") throw new DeltaEditError("E_USAGE", `export: --out must name a ${file ? "file" : "directory"}, got an empty string`);
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch {
    if (file && !fs.existsSync(path.dirname(path.resolve(out)))) throw new DeltaEditError("E_USAGE", `export: the directory of --out ${out} does not exist; create it first`);
    return;
  }
  if (file) throw new DeltaEditError("E_USAGE", `export: --out ${out} already exists; give a new file name (a GGUF export never overwrites)`);
  if (!st.isDirectory()) throw new DeltaEditError("E_USAGE", `export: --out ${out} is an existing file; give a directory that does not exist yet (or is empty)`);
  if (fs.readdirSync(out).length > 0) throw new DeltaEditError("E_USAGE", `export: --out ${out} exists and is not empty; give a directory that does not exist yet (or is empty)`);
}

function loraTable(rep: readonly LoraLayerReport[]): string {
  return renderTable(["module", "rank", "numerical rank", "retained energy", "exact"], rep.map((r) => [r.module, String(r.rank), String(r.numericalRank), r.retainedEnergy.toFixed(6), r.exact ? "yes" : "no"]));
}

export const command: CommandSpec = {
  name: "export",
  summary: "write a session's edited model as a Hugging Face checkpoint, a PEFT LoRA adapter, or GGUF files for llama.cpp",
  usage: "deltaedit export --session DIR --format hf|lora|gguf|gguf-lora --out DIR|FILE [--rank R] [--dtype f32|f16|q8_0] [--unedited]",
  options: {
    session: { type: "string", description: "session directory (locked while the export runs)", required: true, valueName: "DIR" },
    format: {
      type: "string",
      description:
        "hf (edited checkpoint directory), lora (PEFT adapter directory with the accumulated update per layer), gguf (one llama.cpp GGUF file of the edited model, tokenizer embedded), gguf-lora (llama.cpp GGUF LoRA adapter for the unedited model's GGUF: export that with --format gguf --unedited)",
      required: true,
      valueName: "hf|lora|gguf|gguf-lora",
    },
    out: { type: "string", description: "output directory for hf/lora (must not exist or be empty); output file for gguf/gguf-lora (must not exist)", required: true, valueName: "DIR|FILE" },
    rank: { type: "number", description: "lora/gguf-lora: rank cap (default: exact, the numerical rank of each update)", valueName: "R" },
    dtype: { type: "string", description: "gguf: matrix element type f32 | f16 | q8_0 (default f16; norms stay f32); gguf-lora: f32 (default) | f16", valueName: "TYPE" },
    unedited: { type: "boolean", description: "gguf: write the session's original, unedited model (the base of a gguf-lora adapter)" },
    "stats-corpus": { type: "string", description: "corpus for covariance statistics if not cached/shipped", valueName: "FILE|DIR" },
    "skip-model-check": { type: "boolean", description: "replay onto the model without checking its content hash against the session's (needed when the manifest records none)" },
    json: { type: "boolean", description: "print the export report as JSON" },
  },
  async run(args, io) {
    const log = (m: string): void => io.err(m + "\n");
    const format = str(args, "format") as Format;
    if (!FORMATS.includes(format)) throw new DeltaEditError("E_USAGE", `export: --format must be one of ${FORMATS.join(", ")}, got "${format}"`);
    const gguf = format === "gguf" || format === "gguf-lora";
    const dtype = str(args, "dtype");
    if (dtype !== undefined && !gguf) throw new DeltaEditError("E_USAGE", `export: --dtype applies to --format gguf and gguf-lora only`);
    if (dtype !== undefined && !(GGUF_DTYPES as readonly string[]).includes(dtype)) throw new DeltaEditError("E_USAGE", `export: --dtype must be one of ${GGUF_DTYPES.join(", ")}, got "${dtype}"`);
    if (dtype === "q8_0" && format === "gguf-lora") throw new DeltaEditError("E_USAGE", `export: a gguf-lora adapter is written as f32 or f16, not q8_0`);
    if (bool(args, "unedited") && format !== "gguf") throw new DeltaEditError("E_USAGE", `export: --unedited applies to --format gguf only`);
    const rank = num(args, "rank");
    if (rank !== undefined && format !== "lora" && format !== "gguf-lora") throw new DeltaEditError("E_USAGE", `export: --rank applies to --format lora and gguf-lora only`);
    const dir = str(args, "session")!;
    if (dir.trim() === "") throw new DeltaEditError("E_USAGE", "export: --session must name a directory, got an empty string");
    const out = str(args, "out")!;
    checkOut(out, format);
    const corpus = str(args, "stats-corpus");
    // the export holds the session lock: no edit or undo changes the session while it is read
    const session = await EditSession.open(dir, {
      secondMoments: (m, layers) => prepareSecondMoments(m, layers, corpus ? { corpus } : {}, log),
      log,
      access: "read-locked",
      command: "export",
      skipModelCheck: bool(args, "skip-model-check"),
    });
    try {
      const o: ExportOptions = { format, out };
      if (rank !== undefined) o.rank = rank;
      if (dtype !== undefined) o.dtype = dtype as GgufDtype;
      if (bool(args, "unedited")) o.unedited = true;
      const res = exportSession(session, o);
      const json = bool(args, "json");
      switch (res.format) {
        case "hf":
          if (json) io.out(JSON.stringify({ format, out, tensors: res.tensors, files: res.files }) + "\n");
          else io.out(`wrote ${out}: ${res.files.length} files, ${res.tensors.length} edited tensors rewritten (${res.tensors.join(", ")})\n`);
          return 0;
        case "lora":
          if (json) io.out(JSON.stringify({ format, out, layers: res.layers }) + "\n");
          else io.out(`wrote ${out} (PEFT LoRA adapter)\n` + loraTable(res.layers) + "\n");
          return 0;
        case "gguf": {
          const g = res.gguf;
          if (json) io.out(JSON.stringify({ format, out, unedited: res.unedited, ...g }) + "\n");
          else io.out(`wrote ${out}: GGUF ${g.architecture}, ${res.unedited ? "unedited" : "edited"} model, ${g.dtype}, ${g.tensors} tensors, ${g.bytes} bytes; tokenizer ${g.tokenizer.model} (pre ${g.tokenizer.pre}, ${g.tokenizer.tokens} tokens)\n`);
          return 0;
        }
        case "gguf-lora":
          if (json) io.out(JSON.stringify({ format, out, alpha: res.alpha, bytes: res.bytes, layers: res.layers }) + "\n");
          else io.out(`wrote ${out} (GGUF LoRA adapter, alpha ${res.alpha}, ${res.bytes} bytes; load it with the --unedited GGUF of this session)\n` + loraTable(res.layers) + "\n");
          return 0;
      }
    } finally {
      session.close();
    }
  },
};
