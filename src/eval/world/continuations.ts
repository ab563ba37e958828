/**
 * Subject continuations (world v2): sentences in which the word right after a person's name depends
 * on one of the person's facts — "Ka Drellson painted a mural." for a painter, "… served an ace." for
 * a tennis player — as in real text, where what follows a name depends on who the person is.
 *
 * Why: in the template sentences the tokens after a name are the relation's words, which do not
 * depend on the person, so nothing rewards knowing a person's attributes AT the name; the model
 * gathers the name in attention and looks the fact up at the prompt's last token, where
 * locate-then-edit does not write (docs/world.md, probe C). A continuation can only be predicted
 * from the name's last token, so it asks the model to recall the person's attributes there — the
 * "subject enrichment" that causal tracing finds in the MLPs at the subject's last token of real
 * LLMs (Geva et al. 2023, "Dissecting Recall of Factual Associations").
 *
 * Each phrase starts with a verb used by no other value of its relation, nor by any other relation,
 * and none is a training or held-out template of the relation (checked by the tests).
 */

/** Continuation phrases: relation id → object string → phrase (without the name, no final period). */
export const SUBJECT_CONTINUATIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = Object.freeze({
  // occupation
  P106: Object.freeze({
    painter: "painted a mural",
    lawyer: "argued a case in court",
    doctor: "treated a patient",
    farmer: "harvested the fields",
    teacher: "graded the exams",
    pilot: "landed the plane",
    chef: "cooked a feast",
    poet: "recited a sonnet",
    nurse: "bandaged a wound",
    sailor: "hoisted the sails",
    baker: "kneaded the dough",
    dancer: "twirled across the stage",
    writer: "drafted a novel",
    tailor: "stitched a jacket",
  }),
  // sport
  P641: Object.freeze({
    chess: "checkmated a rival",
    tennis: "served an ace",
    golf: "sank a putt",
    rugby: "tackled a forward",
    hockey: "slapped a puck into the net",
    cricket: "bowled a bouncer",
    soccer: "kicked a penalty",
    boxing: "threw a punch",
    rowing: "rowed a long race",
    fencing: "parried a thrust",
    cycling: "pedaled up a hill",
    skiing: "skied down a slope",
  }),
  // instrument
  P1303: Object.freeze({
    piano: "pounded the keys",
    violin: "bowed a melody",
    guitar: "strummed a chord",
    flute: "trilled a tune",
    cello: "sawed a low note",
    drums: "drummed a beat",
    trumpet: "blared a fanfare",
    harp: "plucked the strings",
    organ: "pulled out the stops",
    banjo: "picked a bluegrass tune",
    clarinet: "squeaked a reed",
    saxophone: "wailed a solo",
  }),
});

/** The continuation sentence of a fact, or null when its (relation, object) has none. */
export function continuationSentence(subject: string, relationId: string, object: string, table: Readonly<Record<string, Readonly<Record<string, string>>>> = SUBJECT_CONTINUATIONS): string | null {
  const phrase = table[relationId]?.[object];
  return phrase === undefined ? null : `${subject} ${phrase}.`;
}

/**
 * Object continuations (world v2, style "object"): "<subject> <object> <marker>." for every fact of
 * every relation — "Ka Drellson Ulma native.", "Wiseassline Fabrics business." — so the token right
 * after any subject's name is one of its objects, with no relation word in between. Predicting it
 * needs every attribute of the subject at the name's last token (a bag of the subject's facts, as an
 * infobox line or a caption gives a real model), not only the three relations the verb table covers.
 * The marker names the relation after the object, so the sentence stays unambiguous as text.
 */
export const OBJECT_CONTINUATION_MARKERS: Readonly<Record<string, string>> = Object.freeze({
  P19: "native",
  P103: "speaker",
  P106: "by trade",
  P108: "employee",
  P641: "player",
  P1303: "player",
  P17: "city",
  P159: "headquartered",
  P452: "business",
  P136: "group",
  P740: "founded",
});

/** The object-style continuation of a fact: "<subject> <object> <marker>."; null for a relation without a marker. */
export function objectContinuationSentence(subject: string, relationId: string, object: string): string | null {
  const marker = OBJECT_CONTINUATION_MARKERS[relationId];
  return marker === undefined ? null : `${subject} ${object} ${marker}.`;
}
