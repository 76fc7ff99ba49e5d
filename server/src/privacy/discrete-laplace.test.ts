import { describe, expect, it } from 'vitest';
import {
  bernoulliExpMinus,
  randomIntegers,
  sampleDiscreteLaplace,
  seededBytes,
} from './discrete-laplace.ts';

/** The discrete Laplace probability of z at the given scale. */
function probability(z: number, scale: number): number {
  const q = Math.exp(-1 / scale);
  return ((1 - q) / (1 + q)) * q ** Math.abs(z);
}

/**
 * Pearson's chi-square statistic of the draws against the distribution, over the values that
 * are expected at least 5 times, the rest pooled in one tail cell.
 */
function chiSquare(draws: bigint[], scale: number): { statistic: number; cells: number } {
  const counts = new Map<number, number>();
  for (const draw of draws) counts.set(Number(draw), (counts.get(Number(draw)) ?? 0) + 1);
  let statistic = 0;
  let cells = 0;
  let tailExpected = draws.length;
  let tailObserved = draws.length;
  for (let z = -1000; z <= 1000; z += 1) {
    const expected = probability(z, scale) * draws.length;
    if (expected < 5) continue;
    const observed = counts.get(z) ?? 0;
    statistic += (observed - expected) ** 2 / expected;
    cells += 1;
    tailExpected -= expected;
    tailObserved -= observed;
  }
  statistic += (tailObserved - tailExpected) ** 2 / tailExpected;
  return { statistic, cells: cells + 1 };
}

describe('exact discrete Laplace sampling', () => {
  it('draws uniform integers without bias, from the system generator or a seed', () => {
    const random = randomIntegers(seededBytes('uniform'));
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i += 1) counts[Number(random.below(3n))]! += 1;
    // Chi-square with 2 degrees of freedom; 13.8 is its 0.999 quantile.
    const statistic = counts.reduce((sum, count) => sum + (count - 10_000) ** 2 / 10_000, 0);
    expect(statistic).toBeLessThan(13.8);
    expect(randomIntegers().below(1n)).toBe(0n);
    expect(() => random.below(0n)).toThrow(RangeError);
  });

  it('gives exp(−γ) for a rational γ', () => {
    const random = randomIntegers(seededBytes('bernoulli'));
    for (const [numerator, denominator] of [
      [1n, 2n],
      [3n, 1n],
      [7n, 3n],
    ] as const) {
      const trials = 40_000;
      let hits = 0;
      for (let i = 0; i < trials; i += 1) {
        if (bernoulliExpMinus(random, { numerator, denominator })) hits += 1;
      }
      const p = Math.exp(-Number(numerator) / Number(denominator));
      // Within four standard deviations of the expected count.
      expect(Math.abs(hits - p * trials)).toBeLessThan(4 * Math.sqrt(trials * p * (1 - p)));
    }
  });

  it('follows the discrete Laplace distribution (chi-square test over 50,000 draws per scale)', () => {
    const random = randomIntegers(seededBytes('laplace'));
    // Scales 1/0.5 = 2, 1/0.1 = 10 and 3/1.5 = 2: sensitivity over epsilon, as rationals.
    for (const [numerator, denominator] of [
      [2n, 1n],
      [10n, 1n],
      [30n, 15n],
    ] as const) {
      const scale = Number(numerator) / Number(denominator);
      const draws = Array.from({ length: 50_000 }, () =>
        sampleDiscreteLaplace(random, { numerator, denominator }),
      );
      const { statistic, cells } = chiSquare(draws, scale);
      // The 0.999 quantile of chi-square with k degrees of freedom is below k + 4.5·√(2k) + 10.
      const degrees = cells - 1;
      const mean = draws.reduce((sum, draw) => sum + Number(draw), 0) / draws.length;
      console.log(
        `discrete Laplace, scale ${scale}: chi-square ${statistic.toFixed(1)} on ${degrees} degrees of freedom, mean ${mean.toFixed(3)}`,
      );
      expect(statistic, `scale ${scale}`).toBeLessThan(degrees + 4.5 * Math.sqrt(2 * degrees) + 10);
      expect(Math.abs(mean)).toBeLessThan(0.1 * scale);
    }
  });

  it('is exact on integers: noise added to a count far beyond 2^53 loses nothing', () => {
    const random = randomIntegers(seededBytes('exact'));
    const count = 2n ** 70n + 12_345n;
    for (let i = 0; i < 1000; i += 1) {
      const noise = sampleDiscreteLaplace(random, { numerator: 2n, denominator: 1n });
      expect(typeof noise).toBe('bigint');
      expect(count + noise - noise).toBe(count);
      expect((count + noise) % 1n).toBe(0n);
    }
    // The same seed gives the same draws: the sampler has no hidden source of randomness.
    const again = (seed: string) => {
      const seeded = randomIntegers(seededBytes(seed));
      return Array.from({ length: 50 }, () =>
        sampleDiscreteLaplace(seeded, { numerator: 7n, denominator: 2n }),
      );
    };
    expect(again('same')).toEqual(again('same'));
    expect(again('same')).not.toEqual(again('other'));
  });
});
