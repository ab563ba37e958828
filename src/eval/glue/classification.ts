/**
 * Classification scores of the general-capability harness (evaluation spec §5.5), as scikit-learn
 * computes them: weighted F1 (per label F1 = 2TP / (2TP + FP + FN), 0 when undefined, averaged with
 * the true labels' supports as weights over the labels seen in gold or prediction; a prediction of
 * −1, "invalid", is a class of its own) and the Matthews correlation coefficient in its multiclass
 * form (equal to the binary formula for two classes; 0 when undefined).
 */

/** Weighted F1 of `pred` against `gold` (same length). */
export function weightedF1(gold: readonly number[], pred: readonly number[]): number {
  const labels = [...new Set([...gold, ...pred])];
  let num = 0;
  for (const l of labels) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < gold.length; i++) {
      if (pred[i] === l && gold[i] === l) tp++;
      else if (pred[i] === l) fp++;
      else if (gold[i] === l) fn++;
    }
    const support = tp + fn;
    const f1 = 2 * tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
    num += support * f1;
  }
  return gold.length === 0 ? 0 : num / gold.length;
}

/** Matthews correlation coefficient (multiclass): (c·s − Σ t_k p_k) / √((s² − Σ p_k²)(s² − Σ t_k²)). */
export function matthewsCorrelation(gold: readonly number[], pred: readonly number[]): number {
  const labels = [...new Set([...gold, ...pred])];
  const s = gold.length;
  let c = 0;
  for (let i = 0; i < s; i++) if (gold[i] === pred[i]) c++;
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (const l of labels) {
    const t = gold.filter((x) => x === l).length;
    const p = pred.filter((x) => x === l).length;
    tp += t * p;
    pp += p * p;
    tt += t * t;
  }
  const den = Math.sqrt((s * s - pp) * (s * s - tt));
  return den === 0 ? 0 : (c * s - tp) / den;
}
