/** Option-record checks shared by the fact-world builders (private to src/eval/world). */
import { DeltaEditError } from "../../errors.js";

/** Reject unknown keys (a misspelling would otherwise silently use the default). */
export function checkOptionKeys(fn: string, opts: object, allowed: readonly string[]): void {
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) {
      const near = allowed.find((a) => a.toLowerCase() === k.toLowerCase());
      throw new DeltaEditError("E_ARG", `${fn}: unknown option "${k}"${near !== undefined ? ` (did you mean "${near}"?)` : ""} (allowed: ${allowed.join(", ")})`, {
        context: { key: k },
      });
    }
  }
}
