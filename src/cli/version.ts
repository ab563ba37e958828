/** The package version (the lookup lives in util/ so the library API records it too). */
export { packageVersion } from "../util/version.js";
