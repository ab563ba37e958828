import { bool, type CommandSpec } from "../args.js";
import { makeBatch } from "../../model/batch.js";
import { forward } from "../../model/forward.js";
import { argmax } from "../../model/generate.js";
import { inputIds, loadModel, modelOption, threadsOption } from "./_model.js";

export const command: CommandSpec = {
  name: "logits",
  summary: "print next-token logits for every input position (teacher forcing)",
  usage: "deltaedit logits --model DIR (--ids 1,2,3 | --text STR) [--json]",
  options: {
    model: modelOption,
    ids: { type: "string", description: "comma-separated token ids", valueName: "IDS" },
    text: { type: "string", description: "text, tokenized with the model's tokenizer", valueName: "STR" },
    json: { type: "boolean", description: 'print {"ids":[…],"logits":[[…vocab…],…]}' },
    threads: threadsOption,
  },
  async run(args, io) {
    const model = await loadModel(args, io);
    const ids = inputIds(model, args, "text");
    const batch = makeBatch([ids], 0, model.config.vocabSize);
    const res = forward(model, batch, { logits: "all" });
    const V = model.config.vocabSize;
    const logits = res.logits!;
    if (bool(args, "json")) {
      // one row per input position; numbers printed with full float32 precision
      const rows: string[] = [];
      for (let t = 0; t < ids.length; t++) rows.push("[" + Array.from(logits.subarray(t * V, (t + 1) * V), (x) => fmt(x)).join(",") + "]");
      io.out(`{"ids":${JSON.stringify(ids)},"logits":[${rows.join(",")}]}\n`);
    } else {
      const tok = model.tokenizer;
      for (let t = 0; t < ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        const a = argmax(row);
        io.out(`${t}\tid ${ids[t]}\t${JSON.stringify(tok?.idToToken(ids[t]!) ?? "")}\t→ argmax ${a} ${JSON.stringify(tok?.idToToken(a) ?? "")} (logit ${row[a]!.toFixed(4)})\n`);
      }
    }
    return 0;
  },
};

function fmt(x: number): string {
  return Number.isFinite(x) ? String(Math.fround(x)) : "null";
}
