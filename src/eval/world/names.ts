/**
 * Pronounceable, unique names for the subjects of the synthetic fact world.
 *
 * Names are built from syllables (onset + vowel + optional coda) so that they look like words
 * but are not in any real vocabulary: a model trained on the world corpus can only know them
 * from that corpus. Kinds and shapes:
 *
 *   person   "Varo Tellin"        given name (2 syllables) + family name (2 syllables + ending)
 *   city     "Quessaby"           2 syllables + a place ending
 *   company  "Brandorex"          root (2 syllables) + a business ending, one word
 *   band     "Morveltones"        root (2 syllables) + an ensemble ending, one word
 *
 * The LAST word of every name identifies its subject (it is unique among all last words).
 * Locate-then-edit methods write at the subject's last token; with two-word company and band names
 * ending in a shared word ("Works", "Quartet") the identity sat in the first word, and edits at the
 * last token could not change those subjects' answers (measured), so companies and bands are one
 * word. (Sharing given names among people, tried next, made the facts much slower to learn: 18 %
 * of facts after 1 600 steps against 62 % after 1 200 with unique given names.)
 *
 * Uniqueness is stronger than string equality: no name is a whole-word prefix of another,
 * so a subject's last token is unambiguous inside a prompt.
 *
 * Composed person names (world v2, `composedPeople`): given names and family names are drawn from
 * two shared pools, each pair used at most once, so that — as with real names — neither part
 * identifies a person and the identity must be assembled at the family name from the given name
 * before it. Pool words are distinct from each other and from every other name's words.
 */
import { DeltaEditError } from "../../errors.js";
import type { Rng } from "../../util/rng.js";

/** The kinds of subject the world contains. */
export type SubjectKind = "person" | "city" | "company" | "band";

export const SUBJECT_KINDS: readonly SubjectKind[] = Object.freeze(["person", "city", "company", "band"]);

const ONSETS: readonly string[] = Object.freeze([
  "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s", "st", "t", "tr", "v", "z",
  "ch", "sh", "th", "qu", "j", "w", "c", "cl", "fl", "pr",
]);
const VOWELS: readonly string[] = Object.freeze(["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "y"]);
const CODAS: readonly string[] = Object.freeze(["", "", "", "", "n", "r", "l", "s", "m", "nd", "rk", "th", "ss", "ll"]);
const FAMILY_ENDINGS: readonly string[] = Object.freeze(["in", "son", "ell", "ar", "ey", "ow", "ard", "is", "en", "ick"]);
const CITY_ENDINGS: readonly string[] = Object.freeze(["by", "ford", "holm", "ton", "mar", "vik", "stad", "ria", "burg", "port", "dale", "wick"]);
const COMPANY_ENDINGS: readonly string[] = Object.freeze(["corp", "tek", "ex", "ica", "on", "co", "wares", "line"]);
const BAND_ENDINGS: readonly string[] = Object.freeze(["tones", "beats", "waves", "sounds", "jams", "riffs"]);


/** Upper bound on draws per name before giving up (the world asked for more names than fit). */
const MAX_ATTEMPTS_PER_NAME = 10_000;

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function capitalize(s: string): string {
  return s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1);
}

const LINKS: readonly string[] = Object.freeze(["r", "l", "n", "d", "v", "s"]);

/** One syllable: onset + vowel + optional coda ("tel", "va", "quess"); no "quu"/"quy". */
function syllable(rng: Rng, withCoda: boolean): string {
  const onset = pick(rng, ONSETS);
  let vowel = pick(rng, VOWELS);
  while (onset === "qu" && (vowel.startsWith("u") || vowel.startsWith("o") || vowel === "y")) vowel = pick(rng, VOWELS);
  return onset + vowel + (withCoda ? pick(rng, CODAS) : "");
}

/** `stem + ending`, with a linking consonant between a vowel-final stem and a vowel-initial ending. */
function join(rng: Rng, stem: string, ending: string): string {
  const isVowel = (ch: string | undefined): boolean => ch !== undefined && "aeiouy".includes(ch);
  return isVowel(stem[stem.length - 1]) && isVowel(ending[0]) ? stem + pick(rng, LINKS) + ending : stem + ending;
}

/** A lowercase 2-syllable root; the coda goes on the last syllable only, so roots stay short. */
function root(rng: Rng): string {
  return syllable(rng, false) + syllable(rng, true);
}

function rawName(rng: Rng, kind: SubjectKind): string {
  switch (kind) {
    case "person":
      return `${capitalize(root(rng))} ${capitalize(join(rng, syllable(rng, false) + syllable(rng, false), pick(rng, FAMILY_ENDINGS)))}`;
    case "city":
      return capitalize(join(rng, syllable(rng, false) + syllable(rng, rng.uniform() < 0.3), pick(rng, CITY_ENDINGS)));
    case "company":
      return capitalize(join(rng, root(rng), pick(rng, COMPANY_ENDINGS)));
    case "band":
      return capitalize(join(rng, root(rng), pick(rng, BAND_ENDINGS)));
  }
}

/**
 * Draws unique names from a caller-owned `Rng`. The set of names handed out so far is
 * instance state: one generator per knowledge base.
 */
export class NameGenerator {
  private readonly rng: Rng;
  private readonly names = new Set<string>(); // every name handed out
  private readonly prefixes = new Set<string>(); // every proper whole-word prefix of a handed-out name
  private readonly lastWords = new Set<string>(); // the identifying last word of every name
  private readonly words = new Set<string>(); // reserved words of composed names' pools

  constructor(rng: Rng) {
    this.rng = rng;
  }

  /**
   * `count` person names composed from a pool of `given` given names and `family` family names,
   * each (given, family) pair at most once, each pool word used about equally often. The pool words
   * are reserved (no later single-word name equals one of them).
   */
  composedPeople(count: number, given: number, family: number): string[] {
    if (!(Number.isInteger(given) && Number.isInteger(family) && given >= 2 && family >= 2)) {
      throw new DeltaEditError("E_ARG", `NameGenerator.composedPeople: pools must be integers ≥ 2, got ${given} × ${family}`);
    }
    if (count > given * family) {
      throw new DeltaEditError("E_ARG", `NameGenerator.composedPeople: ${count} people need more than the ${given} × ${family} = ${given * family} name pairs`, { hint: "enlarge the name pools" });
    }
    const word = (make: () => string): string => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS_PER_NAME; attempt++) {
        const w = make();
        if (!this.words.has(w) && !this.names.has(w)) {
          this.words.add(w);
          return w;
        }
      }
      throw new DeltaEditError("E_ARG", `NameGenerator.composedPeople: no new unique pool word after ${MAX_ATTEMPTS_PER_NAME} draws`);
    };
    const givenPool = Array.from({ length: given }, () => word(() => capitalize(root(this.rng))));
    const familyPool = Array.from({ length: family }, () => word(() => capitalize(join(this.rng, syllable(this.rng, false) + syllable(this.rng, false), pick(this.rng, FAMILY_ENDINGS)))));
    // walk the pairs so that both pools are used evenly: person k gets given k mod G and family
    // (k + ⌊k / lcm(G, F)⌋) mod F. The first lcm(G, F) people take the pairs (k mod G, k mod F), which
    // are distinct; each later block of lcm(G, F) shifts the family by one, and the gcd(G, F) blocks
    // together cover all G·F pairs once. Every given name is used ⌊count / G⌋ or ⌈count / G⌉ times
    // and every family name ⌊count / F⌋ or ⌈count / F⌉ times (with F ≥ count: each family name once).
    // With G = F this is the diagonal walk (given i, family i + d on diagonal d).
    const gOrder = this.rng.shuffle(givenPool.map((_, i) => i));
    const fOrder = this.rng.shuffle(familyPool.map((_, i) => i));
    const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
    const lcm = (given / gcd(given, family)) * family;
    const out: string[] = [];
    for (let k = 0; k < count; k++) {
      const name = `${givenPool[gOrder[k % given]!]!} ${familyPool[fOrder[(k + Math.floor(k / lcm)) % family]!]!}`;
      this.names.add(name);
      out.push(name);
    }
    return this.rng.shuffle(out);
  }

  /** A fresh name of the given kind, unique and prefix-free among all names drawn so far. */
  next(kind: SubjectKind): string {
    for (let attempt = 0; attempt < MAX_ATTEMPTS_PER_NAME; attempt++) {
      const name = rawName(this.rng, kind);
      if (this.accept(name)) return name;
    }
    throw new DeltaEditError("E_ARG", `NameGenerator.next("${kind}"): no new unique name after ${MAX_ATTEMPTS_PER_NAME} draws (${this.names.size} names in use)`, {
      hint: "ask for fewer subjects of this kind",
      context: { kind, inUse: this.names.size },
    });
  }

  private accept(name: string): boolean {
    if (this.names.has(name) || this.prefixes.has(name)) return false;
    const words = name.split(" ");
    if (words.some((w) => this.words.has(w))) return false;
    const last = words[words.length - 1]!;
    if (this.lastWords.has(last)) return false;
    const ownPrefixes: string[] = [];
    for (let i = 1; i < words.length; i++) {
      const p = words.slice(0, i).join(" ");
      if (this.names.has(p)) return false;
      ownPrefixes.push(p);
    }
    this.names.add(name);
    this.lastWords.add(last);
    for (const p of ownPrefixes) this.prefixes.add(p);
    return true;
  }
}
