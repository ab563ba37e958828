/** Addon loader: OPENBLAS_CORETYPE choice, resolution order, diagnostics on failure, blasInfo(). */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { candidatePaths, chooseCoreType, findPackageRoot, loadNative } from "../../src/kernels/native.js";
import * as ops from "../../src/kernels/ops.js";

const here = dirname(fileURLToPath(import.meta.url)); // <out>/test/kernels
const nativeJs = join(here, "..", "..", "src", "kernels", "native.js");
const errorsJs = join(here, "..", "..", "src", "errors.js");

describe("chooseCoreType", () => {
  const flags = (f: string): string => `processor\t: 0\nflags\t\t: fpu sse2 ${f}\n\nprocessor\t: 1\n`;
  it("keeps a value from the environment", () => {
    assert.deepEqual(chooseCoreType({ OPENBLAS_CORETYPE: "Zen" }, flags("avx2 fma")), { source: "env", value: "Zen" });
  });
  it("AVX-512 (f, bw, vl, dq) → SkylakeX; AVX2 + FMA → Haswell; else OpenBLAS decides", () => {
    assert.deepEqual(chooseCoreType({}, flags("avx2 fma avx512f avx512bw avx512vl avx512dq")), { source: "auto", value: "SkylakeX" });
    assert.deepEqual(chooseCoreType({}, flags("avx2 fma avx512f")), { source: "auto", value: "Haswell" });
    assert.deepEqual(chooseCoreType({}, flags("avx2")), { source: "default" });
    assert.deepEqual(chooseCoreType({}, undefined), { source: "default" });
  });
});

describe("resolution", () => {
  it("finds the package root and lists candidates in order", () => {
    const root = findPackageRoot(here);
    const paths = candidatePaths(root, { DELTAEDIT_NATIVE: "/opt/x.node" });
    assert.deepEqual(paths, [
      "/opt/x.node",
      join(root, "prebuilds", `${process.platform}-${process.arch}`, "deltaedit_native.node"),
      join(root, "build", "Release", "deltaedit_native.node"),
      join(root, "build", "Debug", "deltaedit_native.node"),
    ]);
  });

  it("a failed load throws E_NATIVE_LOAD listing every path tried and the fix", () => {
    const dir = mkdtempSync(join(tmpdir(), "deltaedit-loader-"));
    try {
      mkdirSync(join(dir, "src", "kernels"), { recursive: true });
      writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
      writeFileSync(join(dir, "binding.gyp"), "{}");
      copyFileSync(nativeJs, join(dir, "src", "kernels", "native.js"));
      copyFileSync(errorsJs, join(dir, "src", "errors.js"));
      writeFileSync(join(dir, "bogus.node"), "not a shared object");
      const script = `import("./src/kernels/native.js").then((m) => { try { m.loadNative(); console.log("loaded"); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); } });`;
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        cwd: dir, encoding: "utf8", env: { ...process.env, DELTAEDIT_NATIVE: join(dir, "bogus.node") },
      });
      const res = JSON.parse(r.stdout.trim()) as { code: string; message: string; hint: string };
      assert.equal(res.code, "E_NATIVE_LOAD");
      for (const p of [join(dir, "bogus.node"), join(dir, "build", "Release", "deltaedit_native.node"), join(dir, "build", "Debug", "deltaedit_native.node")]) {
        assert.ok(res.message.includes(p), `message lists ${p}: ${res.message}`);
      }
      assert.match(res.message, /bogus\.node: .*(invalid ELF|too short|file)/i);
      assert.match(res.hint, /apt-get install libopenblas-dev liblapacke-dev/);
      assert.match(res.hint, /npm run build:native/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("blasInfo", () => {
  it("reports OpenBLAS, its core and where OPENBLAS_CORETYPE came from", () => {
    loadNative();
    const info = ops.blasInfo();
    assert.match(info.library, /OpenBLAS/);
    assert.ok(info.config.length > 0 && info.coreName.length > 0, JSON.stringify(info));
    assert.ok(["env", "auto", "default"].includes(info.coreTypeSource));
    assert.equal(info.threads, ops.getThreads());
  });

  it("in a fresh process: a user value wins ('env'); otherwise the CPU-derived choice is applied", () => {
    const script = `import(${JSON.stringify(join(here, "..", "..", "src", "kernels", "ops.js"))}).then((m) => console.log(JSON.stringify(m.blasInfo())));`;
    const run = (env: NodeJS.ProcessEnv): { coreName: string; coreTypeSource: string } =>
      JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env }).trim()) as { coreName: string; coreTypeSource: string };
    const withEnv = run({ ...process.env, OPENBLAS_CORETYPE: "Haswell" });
    assert.equal(withEnv.coreTypeSource, "env");
    assert.equal(withEnv.coreName.toLowerCase(), "haswell");
    const env = { ...process.env };
    delete env["OPENBLAS_CORETYPE"];
    const auto = run(env);
    let cpuinfo: string | undefined;
    try { cpuinfo = execFileSync("cat", ["/proc/cpuinfo"], { encoding: "utf8" }); } catch { cpuinfo = undefined; }
    const expected = chooseCoreType({}, cpuinfo);
    assert.equal(auto.coreTypeSource, expected.source);
    if (expected.value !== undefined) assert.equal(auto.coreName.toLowerCase(), expected.value.toLowerCase());
  });
});
