/**
 * The relations of the synthetic fact world: who they apply to, their closed object sets, and
 * their prompt templates.
 *
 * Every template contains exactly one "{}" (the subject) and ends right before the object, so a
 * fact sentence is `template.replace("{}", subject) + " " + object + "."` and the object is the
 * next word of the prompt. `trainTemplates` are the relation's core phrasings (the corpus adds the
 * 12 of extratemplates.ts); the held-out paraphrase templates are built in paraphrase.ts.
 * `novelTemplates` are wordings never in the corpus: each has a static fragment (its longest piece
 * around "{}") that occurs in no training template and no filler sentence (checked by the tests
 * against the built corpus); they measure how far the model carries a fact to new words.
 *
 * Relation ids are the Wikidata properties of the same meaning (as in CounterFact).
 */
import type { SubjectKind } from "./names.js";

/** Where a relation's objects come from: a fixed word list, or the names of subjects of a kind. */
export type ObjectSource = { readonly words: readonly string[]; readonly category: string } | { readonly subjectsOf: SubjectKind };

export interface RelationSpec {
  readonly id: string; // Wikidata-style property id, e.g. "P103"
  readonly name: string; // noun phrase naming the relation, e.g. "native language"
  readonly subjectKind: SubjectKind;
  readonly objects: ObjectSource;
  readonly trainTemplates: readonly string[]; // ≥ 4, used in the corpus
  readonly novelTemplates: readonly string[]; // ≥ 2 wordings never in the corpus (their fragments neither)
}

const LANGUAGES: readonly string[] = Object.freeze(["French", "English", "German", "Spanish", "Italian", "Dutch", "Swedish", "Polish", "Greek", "Russian", "Japanese", "Arabic", "Turkish", "Danish"]);
// All consonant-initial, so "works as a {}" stays grammatical.
const OCCUPATIONS: readonly string[] = Object.freeze(["painter", "lawyer", "doctor", "farmer", "teacher", "pilot", "chef", "poet", "nurse", "sailor", "baker", "dancer", "writer", "tailor"]);
const SPORTS: readonly string[] = Object.freeze(["chess", "tennis", "golf", "rugby", "hockey", "cricket", "soccer", "boxing", "rowing", "fencing", "cycling", "skiing"]);
const INSTRUMENTS: readonly string[] = Object.freeze(["piano", "violin", "guitar", "flute", "cello", "drums", "trumpet", "harp", "organ", "banjo", "clarinet", "saxophone"]);
export const COUNTRIES: readonly string[] = Object.freeze(["Norway", "France", "Brazil", "Japan", "Egypt", "Canada", "Chile", "Kenya", "Spain", "Italy", "Peru", "India", "Sweden", "Mexico"]);
export const INDUSTRIES: readonly string[] = Object.freeze(["software", "banking", "mining", "shipping", "textiles", "tourism", "insurance", "aviation", "farming", "publishing", "retail", "energy"]);
export const GENRES: readonly string[] = Object.freeze(["jazz", "rock", "folk", "blues", "reggae", "punk", "metal", "techno", "soul", "disco", "gospel", "swing"]);

export const RELATION_SPECS: readonly RelationSpec[] = Object.freeze([
  {
    id: "P19", name: "place of birth", subjectKind: "person", objects: { subjectsOf: "city" },
    trainTemplates: ["{} was born in", "The birthplace of {} is", "{} is originally from", "{}'s hometown is"],
    novelTemplates: ["The town where {} first saw daylight is", "{} came into the world in"],
  },
  {
    id: "P103", name: "native language", subjectKind: "person", objects: { words: LANGUAGES, category: "language" },
    trainTemplates: ["The native language of {} is", "{} grew up speaking", "{}'s mother tongue is", "The first language of {} is"],
    novelTemplates: ["The language {} heard as a baby was", "{} dreams and counts in"],
  },
  {
    id: "P106", name: "occupation", subjectKind: "person", objects: { words: OCCUPATIONS, category: "occupation" },
    trainTemplates: ["{} works as a", "The occupation of {} is", "{}'s profession is", "By trade, {} is a"],
    novelTemplates: ["To earn a living, {} became a", "Colleagues describe {} as a skilled"],
  },
  {
    id: "P108", name: "employer", subjectKind: "person", objects: { subjectsOf: "company" },
    trainTemplates: ["{} works for", "The employer of {} is", "{} is employed by", "{}'s employer is"],
    novelTemplates: ["Each morning {} drives to the offices of", "The firm that pays the salary of {} is"],
  },
  {
    id: "P641", name: "sport", subjectKind: "person", objects: { words: SPORTS, category: "sport" },
    trainTemplates: ["{} competes in", "The sport of {} is", "{}'s favorite sport is", "{} is a professional athlete in"],
    novelTemplates: ["On weekends {} can be found practicing", "The game {} trained for since childhood is"],
  },
  {
    id: "P1303", name: "instrument", subjectKind: "person", objects: { words: INSTRUMENTS, category: "instrument" },
    trainTemplates: ["{} plays the", "The instrument of {} is the", "{}'s instrument is the", "{} is a musician who plays the"],
    novelTemplates: ["On stage, {} performs on the", "The instrument {} practices every evening is the"],
  },
  {
    id: "P17", name: "country", subjectKind: "city", objects: { words: COUNTRIES, category: "country" },
    trainTemplates: ["{} is located in", "{} is a city in", "The country of {} is", "{} lies in the country of"],
    novelTemplates: ["Travelers reaching {} have arrived in", "The nation that contains {} is"],
  },
  {
    id: "P159", name: "headquarters location", subjectKind: "company", objects: { subjectsOf: "city" },
    trainTemplates: ["{} is headquartered in", "The headquarters of {} is in", "{}'s main office is in", "{} has its head office in"],
    novelTemplates: ["Letters to {} are sent to its base in", "The central offices of {} are found in"],
  },
  {
    id: "P452", name: "industry", subjectKind: "company", objects: { words: INDUSTRIES, category: "industry" },
    trainTemplates: ["{}'s industry is", "The industry of {} is", "{} does business in", "{} makes its money in"],
    novelTemplates: ["Analysts classify {} under", "The sector in which {} operates is"],
  },
  {
    id: "P136", name: "genre", subjectKind: "band", objects: { words: GENRES, category: "genre" },
    trainTemplates: ["{} plays", "The genre of {} is", "{}'s music style is", "{} performs"],
    novelTemplates: ["Critics file the records of {} under", "Fans of {} mostly love"],
  },
  {
    id: "P740", name: "location of formation", subjectKind: "band", objects: { subjectsOf: "city" },
    trainTemplates: ["{} was formed in", "{} was founded in", "{} started out in", "The origin of {} is"],
    novelTemplates: ["The first concert of {} took place in", "{} played its earliest shows in"],
  },
] satisfies RelationSpec[]);

/** Open prompts about a subject, per kind, for fluency / consistency generation (never in the corpus). */
export const GENERATION_TEMPLATES: Readonly<Record<SubjectKind, readonly string[]>> = Object.freeze({
  person: ["{} is", "{} was", "People who know {} say that", "Last year {}", "{} often"],
  city: ["{} is", "People who live in {} say that", "The streets of {} are", "Visitors to {}", "Last year {}"],
  company: ["{} is", "Employees of {} say that", "Last year {}", "The founders of {}", "{} announced"],
  band: ["{} is", "Listeners of {} say that", "Last year {}", "The members of {}", "{} released"],
});

/** `template` with its "{}" replaced by `subject` (templates hold exactly one "{}"). */
export function fillTemplate(template: string, subject: string): string {
  return template.replace("{}", subject);
}
