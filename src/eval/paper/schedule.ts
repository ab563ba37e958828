/**
 * The `paper` reproduction's schedule: which stream, which checkpoints, which β values.
 *
 * The DeltaEdit paper edits GPT2-XL (hidden width C = 1600) 3 000 times, scored after 200, 500,
 * 1 000, 2 000 and 3 000 edits. What makes a stream "long" for a model is the number of edits per
 * hidden dimension (the edits' influence vectors live in a C-dimensional space; evaluation spec §6),
 * so on a model of width C the paper's checkpoints are scaled by C / 1600:
 *
 *   scaled(p) = max(1, round(p · C / 1600))          p ∈ {200, 500, 1000, 2000, 3000}
 *
 * capped at the stream length (a checkpoint past the end becomes the end), duplicates removed. The
 * default stream is 8·C edits (capped by the records available), longer than the paper's 1.875·C, so
 * the stream goes on past the last scaled checkpoint; there the checkpoints continue at k·C for
 * k = 4, 8, 16, … below the stream's end ("extension"), and the end itself is always a checkpoint.
 *
 * Examples: GPT2-XL (C 1600), 12 800 edits → 200, 500, 1000, 2000, 3000, 6400, 12800; the fact world
 * (C 256), 2 048 edits → 32, 80, 160, 320, 480, 1024, 2048.
 *
 * The β sweep (DeltaEdit's trigger width, `varMultiplier`: a request is projected when its noise
 * leaves μ ± β·σ) runs on a shorter stream of 2·C edits (capped by the main stream).
 */
import { DeltaEditError } from "../../errors.js";

/** GPT2-XL's hidden width, the paper's model. */
export const PAPER_WIDTH = 1600;
/** The paper's checkpoints on GPT2-XL (edits). */
export const PAPER_CHECKPOINTS: readonly number[] = Object.freeze([200, 500, 1000, 2000, 3000]);
/** Default main stream: this many edits per hidden dimension (issue #13: ≥ 8·C). */
export const STREAM_PER_WIDTH = 8;
/** Default β-sweep stream: this many edits per hidden dimension. */
export const SWEEP_PER_WIDTH = 2;
/** Default β values of the sweep (DeltaEdit's `varMultiplier`; the presets use 3 for GPT2-XL, 1.5 for Llama3-8B). */
export const DEFAULT_BETAS: readonly number[] = Object.freeze([0.5, 1, 2, 3, 5]);

/** The checkpoints of a stream on a model of hidden width `hidden`, and how they were obtained. */
export interface PaperSchedule {
  hidden: number; // C of the model
  stream: number; // edits in the main stream
  /** Each paper checkpoint and the checkpoint it became (after scaling and capping). */
  scaled: { paper: number; scaled: number }[];
  /** Checkpoints at k·C (k = 4, 8, …) past the paper's range, below the stream's end. */
  extension: number[];
  /** All checkpoints, ascending, ending at `stream`. */
  checkpoints: number[];
  /** The rule in words, with this model's numbers (printed by the CLI, written to paper.json). */
  rule: string;
}

/** Default stream length: 8·C, capped by the records available. */
export function defaultStreamLength(hidden: number, available: number): number {
  checkPositiveInt(hidden, "hidden");
  return Math.min(STREAM_PER_WIDTH * hidden, available);
}

/** Default β-sweep stream: 2·C, capped by the main stream. */
export function defaultSweepLength(hidden: number, stream: number): number {
  checkPositiveInt(hidden, "hidden");
  return Math.min(SWEEP_PER_WIDTH * hidden, stream);
}

/** The paper's checkpoints scaled to width `hidden`, capped at `stream`, plus the extension and the end (see the header). */
export function paperSchedule(hidden: number, stream: number): PaperSchedule {
  checkPositiveInt(hidden, "hidden");
  checkPositiveInt(stream, "stream");
  const factor = hidden / PAPER_WIDTH;
  const scaled = PAPER_CHECKPOINTS.map((p) => ({ paper: p, scaled: Math.min(stream, Math.max(1, Math.round(p * factor))) }));
  const lastPaper = Math.max(...scaled.map((s) => s.scaled));
  const extension: number[] = [];
  for (let k = 4; k * hidden < stream; k *= 2) if (k * hidden > lastPaper) extension.push(k * hidden);
  const checkpoints = [...new Set([...scaled.map((s) => s.scaled), ...extension, stream])].sort((a, b) => a - b);
  const rule =
    `checkpoints = the paper's ${PAPER_CHECKPOINTS.join("/")} edits on GPT2-XL (C ${PAPER_WIDTH}) × C/${PAPER_WIDTH} = ${hidden}/${PAPER_WIDTH} = ${Number(factor.toPrecision(4))}, rounded, capped at the stream (${stream}): ` +
    scaled.map((s) => `${s.paper}→${s.scaled}`).join(", ") +
    (extension.length > 0 ? `; then k·C for k = 4, 8, … below the end: ${extension.join(", ")}` : "") +
    `; and the end, ${stream}`;
  return { hidden, stream, scaled, extension, checkpoints, rule };
}

function checkPositiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw new DeltaEditError("E_ARG", `paper schedule: ${name} must be a positive integer, got ${v}`);
}
