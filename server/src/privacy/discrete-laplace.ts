import { createHash, randomBytes } from 'node:crypto';

/** Uniform random integers, exactly: the only randomness the samplers use. */
export type RandomIntegers = {
  /** A uniform integer in [0, n), for n ≥ 1. */
  below(n: bigint): bigint;
};

/** A positive rational number as two integers, so that no step rounds. */
export type Rational = { numerator: bigint; denominator: bigint };

/**
 * Uniform integers by rejection from whole bytes: a draw outside the largest multiple of n that
 * fits is thrown away, so every value is exactly equally likely. Bytes come from the system's
 * cryptographic generator, or, for tests only, from a seed.
 */
export function randomIntegers(source: (bytes: number) => Buffer = randomBytes): RandomIntegers {
  return {
    below(n) {
      if (n < 1n) throw new RangeError('the range must hold at least one integer');
      if (n === 1n) return 0n;
      const bytes = Math.ceil((n - 1n).toString(16).length / 2);
      const space = 1n << BigInt(bytes * 8);
      const limit = space - (space % n);
      for (;;) {
        const drawn = BigInt(`0x${source(bytes).toString('hex')}`);
        if (drawn < limit) return drawn % n;
      }
    },
  };
}

/** A reproducible byte stream (SHA-256 of a seed and a counter), for tests. */
export function seededBytes(seed: string): (bytes: number) => Buffer {
  let counter = 0;
  let pool = Buffer.alloc(0);
  return (bytes) => {
    while (pool.length < bytes) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      pool = Buffer.concat([pool, block]);
    }
    const taken = pool.subarray(0, bytes);
    pool = pool.subarray(bytes);
    return Buffer.from(taken);
  };
}

function bernoulli(random: RandomIntegers, p: Rational): boolean {
  return random.below(p.denominator) < p.numerator;
}

/**
 * True with probability exp(−γ) for a rational γ ≥ 0, with integer arithmetic only (Canonne,
 * Kamath and Steinke 2020, algorithm 1): for γ ≤ 1 the parity of the first failed trial of
 * Bernoulli(γ/k), k = 1, 2, …; a larger γ as that many exp(−1) trials and one for the rest.
 */
export function bernoulliExpMinus(random: RandomIntegers, gamma: Rational): boolean {
  const { numerator: n, denominator: d } = gamma;
  if (n <= d) {
    let k = 1n;
    while (bernoulli(random, { numerator: n, denominator: d * k })) k += 1n;
    return k % 2n === 1n;
  }
  const whole = n / d;
  for (let i = 0n; i < whole; i += 1n) {
    if (!bernoulliExpMinus(random, { numerator: 1n, denominator: 1n })) return false;
  }
  return bernoulliExpMinus(random, { numerator: n - whole * d, denominator: d });
}

/**
 * One draw of the discrete Laplace distribution of the given scale (P(z) ∝ exp(−|z|/scale) on the
 * integers), sampled exactly (Canonne, Kamath and Steinke 2020, algorithm 2). Floating-point
 * Laplace noise leaks through the gaps between the doubles it can produce (Mironov 2012); an
 * integer drawn with integer arithmetic has none.
 */
export function sampleDiscreteLaplace(random: RandomIntegers, scale: Rational): bigint {
  const { numerator: t, denominator: s } = scale;
  if (t < 1n || s < 1n) throw new RangeError('the scale must be a positive rational');
  for (;;) {
    const u = random.below(t);
    if (!bernoulliExpMinus(random, { numerator: u, denominator: t })) continue;
    let v = 0n;
    while (bernoulliExpMinus(random, { numerator: 1n, denominator: 1n })) v += 1n;
    const y = (u + t * v) / s;
    const negative = bernoulli(random, { numerator: 1n, denominator: 2n });
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}
