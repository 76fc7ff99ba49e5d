import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createLabResultsCatalog,
  createTestCatalog,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { cascadesOf, rawWrites, writtenTables } from './held-reads.ts';
import { migrateToLatest } from './migrate.ts';
import { usersRepository } from './users-repository.ts';

describe('which tables a statement may write', () => {
  let catalog: TestCatalog;

  beforeAll(async () => {
    catalog = await createTestCatalog('pglite');
    await migrateToLatest(catalog.db);
  });

  afterAll(() => catalog?.dispose());

  it('reads none for a select, and the target of an insert, update, delete or merge', () => {
    const { db } = catalog;
    const of = (builder: { toOperationNode(): unknown }) =>
      writtenTables(builder.toOperationNode() as Parameters<typeof writtenTables>[0]);
    expect(of(db.selectFrom('users').selectAll().where('id', '=', 'x').forUpdate())).toEqual([]);
    expect(of(db.insertInto('api_tokens').values({ id: 'x' } as never))).toEqual(['api_tokens']);
    expect(of(db.updateTable('dataset_grants as g').set({ level: 'row' }))).toEqual([
      'dataset_grants',
    ]);
    expect(of(db.deleteFrom('project_members').where('user_id', '=', 'x'))).toEqual([
      'project_members',
    ]);
    // A merge writes its target; what its actions say is read as part of it.
    expect(
      of(
        db
          .mergeInto('users as u')
          .using('api_tokens as t', 't.user_id', 'u.id')
          .whenMatched()
          .thenDelete(),
      ),
    ).toEqual(['users']);
    // A write hidden in a CTE of a select, and data shaped like a statement, which is data.
    const hidden = db
      .with('gone', (w) => w.deleteFrom('current_releases').returning('release_id'))
      .selectFrom('gone')
      .selectAll()
      .where(
        'release_id',
        '=',
        sql.val({ kind: 'RawNode', sqlFragments: ['drop table x'] }) as never,
      );
    expect(of(hidden)).toEqual(['current_releases']);
  });

  it('reads raw SQL: its writes, and everything when it cannot name what it writes', () => {
    const raw = (query: { toOperationNode(): unknown }) =>
      writtenTables(query.toOperationNode() as Parameters<typeof writtenTables>[0]);
    expect(raw(sql`select * from query_jobs where id = ${'x'} for update skip locked`)).toEqual([]);
    expect(raw(sql`select 'insert into users' as text -- delete from users`)).toEqual([]);
    expect(raw(sql`delete from current_releases where release_id = ${'x'}`)).toEqual([
      'current_releases',
    ]);
    expect(
      raw(
        sql`insert into "public"."api_tokens" (id) values (${'x'}) on conflict (id) do update set id = excluded.id`,
      ),
    ).toEqual(['api_tokens']);
    expect(
      raw(
        sql`with x as (update dataset_grants set revoked_at = now() returning id) select * from x`,
      ),
    ).toEqual(['dataset_grants']);
    expect(raw(sql`select * from ${sql.table('users')} where ${sql.raw('true')}`)).toEqual([]);
    expect(raw(sql`insert into ${sql.table('users')} default values`)).toBe('all');
    expect(raw(sql`alter table users add column x int`)).toBe('all');
    expect(raw(sql`truncate users`)).toBe('all');
    expect(raw(sql`do $$ begin delete from users; end $$`)).toBe('all');
    expect(rawWrites(['update ', ' set x = 1'])).toBe('all');
    expect(writtenTables(catalog.db.schema.dropTable('x').toOperationNode())).toBe('all');
  });

  it('knows every foreign key action of the catalog, and no trigger or function that writes', async () => {
    // A write to a parent table changes the children its foreign keys cascade to (or set null).
    const { rows } = await sql<{ child: string; parent: string }>`
      select conrelid::regclass::text as child, confrelid::regclass::text as parent
      from pg_constraint
      where contype = 'f' and (confdeltype not in ('a', 'r') or confupdtype not in ('a', 'r'))`.execute(
      catalog.db,
    );
    const found: Record<string, string[]> = {};
    for (const { child, parent } of rows) (found[parent] ??= []).push(child);
    const sorted = (map: Readonly<Record<string, readonly string[]>>) =>
      Object.fromEntries(
        Object.entries(map)
          .map(([parent, children]) => [parent, [...new Set(children)].sort()] as const)
          .sort(([a], [b]) => a.localeCompare(b)),
      );
    expect(sorted(found)).toEqual(sorted(cascadesOf));
    // The one trigger only refuses; the one function is its. A select could write through a
    // function of the catalog's, which writtenTables cannot see: a new one must be taught to it.
    const triggers = await sql<{ on: string; name: string }>`
      select tgrelid::regclass::text as on, tgname as name from pg_trigger where not tgisinternal`.execute(
      catalog.db,
    );
    expect(triggers.rows).toEqual([{ on: 'audit_log', name: 'audit_log_append_only' }]);
    const functions = await sql<{ name: string }>`
      select proname as name from pg_proc where pronamespace = 'public'::regnamespace`.execute(
      catalog.db,
    );
    expect(functions.rows).toEqual([{ name: 'audit_log_append_only' }]);
  });
});

describe.each(catalogBackends())('facts held in memory, on %s', (kind) => {
  let catalog: TestCatalog;

  beforeAll(async () => {
    catalog = await createLabResultsCatalog(kind);
  });

  afterAll(() => catalog?.dispose());

  it('are held only where this process owns the catalog', () => {
    expect(catalog.held !== undefined).toBe(kind === 'pglite');
  });
});

describe('facts held in memory on PGlite', () => {
  let catalog: TestCatalog;

  beforeAll(async () => {
    catalog = await createLabResultsCatalog('pglite');
  });

  afterAll(() => catalog?.dispose());

  it('are read again after a write to their tables, and only then', async () => {
    const held = catalog.held!;
    const users = usersRepository(catalog.db);
    const ada = await users.create({ email: 'ada@example.org', name: 'Ada', role: 'researcher' });
    const load = () => users.byId(ada.id);
    const read = () => held.read(`user:${ada.id}`, ['users'], load);
    const before = held.loads;
    expect((await read())?.name).toBe('Ada');
    expect((await read())?.name).toBe('Ada');
    expect(held.loads).toBe(before + 1);
    // Writes to other tables leave it; one to its table, in a transaction or not, drops it.
    await catalog.db
      .insertInto('meta')
      .values({ key: 'held-test', value: JSON.stringify(1) })
      .execute();
    await catalog.db.updateTable('datasets').set({ title: 'Labs' }).execute();
    expect((await read())?.name).toBe('Ada');
    expect(held.loads).toBe(before + 1);
    await catalog.db
      .transaction()
      .execute((trx) =>
        trx.updateTable('users').set({ name: 'Ada L.' }).where('id', '=', ada.id).execute(),
      );
    expect((await read())?.name).toBe('Ada L.');
    expect(held.loads).toBe(before + 2);
    await sql`update users set name = 'Ada Lovelace' where id = ${ada.id}`.execute(catalog.db);
    expect((await read())?.name).toBe('Ada Lovelace');
    expect(held.loads).toBe(before + 3);
    // A write that comes while the fact is being read: the answer is given, not kept.
    const raced = await held.read(`raced:${ada.id}`, ['users'], async () => {
      const found = await load();
      await users.setRole(ada.id, 'steward');
      return found;
    });
    expect(raced?.role).toBe('researcher');
    expect((await read())?.role).toBe('steward');
    expect(held.loads).toBe(before + 5);
  });

  it('are kept, and answered from memory, after a rollback of writes to other tables only', async () => {
    const held = catalog.held!;
    const users = usersRepository(catalog.db);
    const bea = await users.create({ email: 'bea@example.org', name: 'Bea', role: 'researcher' });
    const read = () => held.read(`user:${bea.id}`, ['users'], () => users.byId(bea.id));
    const first = await read();
    const loads = held.loads;
    const note = (db: typeof catalog.db) =>
      db
        .insertInto('meta')
        .values({ key: 'held-rollback', value: JSON.stringify(2) })
        .execute();
    await expect(
      catalog.db.transaction().execute(async (trx) => {
        await note(trx);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await read()).toBe(first);
    expect(held.loads).toBe(loads);
    // One that wrote its table drops it.
    await expect(
      catalog.db.transaction().execute(async (trx) => {
        await note(trx);
        await trx.updateTable('users').set({ name: 'B.' }).where('id', '=', bea.id).execute();
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await read()).toEqual(first);
    expect(await read()).not.toBe(first);
    expect(held.loads).toBe(loads + 1);
  });

  it('are grown after rows were only added to their tables, and read whole after any other write', async () => {
    const held = catalog.held!;
    const names = async (after = '') =>
      (
        await catalog.db
          .selectFrom('hospitals')
          .select('id')
          .where('id', '>', after)
          .orderBy('id')
          .execute()
      ).map((row) => row.id);
    const ways: string[] = [];
    const read = () =>
      held.readGrowing<{ ids: string[] }>(
        'hospital-ids',
        ['hospitals'],
        async () => {
          ways.push('load');
          return { ids: await names() };
        },
        async (fact) => {
          ways.push('grow');
          return { ids: [...fact.ids, ...(await names(fact.ids.at(-1)))] };
        },
      );
    await catalog.db.insertInto('hospitals').values({ id: 'g-a', name: 'A' }).execute();
    expect((await read())?.ids).toEqual(['g-a']);
    await catalog.db.insertInto('hospitals').values({ id: 'g-b', name: 'B' }).execute();
    expect((await read())?.ids).toEqual(['g-a', 'g-b']);
    // An upsert may change a row: read whole.
    await catalog.db
      .insertInto('hospitals')
      .values({ id: 'g-c', name: 'C' })
      .onConflict((conflict) => conflict.column('id').doUpdateSet({ name: 'C' }))
      .execute();
    expect((await read())?.ids).toEqual(['g-a', 'g-b', 'g-c']);
    await catalog.db.deleteFrom('hospitals').where('id', '=', 'g-a').execute();
    expect((await read())?.ids).toEqual(['g-b', 'g-c']);
    expect(ways).toEqual(['load', 'grow', 'load', 'load']);
  });

  it('are kept through a write of their own only when no other write came while it ran', async () => {
    const held = catalog.held!;
    const count = async () =>
      Number(
        (
          await catalog.db
            .selectFrom('hospitals')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const read = () =>
      held.read('hospital-count', ['hospitals'], async () => ({ n: await count() }));
    const plusOne = new Map([
      ['hospital-count', (fact: object) => ({ n: (fact as { n: number }).n + 1 })],
    ]);
    const before = (await read())!.n;
    const loads = held.loads;
    await held.writeThrough(['hospitals'], plusOne, () =>
      catalog.db.insertInto('hospitals').values({ id: 'w-a', name: 'A' }).execute(),
    );
    expect((await read())?.n).toBe(before + 1);
    expect(held.loads).toBe(loads);
    // Another write while the own one runs: the fact is read again, not updated by guess.
    await held.writeThrough(['hospitals'], plusOne, async () => {
      const own = catalog.db.insertInto('hospitals').values({ id: 'w-b', name: 'B' }).execute();
      await catalog.db.insertInto('hospitals').values({ id: 'w-c', name: 'C' }).execute();
      return own;
    });
    expect((await read())?.n).toBe(before + 3);
    expect(held.loads).toBe(loads + 1);
  });

  it('are dropped by a write to a table their table cascades from', async () => {
    const held = catalog.held!;
    const read = () => held.read('files', ['release_files'], async () => ({ at: held.loads }));
    const first = await read();
    expect(await read()).toBe(first);
    // No release has this id: the statement is what counts, not what it changed.
    await sql`delete from releases where id = ${'00000000-0000-4000-8000-000000000000'}`.execute(
      catalog.db,
    );
    expect(await read()).not.toBe(first);
  });
});
