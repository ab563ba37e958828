// Which control facts an edit stream broke, and what the model answers instead:
//   node tools/world/control-failures.mjs <world-dir> <session-dir> [edits]
// <world-dir> is a trained world (model + world/control-facts.jsonl + world/edits.json); <session-dir>
// a bench or `deltaedit edit` session on it; [edits] the number of leading edit records it applied
// (default: the session's position). Uses the built dist/ of this checkout. One line per lost control
// fact, flagged S (its subject was edited), G (its first name is an edited subject's first name),
// N (the answer begins with one of the stream's new objects); then the counts.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const [world, sessionDir, editsArg] = process.argv.slice(2);
if (!world || !sessionDir) {
  console.error("usage: node tools/world/control-failures.mjs <world-dir> <session-dir> [edits]");
  process.exit(2);
}
const { Editor, LanguageModel, factAccuracy, generateText, setThreads } = await import(path.join(root, "dist/index.js"));
setThreads(1);
const readJsonl = (f) => fs.readFileSync(f, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
const control = readJsonl(path.join(world, "world/control-facts.jsonl"));
const editor = await Editor.open(sessionDir, { access: "read" });
const n = editsArg === undefined ? editor.position : Number(editsArg);
const edits = JSON.parse(fs.readFileSync(path.join(world, "world/edits.json"), "utf8")).slice(0, n);
const base = await LanguageModel.load(world);
const before = factAccuracy(base, control).correct;
const after = factAccuracy(editor.model, control).correct;
const newObjects = [...new Set(edits.map((e) => e.requested_rewrite.target_new.str))];
const editedSubjects = new Set(edits.map((e) => e.requested_rewrite.subject));
const editedFirstNames = new Set([...editedSubjects].map((s) => s.split(" ")[0]));
const counts = { knownBefore: 0, lost: 0, editedSubject: 0, sharedFirstName: 0, answersNewObject: 0 };
console.log(`session position ${editor.position}, ${n} edit records, ${control.length} control facts`);
for (let i = 0; i < control.length; i++) {
  if (!before[i]) continue;
  counts.knownBefore++;
  if (after[i]) continue;
  counts.lost++;
  const f = control[i];
  const context = f.prompt.replace("{}", f.subject);
  const answer = generateText(editor.model, context, { maxNewTokens: 3 }).text.trim();
  const s = editedSubjects.has(f.subject);
  const g = editedFirstNames.has(f.subject.split(" ")[0]);
  const nObj = newObjects.some((o) => answer.startsWith(o));
  counts.editedSubject += s ? 1 : 0;
  counts.sharedFirstName += g ? 1 : 0;
  counts.answersNewObject += nObj ? 1 : 0;
  console.log(`${s ? "S" : "-"}${g ? "G" : "-"}${nObj ? "N" : "-"} ${context} → [${answer}] (true: ${f.target})`);
}
console.log(JSON.stringify(counts));
await editor.close();
