import { str, bool, type CommandSpec } from "../args.js";
import { DeltaEditError } from "../../errors.js";
import { resolveModelDir } from "../../model/hub.js";
import { loadTokenizer } from "../../model/tokenizer.js";
import { modelOption } from "./_model.js";

export const command: CommandSpec = {
  name: "tokenize",
  summary: "print the token ids of a text (with the tokenizer's own special-token handling)",
  usage: "deltaedit tokenize --model DIR --text STR [--json] [--no-special]",
  options: {
    model: modelOption,
    text: { type: "string", description: "text to tokenize", required: true, valueName: "STR" },
    json: { type: "boolean", description: 'print {"ids":[…]}' },
    "no-special": { type: "boolean", description: "do not add special tokens (e.g. Llama's BOS)" },
  },
  async run(args, io) {
    const dir = await resolveModelDir(str(args, "model")!, { log: (m) => io.err(m + "\n") });
    const tok = loadTokenizer(dir);
    const text = str(args, "text");
    if (text === undefined) throw new DeltaEditError("E_USAGE", "tokenize: --text is required");
    const ids = tok.encode(text, { addSpecialTokens: !bool(args, "no-special") });
    if (bool(args, "json")) io.out(JSON.stringify({ ids }) + "\n");
    else io.out(ids.map((id) => `${id}\t${JSON.stringify(tok.idToToken(id) ?? "")}`).join("\n") + "\n");
    return 0;
  },
};
