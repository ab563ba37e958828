/** Shared CLI helpers: load a model named by --model, parse --ids / --text inputs. */
import { DeltaEditError } from "../../errors.js";
import { LanguageModel } from "../../model/model.js";
import type { TextTokenizer } from "../../model/tokenizer.js";
import { intList, str, type CliIO, type ParsedArgs } from "../args.js";

export const modelOption = { type: "string" as const, description: "model directory (Hugging Face layout) or Hub repo id", required: true, valueName: "DIR|REPO" };
export const threadsOption = { type: "number" as const, description: "compute threads (default: all cores)", valueName: "N" };

export async function loadModel(args: ParsedArgs, io: CliIO, opts: { noTokenizer?: boolean } = {}): Promise<LanguageModel> {
  const threads = args["threads"];
  if (typeof threads === "number") {
    const ops = await import("../../kernels/ops.js");
    ops.setThreads(threads);
  }
  const lo: { noTokenizer?: boolean; log: (m: string) => void } = { log: (m) => io.err(m + "\n") };
  if (opts.noTokenizer) lo.noTokenizer = true;
  return LanguageModel.load(str(args, "model")!, lo);
}

export function needTokenizer(model: LanguageModel): TextTokenizer {
  if (!model.tokenizer) throw new DeltaEditError("E_TOKENIZER", `model ${model.dir ?? ""} has no tokenizer.json`);
  return model.tokenizer;
}

/** Token ids from --ids 1,2,3 or from text (--text / --prompt) through the tokenizer. */
export function inputIds(model: LanguageModel, args: ParsedArgs, textKey: "text" | "prompt"): number[] {
  const ids = str(args, "ids");
  const text = str(args, textKey);
  if ((ids === undefined) === (text === undefined)) throw new DeltaEditError("E_USAGE", `give exactly one of --ids or --${textKey}`);
  const out = ids !== undefined ? intList(ids, "ids") : needTokenizer(model).encode(text!);
  if (out.length === 0) throw new DeltaEditError("E_USAGE", `--${ids !== undefined ? "ids" : textKey} gives no tokens`);
  for (const t of out) if (t < 0 || t >= model.config.vocabSize) throw new DeltaEditError("E_USAGE", `--ids: token id ${t} is outside the vocabulary [0, ${model.config.vocabSize})`);
  return out;
}
