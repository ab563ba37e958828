import { EditSession } from "../../edit/session/session.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { DeltaEditError } from "../../errors.js";
import { prepareSecondMoments } from "./_stats.js";

export const command: CommandSpec = {
  name: "undo",
  summary: "subtract one recorded edit (batch) from a session's weights",
  usage: "deltaedit undo --session DIR --edit N",
  options: {
    session: { type: "string", description: "session directory", required: true, valueName: "DIR" },
    edit: { type: "number", description: "1-based batch number to undo (with --batch 1: the N-th edit)", required: true, valueName: "N" },
    "stats-corpus": { type: "string", description: "corpus for covariance statistics if not cached/shipped", valueName: "FILE|DIR" },
    "skip-model-check": { type: "boolean", description: "replay onto the model without checking its content hash against the session's (needed when the manifest records none)" },
  },
  async run(args, io) {
    const log = (m: string): void => io.err(m + "\n");
    const n = num(args, "edit")!;
    if (!Number.isInteger(n) || n < 1) throw new DeltaEditError("E_USAGE", `undo: --edit must be a positive integer, got ${n}`);
    const dir = str(args, "session")!;
    if (dir.trim() === "") throw new DeltaEditError("E_USAGE", "undo: --session must name a directory, got an empty string");
    const corpus = str(args, "stats-corpus");
    const session = await EditSession.open(dir, {
      secondMoments: (m, layers) => prepareSecondMoments(m, layers, corpus ? { corpus } : {}, log),
      log,
      access: "write",
      command: "undo",
      skipModelCheck: bool(args, "skip-model-check"),
    });
    try {
      session.undo(n);
    } finally {
      session.close();
    }
    io.out(`undid batch ${n} of ${session.dir}: its recorded update was subtracted (edits made after it were computed on the model that contained it; this is not the same as never having applied it)\n`);
    return 0;
  },
};
