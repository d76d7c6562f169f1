// The two control charts behind metric drift, kept small and pure so every
// number in a finding can be recomputed by hand:
// - an EWMA chart (Roberts 1959; NIST/SEMATECH e-Handbook 6.3.2.4), good at
//   small sustained shifts;
// - the modified z-score (Iglewicz & Hoaglin), insensitive to the outliers
//   it is hunting.
// Both take their centre and spread from the median and MAD of the baseline,
// so a few bad points already in the history do not widen the band that
// should catch them.

/** The scale that makes the MAD estimate σ for normal data (1 / Φ⁻¹(3/4)). */
const MAD_TO_SIGMA = 1.4826;
/** The scale that makes the mean absolute deviation estimate σ (√(π/2)). */
const MEAN_AD_TO_SIGMA = 1.2533;

/** The median of `values` (which must not be empty). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Centre and spread of a baseline, and how the spread was estimated. */
export interface RobustSpread {
  median: number;
  /** Estimated σ; 0 when every baseline value is the same. */
  sigma: number;
  /** `"mad"`, or `"mean_ad"` when more than half the values are equal. */
  basis: "mad" | "mean_ad";
}

/**
 * The median and a σ estimate from the MAD; when the MAD is 0 (more than
 * half the values equal), from the mean absolute deviation instead, which
 * is 0 only when every value is equal.
 */
export function robustSpread(values: readonly number[]): RobustSpread {
  const m = median(values);
  const deviations = values.map((v) => Math.abs(v - m));
  const mad = median(deviations);
  if (mad > 0) return { median: m, sigma: MAD_TO_SIGMA * mad, basis: "mad" };
  const meanAd = deviations.reduce((a, b) => a + b, 0) / values.length;
  return { median: m, sigma: MEAN_AD_TO_SIGMA * meanAd, basis: "mean_ad" };
}

/**
 * The modified z-score of `x` against `spread`: 0.6745·(x − median)/MAD,
 * which is (x − median)/σ with σ estimated as above. With no spread at all,
 * any difference is infinitely unusual.
 */
export function robustZ(x: number, spread: RobustSpread): number {
  const d = x - spread.median;
  if (spread.sigma > 0) return d / spread.sigma;
  return d === 0 ? 0 : d > 0 ? Infinity : -Infinity;
}

/** Where an EWMA chart ends up after a series. */
export interface EwmaChart {
  /** The smoothed value after the last point. */
  ewma: number;
  /** The band's lower and upper control limits at the last point. */
  lower: number;
  upper: number;
}

/**
 * Runs an EWMA chart `z_t = λ·x_t + (1−λ)·z_{t−1}` from `z_0 = centre` over
 * `series`, and returns the last value with the exact (time-varying)
 * control limits `centre ± L·σ·√(λ/(2−λ)·(1−(1−λ)^{2t}))`.
 */
export function ewmaChart(
  series: readonly number[],
  centre: number,
  sigma: number,
  lambda: number,
  width: number,
): EwmaChart {
  let z = centre;
  for (const x of series) z = lambda * x + (1 - lambda) * z;
  const t = series.length;
  const half = width * sigma *
    Math.sqrt(lambda / (2 - lambda) * (1 - Math.pow(1 - lambda, 2 * t)));
  return { ewma: z, lower: centre - half, upper: centre + half };
}
