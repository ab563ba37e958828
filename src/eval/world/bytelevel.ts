/**
 * GPT-2 byte-level pieces shared by the BPE trainer and encoder:
 *   - the byte ↔ unicode-character table (every byte maps to a printable character; space → "Ġ"),
 *   - the GPT-2 pre-tokenization regex (chunks such as " Paris", "'s", "  "),
 *   - splitting text around special tokens (which are never pre-tokenized or merged).
 */

/** GPT-2's pre-tokenization pattern (compiled per call with flags "gu"; a /g regex is stateful). */
export const GPT2_SPLIT_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

function buildByteToUnicode(): readonly string[] {
  // Printable bytes keep their own code point; the other 68 get 256, 257, ... in byte order.
  const keep = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep(b) ? b : 256 + extra++);
  return Object.freeze(table);
}

/** BYTE_TO_UNICODE[b]: the one-character string standing for byte b (256 entries). */
export const BYTE_TO_UNICODE: readonly string[] = buildByteToUnicode();

/** Inverse of BYTE_TO_UNICODE. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

/** GPT-2 pre-tokenization of plain text (no special tokens) into chunks. */
export function preTokenize(text: string): string[] {
  return text.match(new RegExp(GPT2_SPLIT_PATTERN, "gu")) ?? [];
}

/** The byte-level string of a chunk: its UTF-8 bytes mapped through BYTE_TO_UNICODE. */
export function toByteLevel(chunk: string, enc: TextEncoder): string {
  const bytes = enc.encode(chunk);
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_UNICODE[bytes[i]!]!;
  return s;
}

/** Decode a concatenation of byte-level strings back to text (invalid UTF-8 becomes U+FFFD). */
export function fromByteLevel(s: string): string {
  const bytes: number[] = [];
  for (const ch of s) {
    const b = UNICODE_TO_BYTE.get(ch);
    if (b === undefined) throw new RangeError(`fromByteLevel: character U+${ch.codePointAt(0)!.toString(16)} is not a byte-level symbol`);
    bytes.push(b);
  }
  return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(new Uint8Array(bytes));
}

/** A piece of text: plain (to be pre-tokenized) or one special token. */
export type Segment = { readonly special: false; readonly text: string } | { readonly special: true; readonly text: string };

/** Split `text` around occurrences of `specials` (earliest match first; the longest on a tie). */
export function splitSpecial(text: string, specials: readonly string[]): Segment[] {
  const out: Segment[] = [];
  let start = 0;
  for (;;) {
    let at = -1;
    let hit = "";
    for (const s of specials) {
      if (s.length === 0) continue;
      const j = text.indexOf(s, start);
      if (j >= 0 && (at < 0 || j < at || (j === at && s.length > hit.length))) {
        at = j;
        hit = s;
      }
    }
    if (at < 0) break;
    if (at > start) out.push({ special: false, text: text.slice(start, at) });
    out.push({ special: true, text: hit });
    start = at + hit.length;
  }
  if (start < text.length) out.push({ special: false, text: text.slice(start) });
  return out;
}
