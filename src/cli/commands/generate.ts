import { DeltaEditError } from "../../errors.js";
import { generateText, type GenerateTextOptions } from "../../model/generateText.js";
import { bool, num, type CommandSpec } from "../args.js";
import { inputIds, loadModel, modelOption, needTokenizer, threadsOption } from "./_model.js";

export const command: CommandSpec = {
  name: "generate",
  summary: "generate a continuation with a KV cache: greedy, or seeded top-k sampling",
  usage: "deltaedit generate --model DIR (--ids … | --prompt STR) --max-new-tokens N [--greedy | --top-k K --seed S] [--json]",
  options: {
    model: modelOption,
    ids: { type: "string", description: "comma-separated prompt token ids", valueName: "IDS" },
    prompt: { type: "string", description: "prompt text (tokenized with the model's tokenizer)", valueName: "STR" },
    "max-new-tokens": { type: "number", description: "number of tokens to generate", default: 32, valueName: "N" },
    greedy: { type: "boolean", description: "greedy decoding (the default)" },
    "top-k": { type: "number", description: "sample from the k most probable tokens", valueName: "K" },
    seed: { type: "number", description: "seed for top-k sampling", default: 0, valueName: "S" },
    "stop-at-eos": { type: "boolean", description: "stop when the model emits its EOS token" },
    json: { type: "boolean", description: 'print {"generated":[…new ids…],"text":"…"}' },
    threads: threadsOption,
  },
  async run(args, io) {
    const topK = num(args, "top-k");
    if (topK !== undefined && bool(args, "greedy")) throw new DeltaEditError("E_USAGE", "generate: --greedy and --top-k are mutually exclusive");
    const n = num(args, "max-new-tokens")!;
    if (!Number.isInteger(n) || n < 0) throw new DeltaEditError("E_USAGE", `generate: --max-new-tokens must be a non-negative integer, got ${n}`);
    const model = await loadModel(args, io);
    const prompt = inputIds(model, args, "prompt");
    const opts: GenerateTextOptions = { maxNewTokens: n, stopAtEos: bool(args, "stop-at-eos") };
    if (topK !== undefined) {
      opts.topK = topK;
      opts.seed = num(args, "seed") ?? 0;
    }
    const { ids: gen, text } = generateText(model, prompt, opts);
    const tok = model.tokenizer;
    if (bool(args, "json")) io.out(JSON.stringify({ generated: gen, text }) + "\n");
    else io.out((tok ? needTokenizer(model).decode(prompt) + text : gen.join(",")) + "\n");
    return 0;
  },
};
