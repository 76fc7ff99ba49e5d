import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/accounts/passwords.ts';
import { credentialsRepository } from '../src/catalog/credentials-repository.ts';
import { addUser, grantDatasetAccess } from '../src/use-cases/manage-access.ts';
import {
  accessibilityViolations,
  launchBrowser,
  overflowsWindow,
  screenshot,
} from '../test/browser.ts';
import { testActor } from '../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../test/ingest-helpers.ts';
import { startWebServer, type WebServer } from '../test/web-server.ts';

const password = 'amber orchard under seven kites';

/**
 * A researcher's question, built in the form alone: "the mean and 90th percentile of body
 * height by month and hospital, for patients who weighed more than 60 kg".
 */
describe('a researcher builds, saves, runs and reads a query, in a real browser', () => {
  let server: WebServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startWebServer();
    await prepareDataset(server.platform, 'synthea-observations', ['synthea', 'north']);
    await ingest(server.platform, { file: synthea('all'), month: '2021-06' });
    for (const month of ['2020-12', '2021-03', '2021-04'] as const) {
      await ingest(server.platform, { file: synthea(month), hospital: 'north', month });
    }
    for (const [email, level] of [
      ['rosa@example.org', 'row'],
      ['abe@example.org', 'aggregate'],
    ] as const) {
      const user = await addUser(server.platform, testActor, {
        email,
        name: email.split('@')[0]!,
        role: 'researcher',
      });
      await credentialsRepository(server.platform.catalog.db).setPassword(
        user.id,
        await hashPassword(password),
        false,
        new Date(),
      );
      await grantDatasetAccess(server.platform, testActor, {
        email,
        datasetId: 'synthea-observations',
        level,
      });
    }
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signIn(email: string, width = 1280): Promise<Page> {
    // A viewer in Paris: times are shown in their zone, named, not in the server's UTC.
    const context = await browser.newContext({
      viewport: { width, height: 900 },
      locale: 'en-GB',
      timezoneId: 'Europe/Paris',
    });
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error', String(error)));
    await page.goto(server.url);
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Catalog', level: 1 }).waitFor();
    return page;
  }

  async function choose(page: Page, label: string, option: string | RegExp) {
    await page.getByLabel(label, { exact: true }).click();
    await page.getByRole('option', { name: option, exact: typeof option === 'string' }).click();
  }

  it(
    'builds the question in the form, saves it without running, runs it, and reads it',
    { timeout: 180_000 },
    async () => {
      const page = await signIn('rosa@example.org');
      await page.goto(`${server.url}/queries/new`);
      await page.getByRole('heading', { name: 'New query' }).waitFor();

      await page.getByLabel('Tests (codes)').fill('8302-2');
      await page.getByRole('option', { name: /^8302-2/ }).click();

      await page.getByRole('button', { name: 'Add a filter' }).click();
      await choose(page, 'Filter 1 column', 'observed_at');
      await page.getByLabel('Filter 1 from').fill('2020-01-01');

      // A criterion without its test is an error at the field, never dropped from the query.
      await page.getByRole('button', { name: 'Add a cohort criterion' }).click();
      await page.getByRole('button', { name: 'Run query' }).click();
      await page.getByText('choose the test the patients had, or remove this criterion').waitFor();
      expect(page.url()).toContain('/queries/new');
      await page.getByLabel('Cohort test 1').fill('29463-7');
      await page.getByRole('option', { name: /^29463-7/ }).click();
      await page.getByLabel('Criterion 1 value from').fill('60');

      await page.getByRole('button', { name: 'Add a grouping' }).click();
      await choose(page, 'Group 1', 'observed_at');
      await page.getByRole('button', { name: 'Add a grouping' }).click();
      await choose(page, 'Group 2', 'hospital');

      await choose(page, 'Measure 1', 'Mean');
      await page.getByRole('button', { name: 'Add a measure' }).click();
      expect(await page.getByLabel('Percentile (measure 2)').inputValue()).toBe('90');
      await page
        .getByText(
          'The mean of value and the 90th percentile of value with tests 8302-2 observed_at from 2020-01-01 among patients who had 29463-7 with a value from 60, by observed_at month and hospital',
        )
        .waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'query-builder');

      // The JSON tab holds the same query, and the form takes it back.
      await page.getByRole('tab', { name: 'JSON' }).click();
      const json = JSON.parse(await page.getByLabel('Query spec (JSON)').inputValue());
      expect(json.measures).toEqual([
        { fn: 'mean', column: 'value' },
        { fn: 'percentile', column: 'value', p: 0.9 },
      ]);
      expect(json.groupBy).toEqual([
        { column: 'observed_at', bucket: 'month' },
        { column: 'hospital' },
      ]);
      await page.getByRole('tab', { name: 'Form' }).click();
      await page.getByLabel('Percentile (measure 2)').waitFor();

      // Saved without running; a name too long is refused at the name.
      await page.getByRole('button', { name: 'Save query' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByLabel('Name').fill('x'.repeat(5000));
      await dialog.getByRole('button', { name: 'Save', exact: true }).click();
      await dialog
        .getByText(/200 characters/)
        .first()
        .waitFor();
      expect(await dialog.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
      await dialog.getByLabel('Name').fill('Height of the heavier, by month and hospital');
      await dialog.getByRole('button', { name: 'Save', exact: true }).click();
      await dialog.getByText('It has not run').waitFor();
      await dialog.getByRole('button', { name: 'Close' }).click();
      expect(page.url()).toContain('/queries/new');
      const history = await page.request.get(`${server.url}/api/v1/queries`);
      expect((await history.json()).total).toBe(0);

      await page.getByRole('button', { name: 'Run query' }).click();
      await page.getByRole('heading', { name: 'Key points' }).waitFor();
      const resultUrl = page.url();
      const chart = page.getByRole('figure', {
        name: 'value_mean by observed_at_month and hospital',
      });
      await chart.waitFor();
      await chart.getByText('one line per hospital').waitFor();
      // One line per hospital: two lines drawn, and the legend names both.
      expect(await chart.locator('path.MuiLineChart-line').count()).toBe(2);
      await chart.getByText('north', { exact: true }).waitFor();
      await chart.getByText('synthea', { exact: true }).waitFor();
      // When it was asked, in the viewer's time zone (Paris), with the zone named.
      const asked = await page.getByText(/^Asked /).textContent();
      const job = await (
        await page.request.get(
          `${server.url}/api/v1/queries/${new URL(resultUrl).pathname.split('/').pop()}`,
        )
      ).json();
      const inParis = new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Europe/Paris',
        hour: '2-digit',
        minute: '2-digit',
      }).format(new Date(job.createdAt));
      expect(asked).toMatch(new RegExp(`^Asked .*${inParis} (CET|CEST|GMT\\+[12])`));
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'query-result');

      // The table: months in time order; a sort starts at page 1; page and sort are in the URL.
      await page.getByRole('button', { name: 'Table' }).click();
      await page.getByText(/^1–25 of \d+$/).waitFor();
      const months = await page
        .getByRole('table')
        .locator('tbody tr td:first-child')
        .allTextContents();
      expect(months.length).toBeGreaterThan(1);
      expect([...months].sort()).toEqual(months);
      expect(months[0]).toMatch(/^\d{4}-\d{2}$/);
      const total = Number(
        (await page.getByText(/^\d+–\d+ of \d+$/).textContent())!.split(' of ')[1],
      );
      expect(total).toBeGreaterThan(10);
      await page.goto(`${page.url()}&pageSize=10&page=2`);
      await page.getByText(`11–20 of ${total}`).waitFor();
      await page.getByRole('button', { name: 'value_mean' }).click();
      await page.getByText(`1–10 of ${total}`).waitFor();
      const url = new URL(page.url());
      expect(url.searchParams.get('sort')).toBe('value_mean');
      expect(url.searchParams.get('page')).toBeNull();
      const means = (
        await page.getByRole('table').locator('tbody tr td:nth-child(3)').allTextContents()
      ).map((text) => Number(text.replace(/,/g, '')));
      expect([...means].sort((a, b) => a - b)).toEqual(means);
      // Read for people: no binary noise in the table.
      const cells = await page.getByRole('table').locator('tbody td').allTextContents();
      expect(cells.filter((cell) => /\.\d{4,}/.test(cell))).toEqual([]);
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'query-result-table');

      await page.getByRole('button', { name: 'Export CSV' }).click();
      const link = page.getByRole('link', { name: /\.csv$/ });
      const download = await page.request.get(
        new URL((await link.getAttribute('href'))!, server.url).href,
      );
      expect(download.status()).toBe(200);
      const csv = await download.text();
      expect(csv.split('\n')[0]).toMatch(/^observed_at_month,hospital,/);
      // Months in time order in the export too, as in the table.
      const csvMonths = csv
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',')[0]!);
      expect(csvMonths[0]).toMatch(/^\d{4}-\d{2}/);
      expect([...csvMonths].sort()).toEqual(csvMonths);
      expect(csv.split('\n').length).toBeGreaterThan(total);
      // Full precision, without binary noise: every decimal is its 15-digit value's shortest text.
      const decimals = csv
        .split('\n')
        .slice(1)
        .flatMap((line) => line.split(','))
        .filter((cell) => /^-?\d+\.\d+$/.test(cell));
      expect(decimals.length).toBeGreaterThan(0);
      expect(
        decimals.filter((cell) => String(Number(Number(cell).toPrecision(15))) !== cell),
      ).toEqual([]);

      // The researcher's start page: the datasets, and where their work left off.
      await page.goto(server.url);
      await page.getByRole('heading', { name: 'Catalog', level: 1 }).waitFor();
      const recent = page.getByRole('region', { name: 'Your recent queries' });
      await recent.waitFor();
      expect(await recent.locator('li a').first().getAttribute('href')).toBe(
        new URL(resultUrl).pathname,
      );

      // The saved query opens in the builder, which replaces it in place with a change.
      await page.getByRole('link', { name: 'Queries', exact: true }).click();
      await page.getByRole('tab', { name: 'Saved' }).click();
      await page
        .getByRole('link', {
          name: 'Open in builder: Height of the heavier, by month and hospital',
        })
        .click();
      await page
        .getByRole('heading', { name: 'Saved query: Height of the heavier, by month and hospital' })
        .waitFor();
      await page.getByLabel('Percentile (measure 2)').fill('95');
      await page.getByRole('button', { name: 'Save query' }).click();
      const replace = page.getByRole('dialog');
      expect(await replace.getByLabel(/^Replace/).isChecked()).toBe(true);
      await replace.getByRole('button', { name: 'Save', exact: true }).click();
      await replace.getByText('It has not run').waitFor();
      await replace.getByRole('button', { name: 'Close' }).click();
      const saved = await (await page.request.get(`${server.url}/api/v1/saved-queries`)).json();
      expect(saved.total).toBe(1);
      expect(saved.queries[0].spec.measures[1]).toEqual({
        fn: 'percentile',
        column: 'value',
        p: 0.95,
      });

      // The saved query is listed, renamed, and deleted.
      await page.getByRole('link', { name: 'Queries', exact: true }).click();
      await page.getByRole('tab', { name: 'Saved' }).click();
      await page
        .getByRole('button', { name: 'Rename: Height of the heavier, by month and hospital' })
        .click();
      const rename = page.getByRole('dialog');
      await rename.getByLabel('Name').fill('Height, heavier patients');
      await rename.getByRole('button', { name: 'Rename' }).click();
      await page.getByRole('cell', { name: 'Height, heavier patients', exact: true }).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'saved-queries');
      await page.getByRole('button', { name: 'Delete: Height, heavier patients' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
      await page.getByText('No saved query yet').waitFor();

      // A histogram of one test's values: its bins as bars.
      await page.goto(`${server.url}/queries/new`);
      await page.getByLabel('Tests (codes)').fill('8302-2');
      await page.getByRole('option', { name: /^8302-2/ }).click();
      await choose(page, 'Measure 1', 'Distribution of values (histogram)');
      await page.getByLabel('Bin width (measure 1)').fill('10');
      await page.getByRole('button', { name: 'Run query' }).click();
      await page.getByRole('figure', { name: 'Histogram of value' }).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'histogram');
      await page.context().close();

      // The result in a narrow window: the chart and the table fit, and axe finds nothing.
      const narrow = await signIn('rosa@example.org', 390);
      await narrow.goto(resultUrl);
      await narrow
        .getByRole('figure', { name: 'value_mean by observed_at_month and hospital' })
        .waitFor();
      const overflows = () => overflowsWindow(narrow);
      expect(await overflows()).toBe(false);
      expect(await accessibilityViolations(narrow)).toEqual([]);
      await narrow.getByRole('button', { name: 'Table' }).click();
      await narrow.getByText(/^1–25 of \d+$/).waitFor();
      expect(await overflows()).toBe(false);
      expect(await accessibilityViolations(narrow)).toEqual([]);
      await screenshot(narrow, 'narrow-result');
      await narrow.context().close();
    },
  );

  it('offers aggregate users no pseudonym to group by, and fits 390 pixels', async () => {
    for (const width of [1280, 390]) {
      const page = await signIn('abe@example.org', width);
      await page.goto(`${server.url}/queries/new`);
      await page.getByRole('heading', { name: 'New query' }).waitFor();
      await page.getByRole('button', { name: 'Add a grouping' }).click();
      await page.getByLabel('Group 1', { exact: true }).click();
      const options = await page.getByRole('option').allTextContents();
      expect(options).toContain('hospital');
      expect(options).toContain('month (of delivery)');
      expect(options).not.toContain('patient');
      expect(options).not.toContain('encounter');
      await page.keyboard.press('Escape');
      await page.getByLabel('Measure 1', { exact: true }).click();
      const measures = await page.getByRole('option').allTextContents();
      expect(measures).not.toContain('Minimum');
      await page.keyboard.press('Escape');
      expect(await accessibilityViolations(page)).toEqual([]);
      if (width === 390) await screenshot(page, 'narrow-builder');
      expect(await overflowsWindow(page)).toBe(false);
      // An administrator's page says which role it needs, and shows none of its forms.
      await page.goto(`${server.url}/admin/users`);
      await page.getByRole('heading', { level: 1, name: 'Not for your role' }).waitFor();
      expect(await page.getByLabel('E-mail').count()).toBe(0);
      expect(await accessibilityViolations(page)).toEqual([]);
      await page.context().close();
    }
  });
});
