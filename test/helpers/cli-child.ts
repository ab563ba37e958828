/** Runs the deltaedit CLI in a child process (used by tests that kill -9 a run). */
import { main } from "../../src/cli/main.js";

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
