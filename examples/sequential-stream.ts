/**
 * A sequential stream with evaluation: edit records one at a time and score every record edited so
 * far (efficacy, generalization, specificity) after each chunk, as the DeltaEdit paper does.
 *
 *   npm run build && npm run examples && node dist-examples/sequential-stream.js --n 20
 */
import fs from "node:fs";
import { Editor, type EvalRecord } from "deltaedit";
import { exampleArgs } from "./_args.js";

const args = exampleArgs("runs/examples/sequential-stream");
fs.rmSync(args.out, { recursive: true, force: true });

const editor = await Editor.create({
  dir: args.out,
  model: args.model,
  method: "deltaedit",
  ...(args.steps !== undefined ? { params: { numGradSteps: args.steps } } : {}),
  ...(args.statsCorpus !== undefined ? { stats: { corpus: args.statsCorpus } } : {}),
});
const data = await editor.loadDataset(args.edits, { size: args.n });
const fmt = (x: [number, number] | undefined): string => (x === undefined ? "-" : x[0].toFixed(1));

const before = await editor.evaluate(data.records);
console.log(`unedited: efficacy ${fmt(before.summary.values["post_rewrite_success"])}  specificity ${fmt(before.summary.values["post_neighborhood_success"])}`);

const edited: EvalRecord[] = [];
const chunk = Math.max(1, Math.floor(args.n / 3));
for (let i = 0; i < data.records.length; i += chunk) {
  const part = data.records.slice(i, i + chunk);
  const report = await editor.edit(part.map((r) => r.request));
  const rejected = new Set(report.rejected.map((r) => r.caseId));
  edited.push(...part.filter((r) => !rejected.has(r.request.caseId)));
  const triggered = report.requests.filter((r) => r.noise?.triggered).length;
  const s = (await editor.evaluate(edited)).summary.values;
  console.log(
    `after ${editor.position} edits: efficacy ${fmt(s["post_rewrite_success"])}  generalization ${fmt(s["post_paraphrase_success"])}  specificity ${fmt(s["post_neighborhood_success"])}  (projection triggered ×${triggered})`,
  );
}
await editor.close();
