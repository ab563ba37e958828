/**
 * Where the subject's last token is (spec §3.4, "subject_last"), and the filled sentences.
 *
 * For a template string S = A + "{}" + B and a subject s: idx = |tokenize(A + s)| − 1, a position in
 * tokenize(A + s + B) (default special tokens, so a BOS counts). The rule assumes tokenize(A + s) is a
 * prefix of tokenize(A + s + B); when the suffix merges with the subject's last token the reference
 * index is kept and a warning is returned.
 */
import { DeltaEditError } from "../errors.js";
import type { TextTokenizer } from "../model/tokenizer.js";

export interface LocatedSentence {
  text: string; // A + s + B
  ids: number[]; // tokenize(text)
  subjectLast: number; // idx
  warning: string | null;
}

export function locateSubject(tok: TextTokenizer, template: string, subject: string, what: string): LocatedSentence {
  const at = template.indexOf("{}");
  if (at < 0 || template.indexOf("{}", at + 2) >= 0) throw new DeltaEditError("E_REQUEST", `${what}: template must contain exactly one "{}": ${JSON.stringify(template)}`, { context: { field: "prompt" } });
  const a = template.slice(0, at);
  const b = template.slice(at + 2);
  const text = a + subject + b;
  const prefix = tok.encode(a + subject);
  const ids = tok.encode(text);
  const subjectLast = prefix.length - 1;
  if (subjectLast < 0 || subjectLast >= ids.length) {
    throw new DeltaEditError("E_REQUEST", `${what}: cannot locate the subject's tokens in ${JSON.stringify(text)}`, { context: { field: "subject" } });
  }
  let warning: string | null = null;
  for (let i = 0; i < prefix.length; i++) {
    if (prefix[i] !== ids[i]) {
      warning = `${what}: the tokens of ${JSON.stringify(a + subject)} are not a prefix of those of ${JSON.stringify(text)} (the suffix merges with the subject); keeping the reference index ${subjectLast}`;
      break;
    }
  }
  return { text, ids, subjectLast, warning };
}

/** Fill a context template with a request prompt: the result still holds the subject slot. */
export function fillTemplate(template: string, prompt: string): string {
  return template.replace("{}", () => prompt);
}
