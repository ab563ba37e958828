import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { invokeBench } from "./bench.js";
import { packageRoot } from "./_root.js";

export const DEMO_WORLD = "factworld-v2";

/** hidden_size of a model directory's config.json (0 when absent or unreadable: fixed checkpoints). */
function hiddenWidth(dir: string): number {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { hidden_size?: unknown };
    return typeof c.hidden_size === "number" && Number.isInteger(c.hidden_size) && c.hidden_size > 0 ? c.hidden_size : 0;
  } catch {
    return 0;
  }
}

export const command: CommandSpec = {
  name: "demo",
  summary: "run MEMIT, AlphaEdit and DeltaEdit on the bundled fact world and write the report",
  usage: "deltaedit demo [--edits N] [--out DIR] [--fresh]",
  options: {
    edits: { type: "number", description: "length of the edit stream", default: 400, valueName: "N" },
    methods: { type: "string", description: "methods to compare", default: "memit,alphaedit,deltaedit", valueName: "LIST" },
    out: { type: "string", description: "output directory (rerun to resume)", default: "runs/demo", valueName: "DIR" },
    fresh: { type: "boolean", description: "delete an earlier demo run in --out first" },
    json: { type: "boolean", description: "print results.json on stdout" },
  },
  async run(args, io) {
    const root = packageRoot();
    const world = path.join(root, "worlds", DEMO_WORLD);
    const worldReady = ["config.json", "model.safetensors", "tokenizer.json", "world/edits.json"].every((f) => fs.existsSync(path.join(world, f)));
    const out = str(args, "out")!;
    if (bool(args, "fresh")) fs.rmSync(out, { recursive: true, force: true });
    let edits = num(args, "edits")!;
    let model = world;
    let dataset = path.join(world, "world", "edits.json");
    let statsCorpus: string | undefined;
    if (!worldReady) {
      // no trained world shipped: fall back to the bundled real model stories260k and its edit stream
      model = path.join(root, "test", "fixtures", "models", "stories260k");
      dataset = path.join(root, "test", "fixtures", "edits", "stories-mcf.json"); // tools/fixtures/make-stories-editset.mjs
      statsCorpus = path.join(root, "test", "fixtures", "corpus", "stories.txt");
      for (const f of [model, dataset, statsCorpus]) if (!fs.existsSync(f)) throw new DeltaEditError("E_NOT_FOUND", `demo: neither the fact world (${world}) nor the stories260k fixture (${f}) is available`, { hint: "build the world with `deltaedit world train --recipe v2 --threads 1 --kernel-threads 1 --out worlds/factworld-v2`" });
      edits = Math.min(edits, 288);
      io.err(`demo: the fact world ${path.relative(process.cwd(), world) || world} is not built yet; using the bundled stories260k model and its 288-request edit stream instead (neighborhood scored against the unedited model's own continuations)\n`);
    }
    // scored at these stream lengths (all edits so far each time), and at the end: on the world
    // C/4, C/2, C, 2C, … edits (C = hidden width: 64, 128, 256, 512 for C = 256), the ratios the
    // world-v2 bars are stated in; on the stories260k fallback a fixed list
    const C = worldReady ? hiddenWidth(world) : 0;
    const cps = (C > 0 ? [C / 4, C / 2, C, 2 * C, 4 * C, 8 * C].map(Math.round) : [50, 100, 200, 300, 400, 500, 750, 1000, 1500, 2000, 2500, 3000]).filter((n) => n < edits);
    io.err(`demo: ${edits} sequential edits (batch 1) with ${str(args, "methods")} on ${path.relative(process.cwd(), model) || model}; output in ${out}\n`);
    const facts = path.join(world, "world", "control-facts.jsonl");
    const heldout = worldReady ? path.join(world, "world", "corpus-heldout.txt") : (statsCorpus ?? "");
    return invokeBench(
      {
        model,
        dataset,
        kind: "mcf",
        methods: str(args, "methods")!.split(",").map((s) => s.trim()) as never,
        edits,
        batch: 1,
        protocol: "checkpoints",
        checkpoints: [...cps, edits],
        out,
        seed: 0,
        neighborhood: worldReady ? "standard" : "deltaedit",
        sets: {},
        json: bool(args, "json"),
        ...(statsCorpus ? { statsCorpus } : {}),
        ...(fs.existsSync(heldout) ? { heldOut: heldout } : {}),
        ...(worldReady && fs.existsSync(facts) ? { controlFacts: facts } : {}),
      },
      io,
    );
  },
};
