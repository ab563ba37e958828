/**
 * Seeded mutators for the fuzz test: byte-level (flip, truncate, splice), line-level (duplicate,
 * swap, delete, truncate a line) and JSON-structural (replace one value anywhere in a document by a
 * hostile one: wrong types, huge or negative numbers, deep nesting, long strings).
 */
import { Rng } from "../../src/util/rng.js";

export interface Mutant {
  data: Buffer;
  what: string; // human-readable description of the mutation
}

/** Hostile JSON values (built lazily: some are large). */
const HOSTILE: readonly (() => unknown)[] = [
  () => null,
  () => -1,
  () => 0,
  () => 1e9,
  () => 2 ** 32 + 1,
  () => 1e308,
  () => -0.5,
  () => 2.5,
  () => "x",
  () => "",
  () => true,
  () => ({}),
  () => [],
  () => [1, 2, 3],
  () => ({ a: { b: 1 } }),
  () => "y".repeat(100_000),
  () => DEEP_MARK,
  () => Array.from({ length: 1000 }, (_, i) => i),
];

/** Stands for a value nested 100 000 arrays deep, spliced in as text (JSON.stringify would recurse). */
const DEEP_MARK = "\u0000deep\u0000";
const DEEP_TEXT = "[".repeat(100_000) + "0" + "]".repeat(100_000);

/** Paths of every value in a JSON document (arrays sampled to at most 8 elements per level). */
function valuePaths(doc: unknown, rng: Rng, limit = 4000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const stack: { v: unknown; p: (string | number)[] }[] = [{ v: doc, p: [] }];
  while (stack.length > 0 && out.length < limit) {
    const { v, p } = stack.pop()!;
    out.push(p);
    if (Array.isArray(v)) {
      const n = v.length;
      const picks = n <= 8 ? [...Array(n).keys()] : Array.from({ length: 8 }, () => rng.int(n));
      for (const i of picks) stack.push({ v: v[i], p: [...p, i] });
    } else if (v && typeof v === "object") {
      const keys = Object.keys(v);
      const picks = keys.length <= 64 ? keys : Array.from({ length: 64 }, () => keys[rng.int(keys.length)]!);
      for (const k of picks) stack.push({ v: (v as Record<string, unknown>)[k], p: [...p, k] });
    }
  }
  return out;
}

function setAt(doc: unknown, p: (string | number)[], value: unknown, del: boolean): unknown {
  if (p.length === 0) return value;
  let cur = doc as Record<string | number, unknown>;
  for (let i = 0; i < p.length - 1; i++) cur = cur[p[i]!] as Record<string | number, unknown>;
  const last = p[p.length - 1]!;
  if (del) {
    if (Array.isArray(cur)) cur.splice(last as number, 1);
    else delete cur[last];
  } else cur[last] = value;
  return doc;
}

/** One structural mutation of a JSON document. */
export function mutateJson(text: string, rng: Rng): Mutant {
  const doc = JSON.parse(text) as unknown;
  const paths = valuePaths(doc, rng);
  const p = paths[rng.int(paths.length)]!;
  const del = p.length > 0 && rng.uniform() < 0.15;
  const h = rng.int(HOSTILE.length);
  const value = HOSTILE[h]!();
  const out = setAt(doc, p, value, del);
  const shown = typeof value === "string" && value.length > 20 ? `"${value.length} chars"` : Array.isArray(value) && value.length > 8 ? `[${value.length} items]` : value === DEEP_MARK ? "[[[…100 000 deep…]]]" : JSON.stringify(value);
  return { data: Buffer.from(JSON.stringify(out).replace(JSON.stringify(DEEP_MARK), DEEP_TEXT)), what: `${del ? "delete" : `set ${shown} at`} /${p.join("/")}` };
}

/** One byte-level mutation. */
export function mutateBytes(data: Buffer, rng: Rng, region?: { start: number; end: number }): Mutant {
  const start = region?.start ?? 0;
  const end = Math.min(region?.end ?? data.length, data.length);
  const at = start + rng.int(Math.max(1, end - start));
  const kind = rng.int(4);
  const out = Buffer.from(data);
  if (kind === 0) {
    out[at] = out[at]! ^ (1 << rng.int(8));
    return { data: out, what: `flip a bit of byte ${at}` };
  }
  if (kind === 1) return { data: data.subarray(0, at), what: `truncate at byte ${at}` };
  if (kind === 2) {
    out[at] = rng.int(256);
    return { data: out, what: `set byte ${at} to ${out[at]}` };
  }
  const n = 1 + rng.int(16);
  return { data: Buffer.concat([data.subarray(0, at), Buffer.from(Array.from({ length: n }, () => rng.int(256))), data.subarray(at)]), what: `insert ${n} random bytes at ${at}` };
}

/** One line-level mutation of a text file (lines split on "\n"). */
export function mutateLines(text: string, rng: Rng): Mutant {
  const lines = text.split("\n");
  const hasNl = lines[lines.length - 1] === "";
  if (hasNl) lines.pop();
  const n = lines.length;
  const i = rng.int(n);
  const kind = rng.int(6);
  let what: string;
  if (kind === 0) {
    lines.splice(i, 0, lines[i]!);
    what = `duplicate line ${i + 1}`;
  } else if (kind === 1 && n > 1) {
    const j = (i + 1 + rng.int(n - 1)) % n;
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    what = `swap lines ${i + 1} and ${j + 1}`;
  } else if (kind === 2) {
    lines.splice(i, 1);
    what = `delete line ${i + 1}`;
  } else if (kind === 3) {
    lines[i] = lines[i]!.slice(0, rng.int(lines[i]!.length));
    what = `truncate line ${i + 1}`;
  } else if (kind === 4) {
    lines[i] = ["null", "42", "[]", "{}", '"x"'][rng.int(5)]!;
    what = `replace line ${i + 1} by ${lines[i]}`;
  } else {
    try {
      const m = mutateJson(lines[i]!, rng);
      lines[i] = m.data.toString();
      what = `line ${i + 1}: ${m.what}`;
    } catch {
      lines.splice(i, 1);
      what = `delete line ${i + 1}`;
    }
  }
  return { data: Buffer.from(lines.join("\n") + (hasNl ? "\n" : "")), what };
}

export { Rng };
