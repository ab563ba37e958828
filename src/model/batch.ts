/**
 * Right-padded token batches. Every path of deltaedit pads on the right (spec ODD-18): under
 * causal attention right padding cannot change any real position, and token indices count
 * from the left of the unpadded sequence.
 */
import { DeltaEditError } from "../errors.js";
import type { BatchShape } from "./arch/architecture.js";

/** Token ids of B rows of T positions, with each row's length. */
export interface Batch {
  ids: Int32Array; // (B·T) right-padded
  B: number;
  T: number; // max length
  lengths: number[]; // (B) real tokens per row
  shape: BatchShape;
}

/** A (row, position) pair addressing one token of a batch. */
export interface Position {
  row: number;
  pos: number;
}

/** A right-padded (B, T) batch of token sequences (`padId` after each row's end). */
export function makeBatch(seqs: readonly (readonly number[])[], padId: number, vocab?: number): Batch {
  if (seqs.length === 0) throw new DeltaEditError("E_ARG", "makeBatch: empty batch (no sequences)");
  const B = seqs.length;
  let T = 0;
  seqs.forEach((s, i) => {
    if (s.length === 0) throw new DeltaEditError("E_ARG", `makeBatch: sequence ${i} is empty`);
    T = Math.max(T, s.length);
  });
  const ids = new Int32Array(B * T).fill(padId);
  const lengths: number[] = [];
  let padded = false;
  seqs.forEach((s, b) => {
    s.forEach((tok, t) => {
      if (!Number.isInteger(tok) || tok < 0 || (vocab !== undefined && tok >= vocab)) {
        throw new DeltaEditError("E_ARG", `token id ${tok} at row ${b}, position ${t} is out of range [0, ${vocab ?? "∞"})`);
      }
      ids[b * T + t] = tok;
    });
    lengths.push(s.length);
    if (s.length < T) padded = true;
  });
  const positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = t;
  let keyMask: Uint8Array | null = null;
  if (padded) {
    keyMask = new Uint8Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < lengths[b]!; t++) keyMask[b * T + t] = 1;
  }
  return { ids, B, T, lengths, shape: { B, T, lengths, positions, keyMask, pastLength: 0 } };
}

/** Every real (non-pad) position of a batch, row-major. */
export function realPositions(batch: Batch): Position[] {
  const out: Position[] = [];
  for (let row = 0; row < batch.B; row++) for (let pos = 0; pos < batch.lengths[row]!; pos++) out.push({ row, pos });
  return out;
}

export function checkPositions(batch: Batch, at: readonly Position[], what: string): void {
  for (const p of at) {
    if (!Number.isInteger(p.row) || p.row < 0 || p.row >= batch.B || !Number.isInteger(p.pos) || p.pos < 0 || p.pos >= batch.lengths[p.row]!) {
      throw new DeltaEditError("E_ARG", `${what}: position (row ${p.row}, pos ${p.pos}) is outside the batch (B=${batch.B}, row length ${batch.lengths[p.row] ?? "n/a"})`);
    }
  }
}
