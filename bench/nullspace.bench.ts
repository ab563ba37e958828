/**
 * Null-space projector stability on the bundled fact world (not part of `npm run bench`; run
 * `node dist-test/bench/nullspace.bench.js` after `tsc -p tsconfig.test.json`).
 *
 * For the edit layers 1 and 2 of worlds/factworld-v1 and their shipped statistics C0 (F × F, F = 768):
 * for each null-space rule ("absolute" τ = 2e-2, "gap") and eigh precision (float32, float64), the
 * rank, the rule that made the cut, the effective threshold, the eigen-gap at the cut, and
 * ‖P(1 BLAS thread) − P(2 threads)‖_F — the projector built twice in this process with
 * `ops.setThreads(1)` and `ops.setThreads(2)`.
 *
 * Across BLAS kernel families (e.g. the default environment vs `env -u OPENBLAS_CORETYPE -u
 * OPENBLAS_L2_SIZE`): BENCH_NULLSPACE_DUMP=DIR writes each dense P (float32, raw) to DIR;
 * BENCH_NULLSPACE_COMPARE=DIR also reports ‖P − P_DIR‖_F against a dump from another run.
 *
 * Measured (2-core AMD EPYC with AVX-512, OpenBLAS 0.3.21; Haswell kernels = the default environment,
 * SkylakeX = `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`): ranks 444 (layer 1) and 428 (layer 2)
 * for every rule and precision; the gap rule falls back at both layers (largest ratio of neighbouring
 * eigenvalues in [2e-4, 2]: ×1.05–1.11; the spectrum has no gap); ‖P(1 thr) − P(2 thr)‖_F:
 * float32 eigh 9.2e-3 / 0.30 (Haswell), 1.2e-2 / 0.36 (SkylakeX); float64 eigh ≤ 5e-7;
 * Haswell vs SkylakeX (1 thread): float32 1.3e-2 / 0.31, float64 5e-6 (the float32 rounding of P).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ops from "../src/kernels/ops.js";
import { NullSpaceProjector, type NullSpaceOptions, type NullSpacePrecision, type NullSpaceRule } from "../src/edit/projector.js";
import { readStatsFile, secondMomentMatrix } from "../src/edit/secondMoment.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
// BENCH_NULLSPACE_WORLD=factworld-v2 BENCH_NULLSPACE_LAYERS=0,1 measures another world's edit layers
const world = path.join(root, "worlds", process.env["BENCH_NULLSPACE_WORLD"] ?? "factworld-v1");
const dumpDir = process.env["BENCH_NULLSPACE_DUMP"];
const compareDir = process.env["BENCH_NULLSPACE_COMPARE"];
const LAYERS = (process.env["BENCH_NULLSPACE_LAYERS"] ?? "1,2").split(",").map(Number);
const CONFIGS: { rule: NullSpaceRule; precision: NullSpacePrecision }[] = [
  { rule: "absolute", precision: "float32" },
  { rule: "gap", precision: "float32" },
  { rule: "absolute", precision: "float64" },
  { rule: "gap", precision: "float64" },
];

const info = ops.blasInfo();
const threadsBefore = ops.getThreads();
console.log(`# null-space projector stability, ${path.relative(root, world)}`);
console.log(`blas: ${info.config} | kernel ${info.coreName} (OPENBLAS_CORETYPE source: ${info.coreTypeSource})\n`);

/** ‖a − b‖_F in float64 for two (F, F) float32 matrices. */
function froDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

const g = (x: number | null, p = 4): string => (x === null ? "–" : x.toPrecision(p));
const rows: string[] = [];
rows.push("| layer | rule | eigh | rank (1 thr / 2 thr) | applied | effective threshold | gap at the cut: s_r → s_r+1 (ratio) | largest ratio in window | ‖P(1) − P(2)‖_F |" + (compareDir ? " ‖P − P(other run)‖_F |" : ""));
rows.push("|---|---|---|---|---|---|---|---|---|" + (compareDir ? "---|" : ""));
for (const layer of LAYERS) {
  const stats = readStatsFile(path.join(world, "stats", `layer-${layer}.safetensors`));
  const F = stats.dIn; // the key width of this world's MLPs
  const c0 = secondMomentMatrix(stats); // (F, F)
  for (const c of CONFIGS) {
    const opts: Partial<NullSpaceOptions> = { nullspaceRule: c.rule, nullspacePrecision: c.precision };
    const built = [1, 2].map((t) => {
      ops.setThreads(t);
      const p = NullSpaceProjector.fromSecondMoment(c0, F, opts);
      return { p, dense: p.toDense() }; // (F, F)
    });
    ops.setThreads(threadsBefore);
    const [a, b] = built as [(typeof built)[0], (typeof built)[0]];
    const tag = `layer${layer}-${c.rule}-${c.precision}`;
    let cross = "";
    if (dumpDir) {
      fs.mkdirSync(dumpDir, { recursive: true });
      fs.writeFileSync(path.join(dumpDir, `${tag}.f32`), Buffer.from(a.dense.buffer));
    }
    if (compareDir) {
      const f = path.join(compareDir, `${tag}.f32`);
      const other = new Float32Array(new Uint8Array(fs.readFileSync(f)).buffer); // (F, F)
      cross = ` ${froDiff(a.dense, other).toExponential(2)} |`;
    }
    const cut = a.p.cut;
    rows.push(
      `| ${layer} | ${c.rule} | ${c.precision} | ${a.p.rank} / ${b.p.rank} | ${cut.applied}${b.p.cut.applied !== cut.applied ? ` / ${b.p.cut.applied}` : ""} | ${g(cut.effectiveThreshold)} | ` +
        `${g(cut.lower)} → ${g(cut.upper)} (×${g(cut.ratio)}) | ${cut.windowBestRatio === null ? "–" : `×${g(cut.windowBestRatio)}`} | ${froDiff(a.dense, b.dense).toExponential(2)} |${cross}`,
    );
  }
}
console.log(rows.join("\n"));
