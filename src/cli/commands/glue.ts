import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { writeJsonAtomic } from "../../edit/session/store.js";
import { CLI_STATS_HINT } from "../../edit/statsProvider.js";
import { Editor } from "../../eval/editor.js";
import { readGlueData, runGlue } from "../../eval/glue/runGlue.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { renderTable } from "../table.js";
import { loadModel, threadsOption } from "./_model.js";

export const command: CommandSpec = {
  name: "glue",
  summary: "general-ability tasks (SST-2, MRPC, CoLA, RTE, MMLU, NLI: AlphaEdit's harness) on a model or a session's edited model",
  usage: "deltaedit glue (--model DIR | --session DIR) --data DIR [--tasks sst,mrpc,…] [--items N] [--out DIR] [--json]",
  options: {
    model: { type: "string", description: "model directory or Hub repo id (the unedited model)", valueName: "DIR|REPO" },
    session: { type: "string", description: "edit session whose current weights are scored (opened read-only)", valueName: "DIR" },
    data: { type: "string", description: "directory with the task files sst2.json, mrpc.json, cola.json, rte.json, mmlu.json, nli.json (docs/glue.md)", required: true, valueName: "DIR" },
    tasks: { type: "string", description: "comma-separated tasks (default: every task file in --data)", valueName: "LIST" },
    items: { type: "number", description: "test items per task (items 10, 11, …; the harness: 100)", default: 100, valueName: "N" },
    out: { type: "string", description: "write glue.json (scores) and <task>_gen.json (per-item predictions) here", valueName: "DIR" },
    "stats-corpus": { type: "string", description: "with --session: corpus for covariance statistics if not cached/shipped", valueName: "FILE|DIR" },
    json: { type: "boolean", description: "print the scores as JSON" },
    threads: threadsOption,
  },
  async run(args, io) {
    const log = (m: string): void => io.err(m + "\n");
    const m = str(args, "model");
    const s = str(args, "session");
    if ((m === undefined) === (s === undefined)) throw new DeltaEditError("E_USAGE", "glue: give exactly one of --model or --session");
    const tasks = str(args, "tasks");
    const data = readGlueData(str(args, "data")!, { items: num(args, "items")!, ...(tasks ? { tasks: tasks.split(",").map((x) => x.trim()).filter(Boolean) } : {}) });
    let editNum = -1;
    let result: ReturnType<typeof runGlue>;
    if (s !== undefined) {
      const corpus = str(args, "stats-corpus");
      const editor = await Editor.open(s, { access: "read", log, stats: { missingHint: CLI_STATS_HINT, ...(corpus ? { corpus } : {}) } });
      editNum = editor.position;
      result = runGlue(editor.model, data, { log });
      await editor.close();
    } else result = runGlue(await loadModel(args, io), data, { log });
    const out = str(args, "out");
    if (out) {
      fs.mkdirSync(out, { recursive: true });
      writeJsonAtomic(path.join(out, "glue.json"), { edit_num: editNum, results: result.results });
      for (const [t, items] of Object.entries(result.items)) writeJsonAtomic(path.join(out, `${t}_gen.json`), items);
    }
    if (bool(args, "json")) io.out(JSON.stringify({ edit_num: editNum, results: result.results }) + "\n");
    else {
      const rows = Object.entries(result.results).map(([t, r]) => [t, r.f1.toFixed(3), r.f1_new.toFixed(3), r.mcc.toFixed(3), String(r.correct), String(r.incorrect), String(r.invalid), String(r.total)]);
      io.out(renderTable(["task", "f1", "f1_new", "mcc", "correct", "incorrect", "invalid", "total"], rows) + "\n");
    }
    return 0;
  },
};
