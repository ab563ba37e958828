/**
 * Command-line options shared by the examples (not part of the library). Defaults: the bundled fact
 * world, whose covariance statistics ship with it. The test suite runs the examples on the tiny
 * stories260k fixture with `--stats-corpus` and few optimisation steps.
 */
import { parseArgs } from "node:util";

export interface ExampleArgs {
  model: string;
  edits: string;
  out: string;
  statsCorpus: string | undefined;
  steps: number | undefined;
  n: number;
  record: number;
}

export function exampleArgs(defaultOut: string): ExampleArgs {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "worlds/factworld-v1" },
      edits: { type: "string", default: "worlds/factworld-v1/world/edits.json" },
      out: { type: "string", default: defaultOut },
      "stats-corpus": { type: "string" },
      steps: { type: "string" },
      n: { type: "string", default: "6" },
      record: { type: "string", default: "2" },
    },
  });
  return {
    model: values.model!,
    edits: values.edits!,
    out: values.out!,
    statsCorpus: values["stats-corpus"],
    steps: values.steps === undefined ? undefined : Number(values.steps),
    n: Number(values.n),
    record: Number(values.record),
  };
}
