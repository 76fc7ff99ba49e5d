import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createLabResultsCatalog,
  createTestDatabase,
  shippedLabResults,
  type TestCatalog,
  type TestDatabase,
} from '../../test/catalog-backends.ts';
import { openCatalog, type Catalog, type CatalogDb } from '../catalog/catalog.ts';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { grantsRepository, type Grant } from '../catalog/grants-repository.ts';
import { datasetWithGrants, userOfToken } from '../catalog/held-facts.ts';
import { migrateToLatest } from '../catalog/migrate.ts';
import { usersRepository, type User } from '../catalog/users-repository.ts';

/**
 * The adversary's attacks on the facts held in memory on PGlite (catalog/held-reads.ts): writes
 * that reach the catalog in ways the watch on its statements could misread, and reads that see
 * what is never committed. After each, the held fact must be what the catalog says now: a
 * grant revoked by any statement, or one added by a transaction rolled back, gives no access.
 */

describe('held facts against writes the watch could miss', () => {
  let catalog: TestCatalog;
  let datasetId: string;
  let user: User;
  let grant: Grant;

  beforeAll(async () => {
    catalog = await createLabResultsCatalog('pglite');
    datasetId = 'lab-results';
    user = await usersRepository(catalog.db).create({
      email: 'eve@example.org',
      name: 'Eve',
      role: 'researcher',
    });
    await sql`create table held_commit_check (
      user_id uuid references users (id) deferrable initially deferred)`.execute(catalog.db);
  });

  afterAll(() => catalog?.dispose());

  const grants = (db: CatalogDb = catalog.db) =>
    datasetWithGrants({ db, held: catalog.held }, datasetId, user.id, new Date()).then(
      (found) => found?.grants.map((held) => held.id) ?? [],
    );

  /** A row-level grant to the user, added through `db`. */
  const addGrant = (db: CatalogDb) =>
    grantsRepository(db).add({
      datasetId,
      userId: user.id,
      projectId: null,
      level: 'row',
      hospitals: null,
      expiresAt: null,
    });

  /** A row that breaks a constraint checked at the commit: the commit then fails. */
  const breakCommit = (db: CatalogDb) =>
    sql`insert into held_commit_check values (${crypto.randomUUID()})`.execute(db);

  /** The user's grants as held, the second read answered from memory. */
  async function heldGrants(): Promise<string[]> {
    const first = await grants();
    const loads = catalog.held!.loads;
    const second = await grants();
    expect(catalog.held!.loads).toBe(loads);
    expect(second).toEqual(first);
    return second;
  }

  describe('a grant revoked by raw SQL that is hard to read', () => {
    beforeEach(async () => {
      grant = await grantsRepository(catalog.db).add({
        datasetId,
        userId: user.id,
        projectId: null,
        level: 'aggregate',
        hospitals: null,
        expiresAt: null,
      });
      expect(await heldGrants()).toContain(grant.id);
    });

    const revokes: Array<[string, () => RawBuilder<unknown>]> = [
      [
        'an apostrophe in a comment before it, and another after',
        () => sql`-- the user's grant ends here
          update dataset_grants set revoked_at = now() where id = ${grant.id} -- that's all`,
      ],
      [
        'an apostrophe in a dollar-quoted string before it',
        () => sql`with why as (select $$the user's grant ends$$ as text)
          update dataset_grants set revoked_at = now()
          where id = ${grant.id} and (select text from why) <> ''`,
      ],
      [
        'a backslash-escaped quote in an escape string before it',
        () => sql`with why as (select E'the user\\'s grant ends' as text)
          update dataset_grants set revoked_at = now()
          where id = ${grant.id} and (select text from why) <> 'x'`,
      ],
      [
        'an apostrophe in a quoted identifier before it',
        () => sql`with "eve's" as (select 1 as one)
          update dataset_grants set revoked_at = now()
          where id = ${grant.id} and (select one from "eve's") = 1 and 'x' <> ''`,
      ],
      [
        'a table named with its database, schema and name',
        () => sql`update postgres.public.dataset_grants set revoked_at = now()
          where id = ${grant.id}`,
      ],
      [
        'a comment between the words that name the table',
        () =>
          sql`update/* the grant */dataset_grants set revoked_at = now() where id = ${grant.id}`,
      ],
    ];

    it.each(revokes)('drops the held grant: %s', async (_, revoke) => {
      await revoke().execute(catalog.db);
      const row = await catalog.db
        .selectFrom('dataset_grants')
        .select('revoked_at')
        .where('id', '=', grant.id)
        .executeTakeFirstOrThrow();
      expect(row.revoked_at).not.toBeNull();
      expect(await grants()).not.toContain(grant.id);
    });
  });

  describe('a grant added in a transaction that is rolled back', () => {
    beforeEach(async () => {
      await catalog.db.updateTable('dataset_grants').set({ revoked_at: new Date() }).execute();
      expect(await heldGrants()).toEqual([]);
    });

    it('is not held after a rollback, where it was read inside the transaction', async () => {
      let added: Grant | undefined;
      await expect(
        catalog.db.transaction().execute(async (trx) => {
          added = await addGrant(trx);
          // A read of the held fact inside the transaction sees the grant not yet committed.
          expect(await grants(trx)).toEqual([added.id]);
          throw new Error('the transaction fails after the grant');
        }),
      ).rejects.toThrow('the transaction fails');
      expect(added).toBeDefined();
      expect(await grantsRepository(catalog.db).get(added!.id)).toBeUndefined();
      expect(await grants()).toEqual([]);
    });

    it('is not held after a commit that fails', async () => {
      let added: Grant | undefined;
      await expect(
        catalog.db.transaction().execute(async (trx) => {
          added = await addGrant(trx);
          expect(await grants(trx)).toEqual([added.id]);
          await breakCommit(trx);
        }),
      ).rejects.toThrow();
      expect(await grantsRepository(catalog.db).get(added!.id)).toBeUndefined();
      expect(await grants()).toEqual([]);
    });

    it('is not held after a commit of a transaction a failed statement ended', async () => {
      let added: Grant | undefined;
      await expect(
        catalog.db.transaction().execute(async (trx) => {
          added = await addGrant(trx);
          expect(await grants(trx)).toEqual([added.id]);
          // The failure is caught, and the commit that follows finds the transaction aborted.
          await sql`select 1 / 0`.execute(trx).catch(() => undefined);
        }),
      ).rejects.toThrow();
      expect(await grantsRepository(catalog.db).get(added!.id)).toBeUndefined();
      expect(await grants()).toEqual([]);
    });

    it('is not held after a rollback to a savepoint', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const saved = await trx.savepoint('before_grant').execute();
      const added = await addGrant(saved);
      expect(await grants(saved)).toEqual([added.id]);
      await saved.rollbackToSavepoint('before_grant').execute();
      await trx.commit().execute();
      expect(await grantsRepository(catalog.db).get(added.id)).toBeUndefined();
      expect(await grants()).toEqual([]);
    });

    it('is not held after a rollback sent as SQL', async () => {
      const added = await catalog.db.connection().execute(async (connection) => {
        await sql`begin`.execute(connection);
        const grant = await addGrant(connection);
        expect(await grants(connection)).toEqual([grant.id]);
        await sql`rollback`.execute(connection);
        return grant;
      });
      expect(await grantsRepository(catalog.db).get(added.id)).toBeUndefined();
      expect(await grants()).toEqual([]);
    });
  });

  describe('a rollback drops what its transaction may have written, and only that', () => {
    /** A write to a table no held fact is read from, as a refused submit or audit makes. */
    const unrelatedWrite = (db: CatalogDb) =>
      db
        .insertInto('meta')
        .values({ key: `held-${crypto.randomUUID()}`, value: JSON.stringify(1) })
        .execute();

    /**
     * The user's grants read through `db`, whose answer, once the catalog has given it, comes
     * back only after `end` (a read still on its way when the transaction ends).
     */
    async function readAcross(db: CatalogDb, end: () => Promise<unknown>): Promise<string[]> {
      let release = () => undefined as void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let answer = () => undefined as void;
      const answered = new Promise<void>((resolve) => (answer = resolve));
      const read = grants(
        db.withPlugin({
          transformQuery: (args) => args.node,
          transformResult: async (args) => {
            answer();
            await gate;
            return args.result;
          },
        }),
      );
      await answered;
      await end();
      release();
      return read;
    }

    beforeEach(async () => {
      await catalog.db.updateTable('dataset_grants').set({ revoked_at: new Date() }).execute();
      expect(await heldGrants()).toEqual([]);
    });

    it('keeps no read whose answer comes back after the rollback of a write it saw', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const added = await addGrant(trx);
      // The read saw the grant inside the transaction; the rollback undid it.
      expect(await readAcross(trx, () => trx.rollback().execute())).toEqual([added.id]);
      expect(await grants()).toEqual([]);
    });

    it('keeps no read whose answer comes back after the rollback to a savepoint, then a commit', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const saved = await trx.savepoint('before_grant').execute();
      const added = await addGrant(saved);
      const read = await readAcross(saved, async () => {
        await saved.rollbackToSavepoint('before_grant').execute();
        await trx.commit().execute();
      });
      expect(read).toEqual([added.id]);
      expect(await grants()).toEqual([]);
    });

    it('counts a rollback to an earlier savepoint as undoing every savepoint after it', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const first = await trx.savepoint('first').execute();
      const added = await addGrant(first);
      // The last savepoint holds only an unrelated write; the grant is before it.
      const second = await first.savepoint('second').execute();
      await unrelatedWrite(second);
      const read = await readAcross(second, async () => {
        await second.rollbackToSavepoint('first').execute();
        await trx.commit().execute();
      });
      expect(read).toEqual([added.id]);
      expect(await grantsRepository(catalog.db).get(added.id)).toBeUndefined();
      expect(await grants()).toEqual([]);
    });

    it('keeps no read whose answer comes back after a commit that fails', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const added = await addGrant(trx);
      const read = await readAcross(trx, async () => {
        // A failed statement aborts the transaction: its commit fails, and no rollback follows.
        await sql`select 1 / 0`.execute(trx).catch(() => undefined);
        await expect(trx.commit().execute()).rejects.toThrow();
      });
      expect(read).toEqual([added.id]);
      expect(await grants()).toEqual([]);
    });

    it('counts a statement it cannot read in the transaction as a write to every table', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const added = crypto.randomUUID();
      // A grant added by a block of code, whose writes cannot be read from its text.
      await sql`do $$ begin
          insert into dataset_grants (id, dataset_id, user_id, level)
          values (${sql.lit(added)}, ${sql.lit(datasetId)}, ${sql.lit(user.id)}, 'row');
        end $$`.execute(trx);
      expect(await readAcross(trx, () => trx.rollback().execute())).toEqual([added]);
      expect(await grants()).toEqual([]);
    });

    it('answers no other request from what a transaction read after its own write', async () => {
      const trx = await catalog.db.startTransaction().execute();
      const added = await addGrant(trx);
      expect(await grants(trx)).toEqual([added.id]);
      // Another request meanwhile: answered from memory it would see the uncommitted grant; read
      // from the catalog it waits for the transaction to end.
      const other = grants();
      await trx.rollback().execute();
      expect(await other).toEqual([]);
      expect(await heldGrants()).toEqual([]);
    });

    it('holds what was committed before, after a later transaction that undid it rolls back', async () => {
      const kept = await addGrant(catalog.db);
      expect(await heldGrants()).toEqual([kept.id]);
      await expect(
        catalog.db.transaction().execute(async (trx) => {
          await grantsRepository(trx).revoke(kept.id, new Date());
          expect(await grants(trx)).toEqual([]);
          throw new Error('the revocation fails');
        }),
      ).rejects.toThrow('the revocation fails');
      expect(await heldGrants()).toEqual([kept.id]);
    });

    describe('keeps the held facts, answered from memory, after the rollback of a write to other tables', () => {
      let granted: string;
      let loads: number;

      beforeEach(async () => {
        granted = (await addGrant(catalog.db)).id;
        expect(await heldGrants()).toEqual([granted]);
        loads = catalog.held!.loads;
      });

      const stillHeld = async () => {
        expect(await grants()).toEqual([granted]);
        expect(catalog.held!.loads).toBe(loads);
      };

      it('of a transaction that fails, having read them', async () => {
        await expect(
          catalog.db.transaction().execute(async (trx) => {
            await unrelatedWrite(trx);
            expect(await grants(trx)).toEqual([granted]);
            throw new Error('the queue is full');
          }),
        ).rejects.toThrow('the queue is full');
        await stillHeld();
      });

      it('to a savepoint, inside a transaction that commits', async () => {
        const trx = await catalog.db.startTransaction().execute();
        const saved = await trx.savepoint('before_write').execute();
        await unrelatedWrite(saved);
        await saved.rollbackToSavepoint('before_write').execute();
        await trx.commit().execute();
        await stillHeld();
      });

      it('of a commit that fails', async () => {
        await expect(
          catalog.db.transaction().execute(async (trx) => {
            await unrelatedWrite(trx);
            await breakCommit(trx);
          }),
        ).rejects.toThrow();
        await stillHeld();
      });
    });
  });
});

describe('statements sent past the watch', () => {
  it('are sent by no server code: no executor, connection or second database of its own', async () => {
    // Each of these sends statements that CatalogWrites never sees, so that no held fact
    // learns of their writes: Kysely's executor or a connection taken from it directly, the
    // PGlite handle, another Kysely. A transaction begun as SQL is not followed either: a read
    // inside it after its own write would be held, for other requests, until it ends.
    const source = path.resolve(import.meta.dirname, '..');
    const files = (await readdir(source, { recursive: true })).filter(
      (file) => file.endsWith('.ts') && !file.endsWith('.test.ts'),
    );
    expect(files.length).toBeGreaterThan(100);
    const past =
      /\b(getExecutor|provideConnection|withoutPlugins)\(|new Kysely\b|PGlite\.create\(|new PGlite\(|\bsql(\.raw\()?[`'"]\s*(begin|start\s+transaction|savepoint|release|commit|end|rollback|abort)\b/i;
    const found: string[] = [];
    for (const file of files) {
      const text = await readFile(path.join(source, file), 'utf8');
      for (const line of text.split('\n'))
        if (past.test(line)) found.push(`${file}: ${line.trim()}`);
    }
    expect(found).toEqual([
      // The catalog's own: the restore of a dump into a new directory, closed at once, and
      // the two catalogs, of which only PGlite's holds facts (with the watch as its plugin).
      'catalog/catalog.ts: const pglite = await PGlite.create(directory, { loadDataDir: dump });',
      'catalog/catalog.ts: const db = new Kysely<CatalogSchema>({ dialect: new PostgresDialect({ pool }) });',
      'catalog/catalog.ts: const pglite = await PGlite.create(directory);',
      'catalog/catalog.ts: const db = new Kysely<CatalogSchema>({',
    ]);
  });
});

describe.runIf(catalogBackends().includes('postgres'))(
  'two servers on one PostgreSQL, one reading while the other revokes',
  () => {
    let database: TestDatabase;
    let reader: Catalog;
    let writer: Catalog;

    beforeAll(async () => {
      database = await createTestDatabase('postgres');
      reader = await openCatalog(database.location);
      writer = await openCatalog(database.location);
      await migrateToLatest(writer.db);
    });

    afterAll(async () => {
      await reader?.close();
      await writer?.close();
      await database?.dispose();
    });

    it('sees the other server’s revocations, disabling and token revocation at once', async () => {
      expect(reader.held).toBeUndefined();
      const datasetId = (await datasetsRepository(writer.db).create(await shippedLabResults())).id;
      const users = usersRepository(writer.db);
      const user = await users.create({
        email: 'mal@example.org',
        name: 'Mal',
        role: 'researcher',
      });
      const grant = await grantsRepository(writer.db).add({
        datasetId,
        userId: user.id,
        projectId: null,
        level: 'aggregate',
        hospitals: null,
        expiresAt: null,
      });
      const { token, id: tokenId } = await users.createToken(user.id, {
        name: 'two servers',
        expiresAt: new Date(Date.now() + 3_600_000),
        scopes: ['query'],
      });
      const grantsSeen = async () =>
        (await datasetWithGrants(reader, datasetId, user.id, new Date()))?.grants.map(
          (held) => held.id,
        );
      for (let read = 0; read < 2; read += 1) {
        expect(await grantsSeen()).toEqual([grant.id]);
        expect((await userOfToken(reader, token, new Date()))?.user.id).toBe(user.id);
      }
      await grantsRepository(writer.db).revoke(grant.id, new Date());
      expect(await grantsSeen()).toEqual([]);
      await users.revokeToken(user.id, tokenId, new Date());
      expect(await userOfToken(reader, token, new Date())).toBeUndefined();
    });
  },
);
