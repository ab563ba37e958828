// Write a loadable world directory from a trainer checkpoint (inspect a run while it trains):
//   node tools/world/snapshot.mjs <train-state/state-N.safetensors> <out-dir> [seed]
// Uses the built dist/ of this checkout; the world (tokenizer, kb, edits) is rebuilt from the seed.
import path from "node:path";
import { fileURLToPath } from "node:url";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const [state, out, seedArg] = process.argv.slice(2);
if (!state || !out) {
  console.error("usage: node tools/world/snapshot.mjs <state-N.safetensors> <out-dir> [seed]");
  process.exit(2);
}
const { buildWorld } = await import(path.join(root, "dist/eval/world/world.js"));
const { writeWorldDir } = await import(path.join(root, "dist/eval/world/trainworld.js"));
const { LanguageModel } = await import(path.join(root, "dist/model/model.js"));
const { SafetensorsFile } = await import(path.join(root, "dist/model/safetensors.js"));
const world = buildWorld({ seed: Number(seedArg ?? 0) });
const model = LanguageModel.random(world.config, 0);
const f = SafetensorsFile.open(state);
for (const name of model.params.names()) f.readInto("param." + name, model.params.get(name));
f.close();
writeWorldDir(out, world, model, "F32");
console.log(`wrote ${out}`);
