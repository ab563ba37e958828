/** `node --import dist-test/test/helpers/deltaedit-alias.js PROGRAM`: "deltaedit" → dist-test/src/index.js. */
import { register } from "node:module";

register(new URL("./deltaedit-alias-hooks.js", import.meta.url));
