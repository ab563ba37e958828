/**
 * The second-moment provider used by edit sessions (shipped statistics, else computed over
 * `--stats-corpus`); the logic lives in edit/statsProvider.ts, shared with the library API.
 */
export { prepareSecondMoments, shippedStatsFile, secondMomentFactory, type SecondMomentProvider, type StatsOptions } from "../../edit/statsProvider.js";
