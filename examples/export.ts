/**
 * Ship the edits: export the edited model as a Hugging Face checkpoint and the edits alone as a
 * PEFT LoRA adapter; undo the last edit and reopen the session.
 *
 *   npm run build && npm run examples && node dist-examples/export.js
 */
import fs from "node:fs";
import path from "node:path";
import { Editor, LanguageModel, generateText } from "deltaedit";
import { exampleArgs } from "./_args.js";

const args = exampleArgs("runs/examples/export");
fs.rmSync(args.out, { recursive: true, force: true });
const sessionDir = path.join(args.out, "session");

const editor = await Editor.create({
  dir: sessionDir,
  model: args.model,
  method: "alphaedit",
  ...(args.steps !== undefined ? { params: { numGradSteps: args.steps } } : {}),
  ...(args.statsCorpus !== undefined ? { stats: { corpus: args.statsCorpus } } : {}),
});
const data = await editor.loadDataset(args.edits, { size: 3 });
const report = await editor.edit(data.records.map((r) => r.request));
console.log(`applied ${report.requests.length} edit(s) in batches ${report.batches.join(", ")}`);

const hf = await editor.export({ format: "hf", out: path.join(args.out, "hf") });
if (hf.format === "hf") console.log(`HF checkpoint: ${hf.out} (${hf.tensors.length} edited tensors)`);
const lora = await editor.export({ format: "lora", out: path.join(args.out, "lora") });
if (lora.format === "lora") for (const l of lora.layers) console.log(`LoRA ${l.module}: rank ${l.rank}, retained energy ${l.retainedEnergy.toFixed(6)}`);

// the exported checkpoint is a plain model: it answers like the session's weights
const question = data.records[0]!.request.prompt.replace("{}", data.records[0]!.request.subject);
const exported = await LanguageModel.load(path.join(args.out, "hf"));
console.log(`session: ${question} →${await editor.generate(question, { maxNewTokens: 4 })}`);
console.log(`export:  ${question} →${generateText(exported, question, { maxNewTokens: 4 }).text}`);

if (report.batch !== null) await editor.undo(report.batch);
await editor.close();
const again = await Editor.open(sessionDir);
console.log(`reopened: ${again.journal.filter((r) => r.kind === "undo").length} undo record(s) in the journal`);
await again.close();
