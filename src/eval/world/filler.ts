/**
 * Filler text for the world corpus: everyday sentences and tiny stories from a small template
 * grammar, so the model also learns general text and not only fact statements.
 *
 * Slots: {P} a person, {C} a city, {O} a company, {B} a band (names from the knowledge base),
 * {num} a number, and word-pool slots {weather} {time} {day} {food} {animal} {animals} {color}
 * {place} {adj} {feeling} {season} {country} {industry} {genre}. A slot keeps its value for the
 * whole story; {P2}, {place2}, {country3} … draw further, distinct values from the same pool.
 *
 * Constraints (checked by the tests through the corpus): filler never states a relation of the
 * world (countries, industries and genres appear only as topics, never tied to a subject; no
 * languages, jobs, sports or instruments; no "born", "works", "plays"), and never contains a
 * held-out template fragment.
 */
import type { Rng } from "../../util/rng.js";
import { COUNTRIES, GENRES, INDUSTRIES } from "./relations.js";

/** Subject names the filler may mention. */
export interface FillerNames {
  readonly people: readonly string[];
  readonly cities: readonly string[];
  readonly companies: readonly string[];
  readonly bands: readonly string[];
}

const POOLS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  weather: ["cold", "warm", "rainy", "windy", "sunny", "foggy", "quiet", "grey"],
  time: ["morning", "evening", "afternoon", "night"],
  day: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
  food: ["bread", "apples", "cheese", "soup", "rice", "fish", "cakes", "tea", "pears", "honey"],
  animal: ["dog", "cat", "horse", "bird", "goat", "fox", "rabbit", "duck"],
  animals: ["dogs", "cats", "horses", "birds", "goats", "foxes", "rabbits", "ducks"],
  color: ["red", "blue", "green", "yellow", "white", "black", "brown", "orange"],
  place: ["market", "river", "park", "library", "station", "harbor", "bridge", "garden", "bakery", "square"],
  adj: ["old", "small", "quiet", "busy", "bright", "narrow", "large", "empty"],
  feeling: ["happy", "tired", "surprised", "calm", "curious", "hungry", "proud"],
  season: ["spring", "summer", "autumn", "winter"],
  // Objects of the sparser relations (country, industry, genre), mentioned without stating any
  // fact, so the tokenizer sees them often enough to learn them as whole words.
  country: COUNTRIES,
  industry: INDUSTRIES,
  genre: GENRES,
});

/** Single-sentence templates. */
const SENTENCES: readonly string[] = Object.freeze([
  "The weather in {C} was {weather} that {time}.",
  "On {day}, {P} walked to the {place} and bought some {food}.",
  "A {color} {animal} slept near the {adj} {place}.",
  "{P} felt {feeling} after a long day.",
  "There were {num} people waiting at the {place} in {C}.",
  "{P} and {P2} shared {food} by the {place}.",
  "{P} read a book about a {color} {animal}.",
  "It took {num} minutes to walk from the {place} to the {place2}.",
  "Many visitors came to {C} in the {season}.",
  "{O} printed {num} new posters before the {season}.",
  "{B} rehearsed for {num} hours before the show.",
  "Nobody expected such {weather} weather in {C} that {time}.",
  "{P} wrote a letter to {P2} about the {adj} {place}.",
  "The children counted {num} {animals} in the field.",
  "The {place} in {C} was {adj} on {day}.",
  "{P} painted the fence {color} in the {season}.",
  "A crowd of {num} people cheered for {B} on {day} night.",
  "The office of {O} was {adj} on {day} {time}.",
  "In the {season}, the {place} smells of {food}.",
  "{P} bought {num} {color} cups at the {place}.",
]);

/**
 * Topic sentences: each names three objects of the sparser relations (country, industry, genre)
 * without tying them to any subject, so the tokenizer and the model see those words often enough.
 */
const TOPICS: readonly string[] = Object.freeze([
  "{P} read long articles about {country}, {country2} and {country3}.",
  "The news from {country}, {country2} and {country3} was {adj} that {time}.",
  "Maps of {country}, {country2} and {country3} hung on the wall of the {place}.",
  "The newspaper had pages about {industry}, {industry2} and {industry3} on {day}.",
  "{P} talked with {P2} about {industry}, {industry2} and {industry3}.",
  "The radio played {genre}, then {genre2}, then {genre3} all {time}.",
  "Someone at the {place} was humming {genre}, {genre2} and {genre3} tunes.",
]);

/** Short stories (2–4 sentences). */
const STORIES: readonly (readonly string[])[] = Object.freeze([
  ["{P} had a small {animal}.", "Every {time} they walked to the {place} together.", "One day the weather was {weather}, so they stayed at home."],
  ["{P} lost a {color} hat near the {place}.", "{P2} found it the next {time}.", "They laughed and ate some {food}."],
  ["It was a {weather} {day} in {C}.", "{P} made {food} for {num} friends.", "Everyone felt {feeling} when the meal was over."],
  ["{P} missed the train at the {place}.", "The next one came {num} minutes later.", "By the {time}, {P} was home and {feeling}."],
  ["The {place} in {C} was {adj} that {season}.", "{P} and {P2} sat there and talked for {num} minutes.", "Then they went to buy {food}."],
  ["{P} saw {num} {animals} near the {place2}.", "One of them was {color}.", "{P} told {P2} about it the next {time}."],
  ["{B} came to {C} on a {weather} {day}.", "About {num} people came to listen.", "Afterwards the {place} was {adj} again."],
  ["{O} moved its printers to a new room.", "It took {num} days.", "The staff celebrated with {food} on {day}."],
]);

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

const NAME_SLOTS: Readonly<Record<string, keyof FillerNames>> = Object.freeze({ P: "people", C: "cities", O: "companies", B: "bands" });

/**
 * Fill every slot of `templates` consistently (one value per slot name). A trailing digit marks
 * another value of the same pool ({P2}, {country3}), distinct from its siblings when the pool allows.
 */
function fill(rng: Rng, templates: readonly string[], names: FillerNames): string[] {
  const values = new Map<string, string>();
  const valueOf = (slot: string): string => {
    const have = values.get(slot);
    if (have !== undefined) return have;
    const base = slot.replace(/\d+$/, "");
    let pool: readonly string[] | undefined;
    if (base === "num") pool = undefined;
    else {
      const nameKey = NAME_SLOTS[base];
      pool = nameKey !== undefined ? names[nameKey] : POOLS[base];
      if (pool === undefined) throw new Error(`filler: unknown slot {${slot}}`); // a bug in the tables above
    }
    const siblings = new Set<string>();
    for (const [k, v] of values) if (k.replace(/\d+$/, "") === base) siblings.add(v);
    let v: string;
    do v = pool === undefined ? String(2 + rng.int(98)) : pick(rng, pool);
    while (siblings.has(v) && (pool === undefined || pool.length > siblings.size));
    values.set(slot, v);
    return v;
  };
  return templates.map((t) => t.replace(/\{(\w+)\}/g, (_m, slot: string) => valueOf(slot)));
}

/** Mix of filler units: probabilities of a story and of a topic sentence (the rest: plain sentences). */
export interface FillerMix {
  storyProb: number;
  topicProb: number;
}

export const FILLER_MIX_DEFAULTS: Readonly<FillerMix> = Object.freeze({ storyProb: 0.3, topicProb: 0.2 });

/** One filler unit: a short story, a topic sentence or a plain sentence. Sentences end with ".". */
export function fillerUnit(rng: Rng, names: FillerNames, mix: Readonly<FillerMix> = FILLER_MIX_DEFAULTS): string[] {
  const u = rng.uniform();
  if (u < mix.storyProb) return fill(rng, pick(rng, STORIES), names);
  if (u < mix.storyProb + mix.topicProb) return fill(rng, [pick(rng, TOPICS)], names);
  return fill(rng, [pick(rng, SENTENCES)], names);
}
