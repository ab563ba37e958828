import { test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { openCheckpoint } from "../../src/model/checkpoint.js";
import { resolveModelDir } from "../../src/model/hub.js";
import { writeSafetensors } from "../../src/model/safetensors.js";
import { loadTokenizer } from "../../src/model/tokenizer.js";
import { fixtureModel } from "../helpers/paths.js";

const ENV_KEYS = ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_ENDPOINT", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"];

/** Runs `fn` with a fresh temp HF_HOME / HF_HUB_CACHE and the HF env otherwise cleared; restores env after. */
async function withHfEnv(fn: (home: string, cache: string) => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-hf-"));
  const cache = path.join(home, "hub");
  for (const k of ENV_KEYS) delete process.env[k];
  process.env["HF_HOME"] = home;
  process.env["HF_HUB_CACHE"] = cache;
  process.env["HF_ENDPOINT"] = "http://127.0.0.1:9"; // discard port: any accidental request fails
  try {
    await fn(home, cache);
  } finally {
    for (const k of ENV_KEYS) {
      const v = saved[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** Replaces global fetch with one that fails the test if called. */
async function withNoNetwork(fn: () => Promise<void>): Promise<void> {
  const real = globalThis.fetch;
  globalThis.fetch = (async (input: unknown) => {
    throw new Error(`unexpected network access: ${String(input)}`);
  }) as typeof fetch;
  try {
    await fn();
  } finally {
    globalThis.fetch = real;
  }
}

function isErr(code: string, ...parts: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof DeltaEditError, `expected DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    const text = `${e.message}\n${e.hint ?? ""}`;
    for (const p of parts) assert.ok(text.includes(p), `error ${JSON.stringify(text)} should contain ${JSON.stringify(p)}`);
    return true;
  };
}

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** Puts `files` into the cache exactly as huggingface_hub lays them out. */
function fakeCache(cache: string, repoId: string, files: Record<string, Buffer>): string {
  const repo = path.join(cache, `models--${repoId.replace("/", "--")}`);
  fs.mkdirSync(path.join(repo, "refs"), { recursive: true });
  fs.mkdirSync(path.join(repo, "blobs"), { recursive: true });
  const snap = path.join(repo, "snapshots", COMMIT);
  fs.mkdirSync(snap, { recursive: true });
  fs.writeFileSync(path.join(repo, "refs", "main"), COMMIT);
  for (const [name, bytes] of Object.entries(files)) {
    const etag = crypto.createHash("sha256").update(bytes).digest("hex");
    fs.writeFileSync(path.join(repo, "blobs", etag), bytes);
    fs.symlinkSync(path.join("..", "..", "blobs", etag), path.join(snap, name));
  }
  return snap;
}

function fixtureFiles(name: string): Record<string, Buffer> {
  const dir = fixtureModel(name);
  return Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
}

test("a local directory is returned as is", async () => {
  await withHfEnv(async () => {
    await withNoNetwork(async () => {
      const dir = fixtureModel("stories260k");
      assert.equal(await resolveModelDir(dir), dir);
    });
  });
});

test("cache hit: complete snapshot resolved with no network access", async () => {
  await withHfEnv(async (_home, cache) => {
    const snap = fakeCache(cache, "karpathy/stories260k", fixtureFiles("stories260k"));
    await withNoNetwork(async () => {
      assert.equal(await resolveModelDir("karpathy/stories260k"), snap);
      assert.equal(await resolveModelDir("karpathy/stories260k", { offline: true }), snap);
      assert.equal(await resolveModelDir("karpathy/stories260k", { revision: COMMIT }), snap);
    });
    const ck = openCheckpoint(snap);
    assert.equal(ck.config.modelType, "llama");
    ck.close();
  });
});

test("offline miss: E_NOT_FOUND naming the repo, the cache path and the fixes", async () => {
  await withHfEnv(async (_home, cache) => {
    // Incomplete snapshot (no weights) is a miss too.
    const files = fixtureFiles("stories260k");
    delete files["model.safetensors"];
    fakeCache(cache, "org/partial", files);
    await withNoNetwork(async () => {
      await assert.rejects(
        resolveModelDir("gpt2-xl", { offline: true }),
        isErr("E_NOT_FOUND", '"gpt2-xl"', path.join(cache, "models--gpt2-xl"), "HF_HUB_CACHE", "local model directory"),
      );
      process.env["HF_HUB_OFFLINE"] = "1";
      await assert.rejects(resolveModelDir("org/partial"), isErr("E_NOT_FOUND", "org/partial", "model.safetensors"));
    });
    await assert.rejects(resolveModelDir("./no/such/dir"), isErr("E_NOT_FOUND", "./no/such/dir"));
  });
});

interface FakeHub {
  url: string;
  requests: { method: string; url: string; auth: string | undefined }[];
  close(): Promise<void>;
}

/**
 * Mimics the Hub's resolve endpoint: small files answer 200 with a git-sha ETag; LFS files
 * (*.safetensors) answer 302 to an absolute CDN URL with X-Linked-Etag / X-Linked-Size, like
 * huggingface.co. Every response carries X-Repo-Commit. Repos ending in "private" need a token.
 */
interface Hostile {
  /** x-repo-commit value sent instead of COMMIT (null: no header at all). */
  commit?: string | null;
  /** ETag sent for small files instead of their git sha. */
  etag?: string;
}

async function startFakeHub(repos: Record<string, Record<string, Buffer>>, token?: string, hostile: Hostile = {}): Promise<FakeHub> {
  const commitHeader = (): Record<string, string> => (hostile.commit === null ? {} : { "x-repo-commit": hostile.commit ?? COMMIT });
  const requests: FakeHub["requests"] = [];
  const blobs = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization;
    requests.push({ method: req.method ?? "", url: req.url ?? "", auth });
    const u = req.url ?? "";
    const send = (status: number, headers: Record<string, string>, body?: Buffer): void => {
      res.writeHead(status, headers);
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const cdn = /^\/cdn\/([0-9a-f]+)$/.exec(u);
    if (cdn !== null) {
      const b = blobs.get(cdn[1] as string);
      if (b === undefined) return send(404, {});
      return send(200, { "content-length": String(b.length) }, b);
    }
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(u);
    const repo = m === null ? undefined : repos[decodeURIComponent(m[1] as string)];
    if (m === null || repo === undefined) return send(401, { "x-error-code": "RepoNotFound" });
    if ((m[1] as string).endsWith("private") && auth !== `Bearer ${token}`) return send(401, {});
    const file = repo[decodeURIComponent(m[3] as string)];
    if (file === undefined) return send(404, { "x-error-code": "EntryNotFound", ...commitHeader() });
    if ((m[3] as string).endsWith(".safetensors")) {
      const sha = crypto.createHash("sha256").update(file).digest("hex");
      blobs.set(sha, file);
      const port = (server.address() as AddressInfo).port;
      return send(302, { location: `http://127.0.0.1:${port}/cdn/${sha}`, "x-linked-etag": `"${sha}"`, "x-linked-size": String(file.length), ...commitHeader() });
    }
    const gitSha = crypto.createHash("sha1").update(file).digest("hex");
    return send(200, { etag: hostile.etag ?? `W/"${gitSha}"`, ...commitHeader(), "content-length": String(file.length) }, file);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function shardedRepo(): Record<string, Buffer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-shards-"));
  const base = fixtureFiles("stories260k");
  const src = openCheckpoint(fixtureModel("stories260k"));
  const names = src.names();
  const half = Math.ceil(names.length / 2);
  const shardNames = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
  const weightMap: Record<string, string> = {};
  shardNames.forEach((shard, s) => {
    const part = s === 0 ? names.slice(0, half) : names.slice(half);
    writeSafetensors(
      path.join(dir, shard),
      part.map((n) => ({ name: n, shape: src.info(n).shape, data: src.read(n) })),
    );
    for (const n of part) weightMap[n] = shard;
  });
  src.close();
  const files: Record<string, Buffer> = {
    "config.json": base["config.json"] as Buffer,
    "tokenizer.json": base["tokenizer.json"] as Buffer,
    "model.safetensors.index.json": Buffer.from(JSON.stringify({ metadata: {}, weight_map: weightMap })),
  };
  for (const s of shardNames) files[s] = fs.readFileSync(path.join(dir, s));
  return files;
}

test("download into the HF cache layout, then offline resolve hits the cache", async () => {
  await withHfEnv(async (_home, cache) => {
    const gpt2 = fixtureFiles("tiny-gpt2-random");
    delete gpt2["tokenizer_config.json"]; // optional file absent on the server → skipped
    const hub = await startFakeHub({ "acme/tiny-gpt2": gpt2, "acme/sharded": shardedRepo() });
    try {
      process.env["HF_ENDPOINT"] = hub.url;
      const logs: string[] = [];
      const snap = await resolveModelDir("acme/tiny-gpt2", { log: (m) => logs.push(m) });
      const repoDir = path.join(cache, "models--acme--tiny-gpt2");
      assert.equal(snap, path.join(repoDir, "snapshots", COMMIT));
      assert.equal(fs.readFileSync(path.join(repoDir, "refs", "main"), "utf8"), COMMIT);
      const weightsLink = path.join(snap, "model.safetensors");
      assert.ok(fs.lstatSync(weightsLink).isSymbolicLink());
      const sha = crypto.createHash("sha256").update(gpt2["model.safetensors"] as Buffer).digest("hex");
      assert.equal(fs.readlinkSync(weightsLink), path.join("..", "..", "blobs", sha));
      assert.ok(fs.readdirSync(path.join(repoDir, "blobs")).every((b) => !b.endsWith(".incomplete")));
      assert.ok(fs.existsSync(path.join(snap, "generation_config.json")));
      assert.ok(!fs.existsSync(path.join(snap, "tokenizer_config.json")));
      assert.ok(logs.some((l) => l.includes("model.safetensors") && l.includes("MB")), logs.join("\n"));
      assert.equal(hub.requests.filter((r) => r.auth !== undefined).length, 0, "no token configured → no Authorization header");
      const ck = openCheckpoint(snap);
      assert.equal(ck.config.modelType, "gpt2");
      ck.close();
      assert.deepEqual(loadTokenizer(snap).encode(" Paris"), [6342]);

      const before = hub.requests.length;
      await withNoNetwork(async () => {
        assert.equal(await resolveModelDir("acme/tiny-gpt2", { offline: true }), snap);
        assert.equal(await resolveModelDir("acme/tiny-gpt2"), snap);
      });
      assert.equal(hub.requests.length, before, "cache hit made no requests");

      // Sharded repo: index + every shard.
      const shardedSnap = await resolveModelDir("acme/sharded");
      const sck = openCheckpoint(shardedSnap);
      assert.equal(sck.weightFiles().length, 2);
      const ref = openCheckpoint(fixtureModel("stories260k"));
      assert.deepEqual(sck.read("model.norm.weight"), ref.read("model.norm.weight"));
      ref.close();
      sck.close();
    } finally {
      await hub.close();
    }
  });
});

test("HTTP errors: 401 → E_NETWORK mentioning HF_TOKEN, token sent when set, 404 → E_NOT_FOUND, no server → E_NETWORK", async () => {
  await withHfEnv(async (home) => {
    const files = fixtureFiles("stories260k");
    const hub = await startFakeHub({ "acme/private": files, "acme/noweights": { "config.json": files["config.json"] as Buffer } }, "s3cret");
    try {
      process.env["HF_ENDPOINT"] = hub.url;
      await assert.rejects(resolveModelDir("acme/private"), isErr("E_NETWORK", "401", "HF_TOKEN"));
      // Token from $HF_HOME/token.
      fs.writeFileSync(path.join(home, "token"), "s3cret\n");
      const snap = await resolveModelDir("acme/private");
      assert.ok(fs.existsSync(path.join(snap, "model.safetensors")));
      assert.ok(hub.requests.some((r) => r.auth === "Bearer s3cret"));
      await assert.rejects(resolveModelDir("acme/noweights"), isErr("E_NOT_FOUND", "acme/noweights", "tokenizer.json"));
      process.env["HF_TOKEN"] = "wrong";
      await assert.rejects(resolveModelDir("acme/private", { revision: "dev" }), isErr("E_NETWORK", "HF_TOKEN"));
    } finally {
      await hub.close();
    }
    process.env["HF_ENDPOINT"] = "http://127.0.0.1:9";
    await assert.rejects(resolveModelDir("acme/other"), isErr("E_NETWORK", "http://127.0.0.1:9/acme/other/resolve/main/config.json"));
  });
});

/** Every file (not directory) below `dir`, relative to it. */
function filesBelow(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => !fs.statSync(path.join(dir, f)).isDirectory());
}

test("hostile x-repo-commit: E_NETWORK naming the header, nothing written inside or outside the cache, no refs/main", async () => {
  const hostile = [
    "../../../../outside", // escapes HF_HUB_CACHE through snapshots/<commit>
    `../../../${COMMIT}`,
    COMMIT.toUpperCase(), // 40 hex but not lowercase
    COMMIT.slice(0, 39), // 39 characters
    `${COMMIT}/../x`,
    "main",
    "",
  ];
  for (const commit of hostile) {
    await withHfEnv(async (home, cache) => {
      const before = filesBelow(home);
      // where a snapshot file would land if the header were used as a path
      const target = path.resolve(cache, "models--acme--tiny", "snapshots", commit, "config.json");
      const targetExisted = fs.existsSync(target);
      const hub = await startFakeHub({ "acme/tiny": fixtureFiles("stories260k") }, undefined, { commit });
      try {
        process.env["HF_ENDPOINT"] = hub.url;
        await assert.rejects(resolveModelDir("acme/tiny"), isErr("E_NETWORK", "x-repo-commit"));
      } finally {
        await hub.close();
      }
      assert.deepEqual(filesBelow(home), before, `x-repo-commit ${JSON.stringify(commit)}: no file written under HF_HOME`);
      assert.equal(fs.existsSync(target), targetExisted, `nothing written at ${target}`);
      assert.ok(!fs.existsSync(path.join(cache, "models--acme--tiny", "refs", "main")), "no refs/main");
    });
  }
});

test("missing x-repo-commit: E_NETWORK naming the header; a commit-hash revision needs no header", async () => {
  await withHfEnv(async (_home, cache) => {
    const hub = await startFakeHub({ "acme/tiny": fixtureFiles("stories260k") }, undefined, { commit: null });
    try {
      process.env["HF_ENDPOINT"] = hub.url;
      await assert.rejects(resolveModelDir("acme/tiny"), isErr("E_NETWORK", "x-repo-commit"));
      const snap = await resolveModelDir("acme/tiny", { revision: COMMIT });
      assert.equal(snap, path.join(cache, "models--acme--tiny", "snapshots", COMMIT));
      assert.ok(!fs.existsSync(path.join(cache, "models--acme--tiny", "refs", "main")));
    } finally {
      await hub.close();
    }
  });
});

test("a commit that changes mid-download is refused", async () => {
  await withHfEnv(async () => {
    const other = "f".repeat(40);
    const hub = await startFakeHub({ "acme/tiny": fixtureFiles("stories260k") }, undefined, { commit: other });
    try {
      process.env["HF_ENDPOINT"] = hub.url;
      // the user pins COMMIT, the server answers another commit
      await assert.rejects(resolveModelDir("acme/tiny", { revision: COMMIT }), isErr("E_NETWORK", "x-repo-commit", other, COMMIT));
    } finally {
      await hub.close();
    }
  });
});

test("hostile ETag (blob file name): E_NETWORK naming the header, nothing written", async () => {
  for (const etag of ['".."', '"."', '"../../../evil"', '"a/b"', '"a\\b"', `"${"a".repeat(300)}"`]) {
    await withHfEnv(async (home) => {
      const before = filesBelow(home);
      const hub = await startFakeHub({ "acme/tiny": fixtureFiles("stories260k") }, undefined, { etag });
      try {
        process.env["HF_ENDPOINT"] = hub.url;
        await assert.rejects(resolveModelDir("acme/tiny"), isErr("E_NETWORK", "etag"));
      } finally {
        await hub.close();
      }
      assert.deepEqual(filesBelow(home), before, `etag ${etag}`);
    });
  }
});

test("hostile shard names in the server's index: refused before any request for them, nothing outside the cache", async () => {
  const bad = ["../../../../evil.safetensors", "/tmp/abs.safetensors", "sub\\..\\..\\evil.safetensors", "a/../../evil.safetensors", "nul\u0000.safetensors", "./x.safetensors", ""];
  for (const shard of bad) {
    await withHfEnv(async (home, cache) => {
      const snap = path.join(cache, "models--acme--evil", "snapshots", COMMIT);
      // where the shard would land if its name were used as a path (names that stay inside the snapshot aside)
      const resolved = path.resolve(snap, shard.replace(/\0/g, "").replace(/\\/g, "/"));
      const target = path.relative(snap, resolved).startsWith("..") || path.isAbsolute(path.relative(snap, resolved)) ? resolved : null;
      const targetExisted = target !== null && fs.existsSync(target);
      const base = fixtureFiles("stories260k");
      const files: Record<string, Buffer> = {
        "config.json": base["config.json"] as Buffer,
        "tokenizer.json": base["tokenizer.json"] as Buffer,
        "model.safetensors.index.json": Buffer.from(JSON.stringify({ weight_map: { "model.norm.weight": shard } })),
      };
      const hub = await startFakeHub({ "acme/evil": files });
      try {
        process.env["HF_ENDPOINT"] = hub.url;
        await assert.rejects(resolveModelDir("acme/evil"), isErr("E_NETWORK", "invalid shard file name", "model.safetensors.index.json"));
        assert.ok(hub.requests.every((r) => !r.url.includes("evil.safetensors") && !r.url.includes("abs.safetensors")), `no request for ${JSON.stringify(shard)}`);
      } finally {
        await hub.close();
      }
      assert.deepEqual(filesBelow(home).filter((f) => !f.startsWith(`hub${path.sep}`)), [], `shard ${JSON.stringify(shard)}: nothing outside the cache`);
      if (target !== null) assert.equal(fs.existsSync(target), targetExisted, `nothing written at ${target}`);
    });
  }
});

test("a poisoned refs/main in the cache is a miss, never a path; revision names are checked", async () => {
  await withHfEnv(async (_home, cache) => {
    fakeCache(cache, "acme/tiny", fixtureFiles("stories260k"));
    fs.writeFileSync(path.join(cache, "models--acme--tiny", "refs", "main"), "../../../../etc");
    await withNoNetwork(async () => {
      await assert.rejects(resolveModelDir("acme/tiny", { offline: true }), isErr("E_NOT_FOUND", "refs/main does not hold a commit hash"));
      await assert.rejects(resolveModelDir("acme/tiny", { revision: "../../x", offline: true }), isErr("E_ARG", "revision", ".."));
    });
  });
});

test("refs are written atomically through fsio (no temporary left) and a good download still works after a refused one", async () => {
  await withHfEnv(async (_home, cache) => {
    const bad = await startFakeHub({ "acme/tiny": fixtureFiles("stories260k") }, undefined, { commit: "../x" });
    process.env["HF_ENDPOINT"] = bad.url;
    await assert.rejects(resolveModelDir("acme/tiny"), isErr("E_NETWORK", "x-repo-commit"));
    await bad.close();
    const good = await startFakeHub({ "acme/tiny": fixtureFiles("stories260k") });
    try {
      process.env["HF_ENDPOINT"] = good.url;
      const snap = await resolveModelDir("acme/tiny");
      const refs = path.join(cache, "models--acme--tiny", "refs");
      assert.deepEqual(fs.readdirSync(refs), ["main"]);
      assert.equal(fs.readFileSync(path.join(refs, "main"), "utf8"), COMMIT);
      assert.equal(openCheckpoint(snap).config.numLayers, 5);
    } finally {
      await good.close();
    }
  });
});
