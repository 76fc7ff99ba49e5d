import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { errorBodySchema } from '@medlake/shared';
import { userWithToken } from '../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { buildApp } from '../app.ts';
import { createLogger } from '../logger.ts';

describe('request rate limits and load shedding', () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', {
      MEDLAKE_RATE_LIMIT_PER_ADDRESS: '5',
      MEDLAKE_RATE_LIMIT_PER_TOKEN: '3',
    });
  });
  afterAll(() => platform.dispose());

  const from = (remoteAddress: string, headers: Record<string, string> = {}) => ({
    method: 'GET' as const,
    url: '/api/v1/auth/methods',
    remoteAddress,
    headers,
  });

  it('limits each address, answering 429 with when to retry, and not the next address', async () => {
    const app = await createTestApp(platform);
    try {
      for (let i = 0; i < 5; i += 1) {
        expect((await app.inject(from('10.1.1.1'))).statusCode).toBe(200);
      }
      const limited = await app.inject(from('10.1.1.1'));
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(errorBodySchema.parse(limited.json()).error).toMatchObject({
        code: 'rate_limited',
        message: expect.stringMatching(
          /^Too many requests from your address \(at most 5 a minute\); try again in \d+ seconds?$/,
        ),
      });
      expect((await app.inject(from('10.1.1.2'))).statusCode).toBe(200);
      // Load balancers' health checks are never limited.
      expect(
        (await app.inject({ method: 'GET', url: '/api/health', remoteAddress: '10.1.1.1' }))
          .statusCode,
      ).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('limits each token, before the token is even looked up', async () => {
    const { token } = await userWithToken(platform, 'bot@example.org', { name: 'bot' });
    const app = await createTestApp(platform);
    try {
      const call = (address: string, bearer = token) =>
        app.inject({
          method: 'GET',
          url: '/api/v1/queries',
          remoteAddress: address,
          headers: { authorization: `Bearer ${bearer}` },
        });
      // From three addresses, so that only the token's own limit is reached.
      for (const address of ['10.2.0.1', '10.2.0.2', '10.2.0.3']) {
        expect((await call(address)).statusCode).toBe(200);
      }
      const limited = await call('10.2.0.4');
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({
        error: { message: expect.stringMatching(/^Too many requests with this API token/) },
      });
      // Guessing tokens from one address is limited by the address.
      const guesses = [];
      for (let i = 0; i < 6; i += 1)
        guesses.push((await call('10.3.0.1', `mlk_guess${i}`)).statusCode);
      expect(guesses).toEqual([401, 401, 401, 401, 401, 429]);
    } finally {
      await app.close();
    }
  });

  it('sheds requests with 503 and Retry-After while the server is overloaded', async () => {
    let overloaded = false;
    const app = await buildApp({
      platform,
      logger: createLogger('silent'),
      pressure: { healthCheck: async () => !overloaded, healthCheckInterval: 5 },
    });
    await app.ready();
    try {
      expect((await app.inject(from('10.4.0.1'))).statusCode).toBe(200);
      overloaded = true;
      await vi.waitFor(async () => {
        expect((await app.inject(from('10.4.0.2'))).statusCode).toBe(503);
      });
      const shed = await app.inject(from('10.4.0.3'));
      expect(shed.headers['retry-after']).toBe('10');
      expect(errorBodySchema.parse(shed.json()).error).toEqual({
        code: 'overloaded',
        message: 'The server is overloaded; try again in 10 seconds',
      });
      overloaded = false;
      await vi.waitFor(async () => {
        expect((await app.inject(from('10.4.0.4'))).statusCode).toBe(200);
      });
    } finally {
      await app.close();
    }
  });
});
