import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { AppError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { createProject, setProjectMember } from '../use-cases/access/projects.ts';
import { setUserDisabled } from '../use-cases/accounts/manage-users.ts';
import { createApiToken, grantDatasetAccess, revokeGrant } from '../use-cases/manage-access.ts';
import { candidateReleases } from '../use-cases/queries/candidate-releases.ts';
import { checkQuerySpec } from '../use-cases/queries/submit-query.ts';
import { datasetsRepository } from './datasets-repository.ts';
import { grantsRepository } from './grants-repository.ts';
import { datasetWithGrants, userOfToken } from './held-facts.ts';
import { usersRepository } from './users-repository.ts';

/**
 * Random admin writes interleaved with the reads every query makes before its engine starts:
 * what the held facts answer (catalog/held-reads.ts) must be what an uncached read of the
 * catalog answers at that moment, whatever came before.
 */

const dataset = 'synthea-observations';
const emails = ['ada@example.org', 'bob@example.org'];
const hospitals = ['synthea', 'evil'];
const project = 'cohort-a';

type Command =
  | { kind: 'grant'; who: number; level: 'aggregate' | 'row'; hospitals: string[] | null }
  | { kind: 'revoke'; who: number }
  | { kind: 'projectGrant'; hospitals: string[] | null }
  | { kind: 'projectRevoke' }
  | { kind: 'member'; who: number; member: boolean }
  | { kind: 'disable'; who: number; disabled: boolean }
  | { kind: 'newToken'; who: number }
  | { kind: 'revokeToken'; who: number }
  | { kind: 'tokenExpiry'; who: number; inMs: number }
  | { kind: 'grantExpiry'; who: number; inMs: number }
  | { kind: 'release'; hospital: string; current: boolean }
  | { kind: 'wait'; ms: number };

const who = fc.integer({ min: 0, max: emails.length - 1 });
const someHospitals = fc.option(fc.subarray(hospitals, { minLength: 1 }), { nil: null });
const expiry = fc.constantFrom(-1000, 150, 3_600_000);
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    who,
    level: fc.constantFrom('aggregate' as const, 'row' as const),
    hospitals: someHospitals,
  }),
  fc.record({ kind: fc.constant('revoke' as const), who }),
  fc.record({ kind: fc.constant('projectGrant' as const), hospitals: someHospitals }),
  fc.record({ kind: fc.constant('projectRevoke' as const) }),
  fc.record({ kind: fc.constant('member' as const), who, member: fc.boolean() }),
  fc.record({ kind: fc.constant('disable' as const), who, disabled: fc.boolean() }),
  fc.record({ kind: fc.constant('newToken' as const), who }),
  fc.record({ kind: fc.constant('revokeToken' as const), who }),
  fc.record({ kind: fc.constant('tokenExpiry' as const), who, inMs: expiry }),
  fc.record({ kind: fc.constant('grantExpiry' as const), who, inMs: expiry }),
  fc.record({
    kind: fc.constant('release' as const),
    hospital: fc.constantFrom(...hospitals),
    current: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(0, 200) }),
);

describe('facts held in memory against the catalog, with admin writes between queries', () => {
  let platform: TestPlatform;
  /** The same platform reading everything from the catalog: the oracle. */
  let uncached: Platform;
  /** Each user's tokens, the newest last, with their ids. */
  const tokens: Array<Array<{ id: string; token: string }>> = emails.map(() => []);
  /** The current release of each hospital's month, as published. */
  const published = new Map<string, { releaseId: string; month: string }>();

  beforeAll(async () => {
    platform = await createTestPlatform('pglite');
    uncached = { ...platform, catalog: { ...platform.catalog, held: undefined } };
    await prepareDataset(platform, dataset, hospitals);
    for (const hospital of hospitals) {
      await ingest(platform, { file: synthea('2020-12'), month: '2020-12', hospital });
    }
    const rows = await platform.catalog.db.selectFrom('current_releases').selectAll().execute();
    for (const row of rows) {
      published.set(row.hospital_id, { releaseId: row.release_id, month: row.month });
    }
    for (const email of emails) {
      await usersRepository(platform.catalog.db).create({ email, name: email, role: 'researcher' });
    }
    await createProject(platform, testActor, { id: project, name: 'Cohort A' });
    for (const [index, email] of emails.entries()) {
      tokens[index]!.push(
        await createApiToken(platform, testActor, { email, name: 'first', days: 1 }),
      );
    }
  }, 120_000);

  afterAll(() => platform?.dispose());

  const userId = async (index: number) =>
    (await usersRepository(platform.catalog.db).byEmail(emails[index]!))!.id;

  async function apply(step: Command): Promise<void> {
    const db = platform.catalog.db;
    const grants = grantsRepository(db);
    switch (step.kind) {
      case 'grant':
        await grantDatasetAccess(platform, testActor, {
          email: emails[step.who]!,
          datasetId: dataset,
          level: step.level,
          ...(step.hospitals ? { hospitals: step.hospitals } : {}),
        });
        return;
      case 'revoke':
        for (const grant of await grants.active(await userId(step.who), dataset, new Date())) {
          if (grant.userId !== null) await revokeGrant(platform, testActor, grant.id);
        }
        return;
      case 'projectGrant':
        await grantDatasetAccess(platform, testActor, {
          projectId: project,
          datasetId: dataset,
          level: 'aggregate',
          ...(step.hospitals ? { hospitals: step.hospitals } : {}),
        });
        return;
      case 'projectRevoke':
        for (const grant of await grants.list({ projectId: project })) {
          await revokeGrant(platform, testActor, grant.id);
        }
        return;
      case 'member':
        await setProjectMember(platform, testActor, {
          projectId: project,
          email: emails[step.who]!,
          member: step.member,
        });
        return;
      case 'disable':
        await setUserDisabled(platform, testActor, {
          email: emails[step.who]!,
          disabled: step.disabled,
        });
        return;
      case 'newToken':
        tokens[step.who]!.push(
          await createApiToken(platform, testActor, {
            email: emails[step.who]!,
            name: 'another',
            days: 1,
          }),
        );
        return;
      case 'revokeToken': {
        const latest = tokens[step.who]!.at(-1)!;
        await usersRepository(db).revokeToken(await userId(step.who), latest.id, new Date());
        return;
      }
      case 'tokenExpiry': {
        const latest = tokens[step.who]!.at(-1)!;
        await db
          .updateTable('api_tokens')
          .set({ expires_at: new Date(Date.now() + step.inMs) })
          .where('id', '=', latest.id)
          .execute();
        return;
      }
      case 'grantExpiry':
        await db
          .updateTable('dataset_grants')
          .set({ expires_at: new Date(Date.now() + step.inMs) })
          .where('user_id', '=', await userId(step.who))
          .where('revoked_at', 'is', null)
          .execute();
        return;
      case 'release': {
        const release = published.get(step.hospital)!;
        if (step.current) {
          await sql`insert into current_releases (dataset_id, hospital_id, month, release_id)
            values (${dataset}, ${step.hospital}, ${release.month}, ${release.releaseId})
            on conflict do nothing`.execute(db);
        } else {
          await db
            .deleteFrom('current_releases')
            .where('hospital_id', '=', step.hospital)
            .execute();
        }
        return;
      }
      case 'wait':
        await new Promise((resolve) => setTimeout(resolve, step.ms));
    }
  }

  /** Whether `toEqual` would pass. */
  function equalAsExpected(actual: unknown, expected: unknown): boolean {
    try {
      expect(actual).toEqual(expected);
      return true;
    } catch {
      return false;
    }
  }

  /** Whether a token or a grant expires between the two moments. */
  async function expiryBetween(from: Date, to: Date): Promise<boolean> {
    const db = platform.catalog.db;
    const within = async (table: 'api_tokens' | 'dataset_grants') =>
      (await db
        .selectFrom(table)
        .select('id')
        .where('expires_at', '>=', from)
        .where('expires_at', '<=', to)
        .executeTakeFirst()) !== undefined;
    return (await within('api_tokens')) || (await within('dataset_grants'));
  }

  /** Reads through the held facts, to show that most were answered from memory. */
  let heldReads = 0;

  /** What a query of each token would be let do now, held and from the catalog: the same. */
  async function compareEveryToken(): Promise<void> {
    for (const [index, list] of tokens.entries()) {
      for (const { token } of list) {
        const now = new Date();
        const held = await userOfToken(platform.catalog, token, now);
        heldReads += 1;
        const truth = await usersRepository(platform.catalog.db).byToken(token, now);
        expect(held).toEqual(truth);
        if (!truth) continue;
        const id = truth.user.id;
        expect(id).toBe(await userId(index));
        const sortGrants = <T extends { grants: Array<{ id: string }> }>(found: T | undefined) =>
          found && { ...found, grants: [...found.grants].sort((a, b) => a.id.localeCompare(b.id)) };
        heldReads += 5;
        expect(sortGrants(await datasetWithGrants(platform.catalog, dataset, id, now))).toEqual(
          sortGrants(
            await datasetsRepository(platform.catalog.db).getWithActiveGrants(dataset, id, now),
          ),
        );
        for (const spec of [
          { dataset, measures: [{ fn: 'count' }] },
          {
            dataset,
            where: { column: 'hospital', op: 'eq', value: 'evil' },
            measures: [{ fn: 'count' }],
          },
        ]) {
          const outcome = async (on: Platform) => {
            try {
              const checked = await checkQuerySpec(on, held!.user, spec);
              const { hospitals: granted } = checked.access;
              return {
                // In the order of the grants, which the catalog does not fix.
                access: { ...checked.access, hospitals: granted && [...granted].sort() },
                releases: await candidateReleases(on, checked.spec, checked.access),
              };
            } catch (error) {
              if (error instanceof AppError) return { refused: error.code };
              throw error;
            }
          };
          // Each side reads the clock itself: a token or grant expiring between the two (150 ms
          // after its command, and a busy machine can take that long) may part them. Then the
          // expiry must be there, and both sides, asked again past it, must agree.
          const started = new Date();
          const heldOutcome = await outcome(platform);
          const truthOutcome = await outcome(uncached);
          if (!equalAsExpected(heldOutcome, truthOutcome)) {
            expect(await expiryBetween(started, new Date())).toBe(true);
            expect(await outcome(platform)).toEqual(await outcome(uncached));
          }
        }
      }
    }
  }

  it('answers every query as an uncached read of the catalog would', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 12 }), async (steps) => {
        await compareEveryToken();
        for (const step of steps) {
          try {
            await apply(step);
          } catch (error) {
            // A write the rules refuse (a second grant in force, the last admin…) writes nothing.
            if (!(error instanceof AppError)) throw error;
          }
          await compareEveryToken();
        }
      }),
      { numRuns: 25 },
    );
    // The facts were held, not read again each time: the property was tested on the held path.
    expect(platform.catalog.held!.loads).toBeLessThan(heldReads);
  }, 300_000);
});
