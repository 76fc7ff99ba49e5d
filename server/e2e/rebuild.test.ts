import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/accounts/passwords.ts';
import { credentialsRepository } from '../src/catalog/credentials-repository.ts';
import { addUser } from '../src/use-cases/manage-access.ts';
import { launchBrowser, screenshot } from '../test/browser.ts';
import { testActor } from '../test/helper.ts';
import { startWebServer, type WebServer } from '../test/web-server.ts';

const built = fileURLToPath(new URL('../../web/dist', import.meta.url));
const password = 'amber kettle over seven bridges';

describe('the web app rebuilt under a running server, in a real browser', () => {
  let server: WebServer;
  let browser: Browser;
  let webRoot: string;

  beforeAll(async () => {
    // A build of its own: the one in web/dist is rebuilt by every test run that starts.
    webRoot = await mkdtemp(path.join(tmpdir(), 'medlake-web-'));
    await cp(built, webRoot, { recursive: true });
    server = await startWebServer({}, { webRoot });
    const user = await addUser(server.platform, testActor, {
      email: 'rae@example.org',
      name: 'Rae',
      role: 'researcher',
    });
    await credentialsRepository(server.platform.catalog.db).setPassword(
      user.id,
      await hashPassword(password),
      false,
      new Date(),
    );
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await rm(webRoot, { recursive: true, force: true });
    await rm(`${webRoot}.assets`, { recursive: true, force: true });
  });

  it('says the app was updated when an open page’s code is gone, and works after a reload', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(server.url);
    await page.getByLabel('E-mail').fill('rae@example.org');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Catalog' }).waitFor();

    // A rebuild begins: the old build's files go, as `vite build` empties its folder.
    const assets = path.join(webRoot, 'assets');
    const files = await readdir(assets);
    expect(files.some((file) => file.startsWith('query-history-page-'))).toBe(true);
    await cp(assets, `${webRoot}.assets`, { recursive: true });
    await rm(assets, { recursive: true });
    const during = await page.request.get(`${server.url}/queries`);
    expect(during.status()).toBe(200);

    await page.getByRole('link', { name: 'Queries' }).click();
    await page.getByText('medlake was updated while this page was open').waitFor();
    await screenshot(page, 'app-updated');

    // The new build is in place: a reload serves it.
    await cp(`${webRoot}.assets`, assets, { recursive: true });
    await page.getByRole('button', { name: 'Reload' }).click();
    await page.getByRole('heading', { name: 'Queries', level: 1 }).waitFor();
    await page.context().close();
  });

  it('shows a message, not a blank page, while the build is being written', async () => {
    const index = path.join(webRoot, 'index.html');
    await cp(index, `${index}.kept`);
    await rm(index);
    try {
      const page = await (await browser.newContext()).newPage();
      const response = await page.goto(`${server.url}/queries`);
      expect(response?.status()).toBe(503);
      await page.getByText('The web app is not built, or a build is being written').waitFor();
      await page.context().close();
    } finally {
      await cp(`${index}.kept`, index);
    }
  });
});
