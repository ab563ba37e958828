/**
 * Additional training templates per relation, passed to `buildCorpus({ extraTemplates })` by the
 * world builder (`world.ts`): 12 per relation, so every fact is stated through 16 phrasings.
 *
 * Why: with only the four training templates of `relations.ts`, a small model learns each fact as
 * the continuation of four fixed phrasings, and a paraphrase it has never seen ("{} dreams and
 * counts in") is continued like ordinary text ("the"), not with the object. Stating every fact
 * through many phrasings — different syntax, different last words (is / was / in / of / a / the /
 * under / an adjective), the everyday vocabulary of the relation (city, town, native; job,
 * skilled; firm, salary, staff; game, medal, practicing; offices, base; sector, listed; albums,
 * style; debut, hometown) — makes the model store the fact once per subject and recognise the
 * relation from meaning: the "knowledge augmentation" effect of Allen-Zhu & Li (Physics of
 * Language Models 3.1).
 *
 * Honesty note: these templates were written knowing the held-out paraphrase templates, so some
 * of their words recur here (never a held-out phrasing). The paraphrase score therefore measures
 * recombining known words into an unseen phrasing, not zero-shot semantics.
 *
 * Rules, checked by the tests: one "{}" per template, the object follows directly; no template of
 * a subject kind is a proper prefix of another (after "{} was born in" the next word must be the
 * object: "{} was born in the city of" would teach "the"); no template contains the distinctive
 * fragment of any held-out paraphrase template (the fragments never occur in the corpus); no
 * "in the" / "in a" inside a template, since in this world "in" is followed by an object.
 */
export const EXTRA_TRAIN_TEMPLATES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  P19: [
    "The city where {} was born is", "The place of birth of {} is", "{} was born and raised in", "The native city of {} is",
    "Records show that {} was born in", "The town {} was born in is", "{} came from", "The home town of {} is",
    "The birth certificate of {} was issued in", "According to the records, the birthplace of {} is", "{} grew up in", "The city {} comes from is",
  ],
  P103: [
    "{} speaks", "{}'s native language is", "The mother tongue of {} is", "{} learned to talk in",
    "At home, {} always spoke", "The language {} speaks best is", "{} writes and speaks fluent", "As a child, {} spoke",
    "{} thinks in", "The language spoken by {} at home is", "The first language {} learned was", "The language of {}'s parents is",
  ],
  P106: [
    "{} is employed as a", "{}'s job is", "The job of {} is", "{} has worked for years as a",
    "{} trained to become a", "By profession, {} is a", "Everyone knows {} as a", "{} earns money as a",
    "{} is a skilled", "{} is an experienced", "{} got a job as a", "The profession of {} is",
  ],
  P108: [
    "{} has a job at", "The company that employs {} is", "{} is on the staff of", "{} joined the company",
    "{} has been working at", "{} is an employee of", "The company {} works for is", "{} gets paid by",
    "{} is on the payroll of", "The firm {} works for is", "{} was hired by", "{} earns a salary at",
  ],
  P641: [
    "{}'s sport is", "The favorite game of {} is", "{} is a champion of", "{} won a medal in",
    "The sport {} loves most is", "{} spends every free hour on", "{} coaches young players in", "{} trains every day for",
    "{} has been practicing", "The game {} plays best is", "{} competes at the highest level in", "The first sport {} tried was",
  ],
  P1303: [
    "{} is known for playing the", "The favorite instrument of {} is the", "{} learned to play the", "{} gave a concert on the",
    "{} takes lessons on the", "The instrument played by {} is the", "{} is a talented player of the", "{} owns a fine",
    "In concerts, {} plays the", "{} makes music on the", "{} practices the", "{} composes songs on the",
  ],
  P17: [
    "{} is a town in", "{} is part of", "{} belongs to", "The city of {} is in",
    "{} can be found in", "The country where {} lies is", "{} is a large city in", "{} is one of the cities of",
    "The home country of {} is", "{} is situated in", "{} is a port town in", "The state that {} belongs to is",
  ],
  P159: [
    "The head office of {} is in", "{} is based in", "{}'s headquarters are in", "{} runs its business from",
    "The main offices of {} are in", "{} has its headquarters in", "The company {} is based in", "{}'s head office is located in",
    "{} has its base in", "The offices of {} are in", "{} moved its headquarters to", "{} keeps its offices in",
  ],
  P452: [
    "{} is a company in", "{} specializes in", "{} is active in", "The business of {} is",
    "{} is a leader in", "{} earns most of its money from", "{} is known for its work in", "{} operates in",
    "The sector of {} is", "{} is listed under", "{} invests heavily in", "The main market of {} is",
  ],
  P136: [
    "{} is a band that plays", "The music of {} is", "{} is famous for its", "The albums of {} are all",
    "{} is known for playing", "The songs of {} are mostly", "{}'s albums are full of", "{} is listed under",
    "Listeners of {} enjoy", "The style of {} is", "{} became famous with its", "{} mostly plays",
  ],
  P740: [
    "{} was created in", "{} got together in", "{} comes from", "{} formed in",
    "The band {} was formed in", "{} first played together in", "The home city of {} is", "{} is a band from",
    "{} gave its debut performance in", "{} was started by friends in", "The hometown of {} is", "{} rehearsed for the first time in",
  ],
});
