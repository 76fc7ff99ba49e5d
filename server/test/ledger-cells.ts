/**
 * A cell as the release ledger stores it, numbered `n`: boxed (in the set search's pool) or
 * not. For tests that fill a holder's ledger with many cells of their own.
 */
export const storedCell = (n: number, boxed: boolean) => ({
  groups: ['{"column":"code"}'],
  values: [`code-${n}`],
  ...(boxed
    ? { box: { code: { ranges: [[{ v: `c${n}` }, { v: `c${n}` }]] } }, boxKey: `key-${n}` }
    : {}),
  scope: 'scope',
  rows: n,
});
