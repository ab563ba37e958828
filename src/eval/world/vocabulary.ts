/**
 * General-vocabulary filler for the world corpus (`buildCorpus({ extraFiller })`): everyday
 * sentences that state no fact and name no subject, written so that the common English words of
 * the held-out paraphrase templates (daylight, world, baby, dreams, salary-payers, weekends,
 * travelers, nation, critics, fans, …) occur in ordinary text.
 *
 * Why: a word that never occurs in the corpus is not a token of the world's BPE; it is split into
 * the letter pieces that make up the generated names ("daylight" → "day|l|ig|ht"), and the model
 * reads a paraphrase prompt as a name being spelt. Knowing the words as words (as any pretrained
 * LM does) lets the model read the rest of the prompt. No sentence here contains a held-out
 * fragment (checked by the tests) or a word of the person relations' closed sets, and none uses
 * "in the", since in this world "in" is followed by an object.
 */
export const VOCABULARY_UNITS: readonly (readonly string[])[] = Object.freeze([
  ["The baby slept until daylight."],
  ["Daylight came early that summer."],
  ["The children heard a bird singing near the river."],
  ["A baby was crying at the station."],
  ["The old sailor told stories about the whole world."],
  ["She walked into the quiet library."],
  ["He stepped into the garden and smiled."],
  ["Nobody remembers their earliest dreams."],
  ["The shopkeeper counts the coins every night."],
  ["People work hard to earn money for their families."],
  ["Living near the sea is pleasant."],
  ["The colleagues had lunch together."],
  ["Please describe the picture on the wall."],
  ["Each child received a small gift."],
  ["The bus drives slowly through the narrow streets."],
  ["The farmer pays for the bread with coins."],
  ["The weekends were quiet and sunny."],
  ["The two friends have known each other since childhood."],
  ["The stage was empty after the show."],
  ["The travelers were tired after a long walk."],
  ["After reaching the hill, the group rested."],
  ["We have arrived early, said the guide."],
  ["The train arrived late that evening."],
  ["The nation celebrated a quiet holiday."],
  ["The box contains apples and pears."],
  ["Letters arrived at the post office every morning."],
  ["The letter was sent on a rainy day."],
  ["The central square was busy at noon."],
  ["The analysts looked at long tables of numbers."],
  ["The librarian likes to classify books by color."],
  ["Which road leads to the market, asked the boy."],
  ["The critics wrote long reviews."],
  ["Put the paper into the blue file."],
  ["The fans waited outside the hall."],
  ["The children love warm soup."],
  ["Everyone loves a sunny afternoon."],
  ["The earliest train leaves at six."],
  ["The hall shows old films on Fridays."],
  ["The museum shows paintings of horses."],
  ["The kids found a ball under the table."],
  ["The morning was cold and grey."],
  ["The sun came out after the rain."],
  ["They took the long road home."],
  ["He found a coin near the fountain."],
  ["Each evening the lights go on at the square."],
  ["The world looked bright after the storm."],
  ["A small baby smiled at the dog."],
  ["The salary of a clerk is paid each month."],
  ["The firm sold its old building."],
  ["The weather was mild during the weekends."],
  ["The place was empty after midnight."],
  ["The stage lights were blue and green."],
]);

/** Share of filler units drawn from VOCABULARY_UNITS in the shipped world. */
export const VOCABULARY_SHARE = 0.3;
