/** Run the CLI in this process (`main` of src/cli/main.ts) with stdout and stderr captured. */
import { main } from "../../src/cli/main.js";

export async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}
