/**
 * Edit one fact and watch the model change its answer; the edit survives closing and reopening.
 *
 *   npm run build && npm run examples && node dist-examples/edit-and-generate.js
 */
import fs from "node:fs";
import { Editor } from "deltaedit";
import { exampleArgs } from "./_args.js";

const args = exampleArgs("runs/examples/edit-and-generate");
fs.rmSync(args.out, { recursive: true, force: true });

const editor = await Editor.create({
  dir: args.out,
  model: args.model,
  method: "deltaedit",
  ...(args.steps !== undefined ? { params: { numGradSteps: args.steps } } : {}),
  ...(args.statsCorpus !== undefined ? { stats: { corpus: args.statsCorpus } } : {}),
});

// a fact from the edit set, written in the API's form: "{}" marks the subject. (On the fact world, a
// single edit reaches the new object in greedy generation for part of the records only, see the
// factworld preset's notes in src/edit/presets.ts; record 2, the default, is one that does.)
const record = (await editor.loadDataset(args.edits, { size: args.record + 1 })).records[args.record];
const { prompt, subject, targetNew } = record!.request;
const question = prompt.replace("{}", subject);

console.log(`before: ${question} →${await editor.generate(question, { maxNewTokens: 4 })}`);
const report = await editor.edit([{ prompt, subject, targetNew }]);
for (const r of report.requests) console.log(`edited case ${r.caseId} in batch ${r.batch}: ${r.steps} steps, p(target) ${r.finalAvgProb.toFixed(3)}`);
for (const r of report.rejected) console.log(`rejected ${r.caseId}: ${r.message}`);
console.log(`after:  ${question} →${await editor.generate(question, { maxNewTokens: 4 })}  (target: ${targetNew})`);
await editor.close();

// the session directory holds everything: reopening replays the journal onto the original weights
const again = await Editor.open(args.out, { access: "read" });
console.log(`reopened: ${again.position} request(s) applied; ${question} →${await again.generate(question, { maxNewTokens: 4 })}`);
await again.close();
