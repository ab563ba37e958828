/**
 * A port of NLTK's `word_tokenize` (NLTK 3.8: sentence splitting, then `NLTKWordTokenizer`,
 * the improved Treebank word tokenizer), used by the fluency metric (evaluation spec §3.7, Q11).
 *
 * Word tokenizer: the regex rules of `NLTKWordTokenizer.tokenize` in their original order
 * (starting quotes, punctuation, brackets, double dashes, ending quotes / clitics, MacIntyre
 * contractions), ported to JavaScript:
 * - Python 3 `\w` (Unicode) becomes `[\p{L}\p{N}_]`, and `\b` (which is ASCII-only in JS even with
 *   the `u` flag) becomes explicit look-arounds on that class;
 * - `\g<0>` / `\1` become `$&` / `$1`.
 *
 * SIMPLIFICATION (documented, Q11): NLTK splits sentences with the trained Punkt model. Here a
 * rule stands in for it: a sentence ends at `.`, `!` or `?` (optionally followed by closing
 * quotes/brackets) that is followed by whitespace and then an uppercase letter (or an opening
 * quote/bracket before one), EXCEPT after a few common abbreviations (Mr, Mrs, Ms, Dr, Prof, St,
 * Jr, Sr, vs, etc, e.g, i.e, No, Inc, Ltd, Co, Mt, Gen, Gov, Sen, Rep, Rev, Capt, Col, Lt, Sgt, U.S)
 * and single-letter initials ("J. Smith"). Punkt additionally learns abbreviations, ordinal
 * numbers and collocations from its corpus, and it also breaks after a non-abbreviation period
 * followed by a LOWERCASE word ("home. then"), where this rule does not. Only whether a
 * sentence-internal period is split off from its word is affected (one token per such period).
 */

const W = "[\\p{L}\\p{N}_]"; // Python 3 \w
const B_START = `(?<!${W})(?=${W})`; // \b before a word character
const B_END = `(?<=${W})(?!${W})`; // \b after a word character

type Rule = [RegExp, string];

const STARTING_QUOTES: Rule[] = [
  [/([«“‘„]|[`]+)/gu, " $1 "],
  [/^"/u, "``"],
  [/(``)/gu, " $1 "],
  [/([ ([{<])("|'{2})/gu, "$1 `` "],
  [new RegExp(`(')(?!re|ve|ll|m|t|s|d|n)(${W})${B_END}`, "giu"), "$1 $2"],
];

const ENDING_QUOTES: Rule[] = [
  [/([»”’])/gu, " $1 "],
  [/''/gu, " '' "],
  [/"/gu, " '' "],
  [/([^' ])('[sS]|'[mM]|'[dD]|') /gu, "$1 $2 "],
  [/([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) /gu, "$1 $2 "],
];

const PUNCTUATION: Rule[] = [
  [/([^.])(\.)([\])}>"'»”’ ]*)\s*$/u, "$1 $2 $3 "],
  [/([:,])([^\d])/gu, " $1 $2"],
  [/([:,])$/u, " $1 "],
  [/\.{2,}/gu, " $& "],
  [/[;@#$%&]/gu, " $& "],
  [/([^.])(\.)([\])}>"']*)\s*$/u, "$1 $2$3 "], // the final period
  [/[?!]/gu, " $& "],
  [/([^'])' /gu, "$1 ' "],
  [/[*]/gu, " $& "],
];

const PARENS_BRACKETS: Rule = [/[\][(){}<>]/gu, " $& "];
const DOUBLE_DASHES: Rule = [/--/gu, " -- "];

const CONTRACTIONS2: RegExp[] = [
  ["can", "not"],
  ["d", "'ye"],
  ["gim", "me"],
  ["gon", "na"],
  ["got", "ta"],
  ["lem", "me"],
  ["more", "'n"],
].map(([a, b]) => new RegExp(`${B_START}(${a})(${b})${B_END}`, "giu"));
const WANNA = /(?<![\p{L}\p{N}_])(wan)(na)(?=\s)/giu;
const CONTRACTIONS3: RegExp[] = [new RegExp(` ('t)(is)${B_END}`, "giu"), new RegExp(` ('t)(was)${B_END}`, "giu")];

/** NLTKWordTokenizer.tokenize for one sentence. */
export function treebankWordTokenize(text: string): string[] {
  let t = text;
  for (const [re, sub] of STARTING_QUOTES) t = t.replace(re, sub);
  for (const [re, sub] of PUNCTUATION) t = t.replace(re, sub);
  t = t.replace(PARENS_BRACKETS[0], PARENS_BRACKETS[1]);
  t = t.replace(DOUBLE_DASHES[0], DOUBLE_DASHES[1]);
  t = " " + t + " ";
  for (const [re, sub] of ENDING_QUOTES) t = t.replace(re, sub);
  for (const re of CONTRACTIONS2) t = t.replace(re, " $1 $2 ");
  t = t.replace(WANNA, " $1 $2 ");
  for (const re of CONTRACTIONS3) t = t.replace(re, " $1 $2 ");
  return t.split(/\s+/u).filter((s) => s.length > 0);
}

const ABBREVIATIONS = new Set(["mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "inc", "ltd", "co", "mt", "gen", "gov", "sen", "rep", "rev", "capt", "col", "lt", "sgt", "u.s"]);

/** The Punkt stand-in described in the module comment. */
export function sentTokenize(text: string): string[] {
  const out: string[] = [];
  const re = /[.!?]+["'”’)\]]*(\s+)(?=["'“‘(\[]?\p{Lu})/gu;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const end = m.index + m[0].length - m[1]!.length; // end of the sentence (before the whitespace)
    if (m[0].startsWith(".")) {
      const word = /(\S+)$/u.exec(text.slice(start, m.index))?.[1] ?? "";
      const bare = word.replace(/^["'“‘(\[]+/u, "").toLowerCase();
      if (ABBREVIATIONS.has(bare) || /^\p{L}$/u.test(bare)) continue;
    }
    const s = text.slice(start, end).trim();
    if (s.length > 0) out.push(s);
    start = m.index + m[0].length;
  }
  const rest = text.slice(start).trim();
  if (rest.length > 0) out.push(rest);
  return out;
}

/** nltk.word_tokenize(text): sentence split, then the word tokenizer on each sentence. */
export function wordTokenize(text: string): string[] {
  return sentTokenize(text).flatMap((s) => treebankWordTokenize(s));
}
