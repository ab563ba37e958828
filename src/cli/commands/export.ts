import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { exportSession } from "../../edit/session/exportSession.js";
import { EditSession } from "../../edit/session/session.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { renderTable } from "../table.js";
import { prepareSecondMoments } from "./_stats.js";

/** Refuse an unusable --out before anything is loaded (the export re-checks when it commits). */
function checkOut(out: string): void {
  if (out.trim() === "") throw new DeltaEditError("E_USAGE", "export: --out must name a directory, got an empty string");
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new DeltaEditError("E_USAGE", `export: --out ${out} is an existing file; give a directory that does not exist yet (or is empty)`);
  if (fs.readdirSync(out).length > 0) throw new DeltaEditError("E_USAGE", `export: --out ${out} exists and is not empty; give a directory that does not exist yet (or is empty)`);
}

export const command: CommandSpec = {
  name: "export",
  summary: "write a session's edited model as a Hugging Face checkpoint or a PEFT LoRA adapter",
  usage: "deltaedit export --session DIR --format hf|lora --out DIR [--rank R]",
  options: {
    session: { type: "string", description: "session directory (locked while the export runs)", required: true, valueName: "DIR" },
    format: { type: "string", description: "hf (edited checkpoint) or lora (PEFT adapter with the accumulated update per layer)", required: true, valueName: "hf|lora" },
    out: { type: "string", description: "output directory (must not exist or be empty)", required: true, valueName: "DIR" },
    rank: { type: "number", description: "LoRA rank cap (default: exact, the numerical rank of each update)", valueName: "R" },
    "stats-corpus": { type: "string", description: "corpus for covariance statistics if not cached/shipped", valueName: "FILE|DIR" },
    "skip-model-check": { type: "boolean", description: "replay onto the model without checking its content hash against the session's (needed when the manifest records none)" },
    json: { type: "boolean", description: "print the export report as JSON" },
  },
  async run(args, io) {
    const log = (m: string): void => io.err(m + "\n");
    const format = str(args, "format");
    if (format !== "hf" && format !== "lora") throw new DeltaEditError("E_USAGE", `export: --format must be hf or lora, got "${format}"`);
    const dir = str(args, "session")!;
    if (dir.trim() === "") throw new DeltaEditError("E_USAGE", "export: --session must name a directory, got an empty string");
    const out = str(args, "out")!;
    checkOut(out);
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
      const rank = num(args, "rank");
      const res = exportSession(session, { format, out, ...(rank !== undefined ? { rank } : {}) });
      if (res.format === "hf") {
        if (bool(args, "json")) io.out(JSON.stringify({ format, out, tensors: res.tensors, files: res.files }) + "\n");
        else io.out(`wrote ${out}: ${res.files.length} files, ${res.tensors.length} edited tensors rewritten (${res.tensors.join(", ")})\n`);
        return 0;
      }
      const rep = res.layers;
      if (bool(args, "json")) io.out(JSON.stringify({ format, out, layers: rep }) + "\n");
      else io.out(`wrote ${out} (PEFT LoRA adapter)\n` + renderTable(["module", "rank", "numerical rank", "retained energy", "exact"], rep.map((r) => [r.module, String(r.rank), String(r.numericalRank), r.retainedEnergy.toFixed(6), r.exact ? "yes" : "no"])) + "\n");
      return 0;
    } finally {
      session.close();
    }
  },
};
