/**
 * DeltaEdit's two variants (spec §4.4, "Paper-as-written variant"): "official" (the official code:
 * two-sided trigger, top-q directions of [n | ΔW_acc]) and "paper" (one-sided trigger ν > μ + β·σ,
 * the non-zero left singular directions of ΔW_acc alone, at most ⌊3d/4⌋, smallest dropped first).
 * The noise sequences and matrices are constructed so that every assertion holds by a margin far
 * above float32 rounding (the margins are stated next to the assertions); nothing compares bits
 * across thread counts. The session part compares a live run with its replay and with a resumed run
 * in the same process (same thread count), which the session format guarantees to be bit-identical.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import * as ops from "../../src/kernels/ops.js";
import { prepareSecondMoments } from "../../src/cli/commands/_stats.js";
import { bareBlockOutputs, bareKeys } from "../../src/edit/keys.js";
import { DeltaEdit } from "../../src/edit/methods/deltaedit.js";
import { methodDisplayName, type BatchOutcome, type EditContext } from "../../src/edit/methods/method.js";
import { createMethod } from "../../src/edit/methods/registry.js";
import { buildPaperProjector, NoiseMonitor, noiseVector, PAPER_RANK_CAP_FRACTION, type InfluenceProjector } from "../../src/edit/noise.js";
import { readRequestsFile, type EditRequest } from "../../src/edit/request.js";
import { EditSession } from "../../src/edit/session/session.js";
import { generateContextTemplates } from "../../src/edit/templates.js";
import { DeltaEditError } from "../../src/errors.js";
import { methodLabel } from "../../src/eval/report/benchReport.js";
import { LanguageModel } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";
import { matmul, randn, zLayerDelta } from "./_fixtures.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-variant-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const MODEL = fixtureModel("stories260k");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const EDITS = path.join(repoRoot(), "test", "fixtures", "edits", "stories-64.jsonl");

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

// ───────────────────────────── (a) trigger: two-sided vs one-sided ─────────────────────────────

test("variant trigger: unusually SMALL ν fires the official (two-sided) test only; unusually LARGE ν fires both", () => {
  // state after 20 requests: μ = 10, σ² = 0.01 (σ = 0.1), β = 3 → band [9.7, 10.3]; margins ≥ 0.1 ≫ rounding
  const state = { requestCount: 20, mu: 10, variance: 0.01 };
  const monitors = () => ({ official: new NoiseMonitor({ varMultiplier: 3 }, state), paper: new NoiseMonitor({ varMultiplier: 3, variant: "paper" }, state) });
  // ν = 9.5: |ν − μ| = 0.5 > 0.3, but ν − μ = −0.5 is not > 0.3
  let m = monitors();
  const oSmall = m.official.observe(m.official.beginRequest(), 9.5);
  const pSmall = m.paper.observe(m.paper.beginRequest(), 9.5);
  assert.equal(oSmall.triggered, true, "official: small ν (|ν − μ| = 0.5 > 3σ = 0.3) triggers");
  assert.equal(pSmall.triggered, false, "paper: small ν does not trigger (one-sided)");
  assert.deepEqual({ mu: oSmall.mu, variance: oSmall.variance }, { mu: 10, variance: 0.01 }, "official triggered: statistics unchanged");
  // paper, not triggered: μ = 0.9·10 + 0.1·9.5 = 9.95; σ² = 0.9·0.01 + 0.1·(9.5 − 9.95)² = 0.02925 (tol 1e-12, float64)
  assert.ok(Math.abs(pSmall.mu - 9.95) < 1e-12 && Math.abs(pSmall.variance - 0.02925) < 1e-12, `paper updates the EMA: μ ${pSmall.mu}, σ² ${pSmall.variance}`);
  // ν = 10.5: ν − μ = 0.5 > 0.3 → both trigger, neither updates
  m = monitors();
  for (const [name, mon] of Object.entries(m)) {
    const o = mon.observe(mon.beginRequest(), 10.5);
    assert.equal(o.triggered, true, `${name}: large ν triggers`);
    assert.deepEqual(mon.state, { requestCount: 21, mu: 10, variance: 0.01 }, `${name}: triggered → no update`);
  }
  // ν = 10.2 (inside the band): neither
  m = monitors();
  for (const [name, mon] of Object.entries(m)) assert.equal(mon.observe(mon.beginRequest(), 10.2).triggered, false, `${name}: ν inside the band`);
  // warm-up (c ≤ 20) and σ² = 0 hold for "paper" as well
  const warm = new NoiseMonitor({ varMultiplier: 3, variant: "paper" }, { requestCount: 19, mu: 10, variance: 0.01 });
  assert.equal(warm.observe(warm.beginRequest(), 100).triggered, false, "paper: c = 20 ≤ warm-up does not trigger");
  const flat = new NoiseMonitor({ varMultiplier: 3, variant: "paper" }, { requestCount: 30, mu: 10, variance: 0 });
  assert.equal(flat.observe(flat.beginRequest(), 100).triggered, false, "paper: σ² = 0 never triggers");
  // the variant survives serialize → deserialize (session state)
  const back = NoiseMonitor.deserialize(JSON.parse(JSON.stringify(new NoiseMonitor({ variant: "paper" }).serialize())) as ReturnType<NoiseMonitor["serialize"]>);
  assert.equal(back.params.variant, "paper");
  assert.equal(new NoiseMonitor().params.variant, "official", "default variant");
});

// ───────────────────────────── (b) the paper projector ─────────────────────────────

/** ΔW = U diag(s) Vᵀ (d, dIn) stored float32, with U (d, r), V (dIn, r) orthonormal columns; returns U as rows (r, d). */
function knownSpectrum(rng: Rng, d: number, dIn: number, s: readonly number[]): { deltaW: Float32Array; uT: Float32Array } {
  const r = s.length;
  const orth = (n: number): Float64Array => {
    // r orthonormal vectors of length n (modified Gram–Schmidt in float64), as rows (r, n)
    const q = Float64Array.from(randn(rng, r, n));
    for (let i = 0; i < r; i++) {
      for (let k = 0; k < i; k++) {
        let dot = 0;
        for (let t = 0; t < n; t++) dot += q[i * n + t]! * q[k * n + t]!;
        for (let t = 0; t < n; t++) q[i * n + t]! -= dot * q[k * n + t]!;
      }
      let nn = 0;
      for (let t = 0; t < n; t++) nn += q[i * n + t]! ** 2;
      for (let t = 0; t < n; t++) q[i * n + t]! /= Math.sqrt(nn);
    }
    return q;
  };
  const u = orth(d);
  const v = orth(dIn);
  const deltaW = new Float32Array(d * dIn);
  for (let i = 0; i < d; i++) for (let j = 0; j < dIn; j++) {
    let x = 0;
    for (let k = 0; k < r; k++) x += u[k * d + i]! * s[k]! * v[k * dIn + j]!;
    deltaW[i * dIn + j] = x;
  }
  return { deltaW, uT: Float32Array.from(u) };
}

/** P_δ as a dense (d, d) matrix: row i = P_δ e_i (P_δ is symmetric). */
function dense(p: InfluenceProjector): Float32Array {
  const d = p.d;
  const out = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    const e = new Float32Array(d);
    e[i] = 1;
    out.set(p.apply(e), i * d);
  }
  return out;
}

/**
 * Float32 storage of ΔW perturbs it by E with ‖E‖₂ ≤ ‖E‖_F ≤ 2⁻²⁴‖ΔW‖_F (≈ 6e-8·‖s‖). By Weyl's
 * inequality every singular value moves by at most that, so the rank decisions below have margins of
 * ≥ 10× on both sides of the cut 1e-6·s_1, and directions with a gap ≥ 0.5 are within ‖E‖/gap ≈ 1e-6
 * of the constructed ones. TOL = 1e-5 covers that plus float32 rounding in P_δ (d = 16).
 */
const TOL = 1e-5;

test("paper projector: rank(ΔW_acc) = r < ⌊3d/4⌋ → P_δ has rank d − r, annihilates col(ΔW_acc), symmetric idempotent; tiny s_j cut at 1e-6·s_1", () => {
  const rng = new Rng(11);
  const d = 16, dIn = 40;
  // s_4 = 5e-5 = 1e-5·s_1 (kept: 10× above the cut), s_5 = 5e-9 = 1e-9·s_1 (cut: below it even with ‖E‖ ≤ 4e-7)
  const s = [5, 3, 2, 0.5, 5e-5, 5e-9];
  const { deltaW, uT } = knownSpectrum(rng, d, dIn, s);
  const p = buildPaperProjector(deltaW, d, dIn);
  assert.equal(p.variant, "paper");
  assert.equal(p.cap, Math.floor(d * PAPER_RANK_CAP_FRACTION));
  assert.equal(p.rank, 5, "J = the 5 singular values above 1e-6·s_1");
  for (let j = 0; j < 4; j++) {
    const e = Math.abs(p.topEigenvalues[j]! - s[j]! ** 2) / s[j]! ** 2;
    assert.ok(e < 1e-5, `λ_${j} = s_${j}²: rel err ${e} (tol 1e-5)`);
  }
  const P = dense(p);
  let trace = 0;
  for (let i = 0; i < d; i++) trace += P[i * d + i]!;
  assert.ok(Math.abs(trace - (d - 5)) < TOL * d, `rank P_δ = trace = d − r = ${d - 5}, got ${trace} (tol ${TOL * d})`);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.ok(Math.abs(P[i * d + j]! - P[j * d + i]!) < TOL, `P_δ symmetric at (${i},${j}) (tol ${TOL})`);
  const P2 = matmul(P, P, d, d, d);
  for (let i = 0; i < d * d; i++) assert.ok(Math.abs(P2[i]! - P[i]!) < TOL, `P_δ² = P_δ at ${i}: ${P2[i]} vs ${P[i]} (tol ${TOL})`);
  // P_δ u_k = 0 for the kept directions (‖u_k‖ = 1), P_δ u_5 = u_5 for the cut one. The singular
  // directions of the stored (float32) ΔW_acc differ from the constructed u_k by sin θ ≤ ‖E‖ / gap
  // (Wedin): ≤ 1e-6 for the well-separated u_0..u_3 (gap ≥ 0.5, within TOL), but for u_4 (s = 5e-5,
  // gap ≈ 5e-5) up to ‖E‖_F / (s_4 − s_5 − ‖E‖_F) ≈ 8e-3, which is what u_4 is checked against.
  const eBound = 2 ** -24 * norm(s); // ‖E‖₂ ≤ ‖E‖_F ≤ 2⁻²⁴ ‖ΔW‖_F
  const tolSmall = eBound / (s[4]! - s[5]! - eBound) + TOL;
  for (let k = 0; k < 6; k++) {
    const pu = p.apply(uT.subarray(k * d, (k + 1) * d));
    const tol = k === 4 ? tolSmall : TOL;
    if (k < 5) assert.ok(norm(pu) < tol, `‖P_δ u_${k}‖ = ${norm(pu)} (tol ${tol})`);
    else assert.ok(Math.abs(norm(pu) - 1) < TOL, `the cut direction u_5 passes: ‖P_δ u_5‖ = ${norm(pu)}`);
  }
  // col(ΔW_acc): P_δ ΔW_acc ≈ 0 relative to ‖ΔW_acc‖ (only the cut s_5 = 5e-9 and rounding remain)
  const pw = matmul(P, deltaW, d, d, dIn);
  assert.ok(norm(pw) < TOL * norm(deltaW), `‖P_δ ΔW_acc‖ / ‖ΔW_acc‖ = ${norm(pw) / norm(deltaW)} (tol ${TOL})`);
  // ΔW_acc = 0 → nothing removed
  assert.equal(buildPaperProjector(new Float32Array(d * dIn), d, dIn).rank, 0, "ΔW_acc = 0 → P_δ = I");
});

test("paper projector: rank(ΔW_acc) > ⌊3d/4⌋ → exactly ⌊3d/4⌋ directions removed, the smallest dropped", () => {
  const rng = new Rng(12);
  const d = 16, dIn = 40;
  const s = Array.from({ length: 14 }, (_, k) => 14 - k); // 14, 13, …, 1: gaps of 1 ≫ ‖E‖
  const { deltaW, uT } = knownSpectrum(rng, d, dIn, s);
  const p = buildPaperProjector(deltaW, d, dIn);
  assert.equal(p.cap, 12, "⌊3·16/4⌋");
  assert.equal(p.rank, 12, "14 non-zero directions, capped at 12");
  for (let k = 0; k < 14; k++) {
    const pu = norm(p.apply(uT.subarray(k * d, (k + 1) * d)));
    if (k < 12) assert.ok(pu < TOL, `u_${k} (s = ${s[k]}) removed: ‖P_δ u‖ = ${pu} (tol ${TOL})`);
    else assert.ok(Math.abs(pu - 1) < TOL, `u_${k} (s = ${s[k]}, among the 2 smallest) kept: ‖P_δ u‖ = ${pu} (tol ${TOL})`);
  }
});

// ───────────────────────────── (d) configuration ─────────────────────────────

test("variant: a bad value is a clear E_CONFIG naming the field; --set strings and the default work; reports name the variant", () => {
  const base = { editLayers: [1, 2, 3], targetLayer: 3, lossLayer: 4 };
  const isConfig = (re: RegExp) => (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && re.test(e.message);
  assert.throws(() => createMethod("deltaedit", { ...base, variant: "papr" }, 5), isConfig(/deltaedit: hyperparameter "variant" must be "official" or "paper", got "papr"/));
  assert.throws(() => createMethod("deltaedit", { ...base, variant: 1 }, 5), isConfig(/deltaedit: hyperparameter "variant" expects string, got 1/));
  assert.throws(() => createMethod("deltaedit", { ...base, varient: "paper" }, 5), isConfig(/unknown hyperparameter "varient"/));
  assert.throws(() => new NoiseMonitor({ variant: "both" as never }), isConfig(/variant must be "official" or "paper", got "both"/));
  const dflt = createMethod("deltaedit", base, 5) as DeltaEdit;
  const paper = createMethod("deltaedit", { ...base, variant: "paper" }, 5) as DeltaEdit; // a --set value is the string "paper"
  assert.equal(dflt.params.variant, "official");
  assert.equal(paper.params.variant, "paper");
  assert.equal(paper.monitor.params.variant, "paper", "the monitor gets the variant");
  const params = (p: DeltaEdit) => ({ ...p.params }) as Record<string, unknown>;
  assert.equal(methodDisplayName("deltaedit", params(dflt)), "deltaedit");
  assert.equal(methodDisplayName("deltaedit", params(paper)), "deltaedit (paper)");
  assert.equal(methodLabel({ name: "deltaedit", params: params(paper), checkpoints: [] }), "DeltaEdit (paper)");
  assert.equal(methodLabel({ name: "deltaedit", params: params(dflt), checkpoints: [] }), "DeltaEdit");
  assert.equal(methodLabel({ name: "deltaedit", checkpoints: [] }), "DeltaEdit", "results written before the variant existed: official");
});

// ───────────────────────────── (c) the tiny model ─────────────────────────────

const SMALL = { editLayers: [1, 2, 3], targetLayer: 3, lossLayer: 4, numGradSteps: 8 };

test("paper variant on stories260k: triggered requests are one-sided and their δ is orthogonal to the removed directions of ΔW_acc", async () => {
  const model = await LanguageModel.load(MODEL);
  const moments = await prepareSecondMoments(model, SMALL.editLayers, { corpus: CORPUS }, () => {});
  const ctx: EditContext = { model, templates: generateContextTemplates(model, new Rng(1)), secondMoment: (l) => moments.get(l), rng: new Rng(7), log: () => {} };
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const lz = SMALL.targetLayer;
  // warm-up 2 and β = 1e-6: any ν above μ triggers from the 3rd request on
  const de = new DeltaEdit({ ...SMALL, variant: "paper", warmupRequests: 2, varMultiplier: 1e-6 }, model.arch.numLayers);
  const requests = readRequestsFile(EDITS).requests.slice(0, 6);
  let triggered = 0;
  for (const r of requests) {
    const accBefore = de.deltaWAcc ? de.deltaWAcc.slice() : null; // (C, F)
    const muBefore = de.monitor.state.mu;
    const t0 = bareBlockOutputs(model, [r], lz); // (C, 1) block output at l_z, δ = 0
    const kappa = bareKeys(model, [r], lz); // (F, 1)
    const out: BatchOutcome = de.applyBatch(ctx, [r]);
    const noise = out.requests[0]!.noise!;
    if (!noise.triggered) continue;
    triggered++;
    assert.ok(noise.nu! > muBefore!, `one-sided: triggered with ν ${noise.nu} > μ ${muBefore}`);
    assert.equal(noise.mu, muBefore, "triggered: μ unchanged");
    const delta = zLayerDelta(model, out, r, lz, t0); // δ = z − t0 (C)
    const proj = buildPaperProjector(accBefore!, C, F);
    assert.equal(proj.rank, noise.projectionRank, "the reported projection rank is the paper projector's");
    assert.ok(proj.rank > 0 && proj.rank <= Math.floor(0.75 * C), `0 < |J| = ${proj.rank} ≤ ⌊3C/4⌋`);
    const { nu } = noiseVector(accBefore!, kappa, C, F);
    assert.ok(Math.abs(nu - noise.nu!) <= 1e-4 * noise.nu!, `ν ${nu} vs reported ${noise.nu} (tol 1e-4 rel)`);
    const coeff = new Float32Array(proj.rank); // U_Jᵀ δ
    ops.gemm(proj.basisT, delta, coeff, { m: proj.rank, n: 1, k: C });
    assert.ok(norm(delta) > 0, "δ ≠ 0");
    // δ is exactly in range(P_δ) in exact arithmetic; the reconstruction above is float32 forward passes (tol 1e-3 rel)
    assert.ok(norm(coeff) <= 1e-3 * norm(delta), `‖U_Jᵀ δ‖ = ${norm(coeff)} vs ‖δ‖ = ${norm(delta)} (tol 1e-3 rel)`);
  }
  assert.ok(triggered >= 1, "the paper variant triggered at least once in 6 requests");
});

test("paper variant session: replay and resume give the live run's weights; the manifest records the variant", async () => {
  const stream: EditRequest[] = readRequestsFile(EDITS).requests.slice(0, 10);
  const secondMoments = (m: LanguageModel, layers: readonly number[]) => prepareSecondMoments(m, layers, { corpus: CORPUS }, () => {});
  const overrides = { ...SMALL, variant: "paper", warmupRequests: 2, varMultiplier: 1e-6 };
  const create = (dir: string) => EditSession.create({ dir, modelSource: MODEL, method: "deltaedit", overrides, seed: 3, codeVersion: "test", secondMoments });
  const weights = (s: EditSession) => SMALL.editLayers.map((l) => s.model.arch.editTarget(l).W.slice());
  const same = (a: Float32Array[], b: Float32Array[], what: string) => a.forEach((w, i) => assert.ok(Buffer.from(w.buffer).equals(Buffer.from(b[i]!.buffer)), `${what}: layer ${SMALL.editLayers[i]} weights differ`));

  const live = await create(path.join(tmp, "live"));
  live.run(stream);
  const wLive = weights(live);
  const trig = live.journal.flatMap((r) => (r.kind === "batch" ? (r.outcome?.requests ?? []) : [])).filter((q) => q.noise?.triggered).length;
  assert.ok(trig >= 1, "the paper variant triggered at least once in the live run");
  assert.equal(live.manifest.params["variant"], "paper");
  live.close();

  const replayed = await EditSession.open(path.join(tmp, "live"), { secondMoments });
  same(weights(replayed), wLive, "replay");
  assert.equal((replayed.method as DeltaEdit).params.variant, "paper");

  const dir = path.join(tmp, "resumed");
  const first = await create(dir);
  first.run(stream, { limit: 5 });
  first.close();
  const resumed = await EditSession.open(dir, { secondMoments, access: "write" });
  resumed.run(stream);
  same(weights(resumed), wLive, "resume after 5 of 10 edits");
  resumed.close();
});
