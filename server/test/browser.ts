import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
/** Where the browser tests leave their screenshots (not committed; docs/images holds copies). */
export const screenshotDirectory = path.join(repositoryRoot, '.test-output/screenshots');

/**
 * Debian's Chromium, headless, as `scripts/services/chromium.sh` installs it. The machines have
 * no internet: the browser is told not to reach for updates, sync or anything in the
 * background.
 */
export async function launchBrowser(): Promise<Browser> {
  const executablePath =
    process.env.MEDLAKE_TEST_CHROMIUM ??
    ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((candidate) => existsSync(candidate));
  if (!executablePath) {
    throw new Error(
      "No Chromium for the browser tests: run `bash scripts/services/chromium.sh path` (as root it installs Debian's chromium), or set MEDLAKE_TEST_CHROMIUM",
    );
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const axeSource = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** The accessibility problems axe-core finds on the page as it is now (WCAG 2.1 A and AA). */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // A dialog fading in would be judged on its half-transparent colours: wait for stillness.
  await page.waitForFunction(() =>
    (
      globalThis as unknown as { document: { getAnimations(): Array<{ playState: string }> } }
    ).document
      .getAnimations()
      .every((animation) => animation.playState !== 'running'),
  );
  // Evaluated through the browser's debugging protocol: the page's content security policy,
  // which refuses inline scripts, stays as it is.
  await page.evaluate(axeSource);
  // A string, evaluated in the page: this file is compiled without the browser's types.
  const violations = await page.evaluate<string[]>(`
    axe
      .run({ runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] })
      .then((result) =>
        result.violations.map(
          (violation) =>
            violation.id + ': ' + violation.help + ' ' +
            JSON.stringify(violation.nodes.map((node) => node.target)),
        ),
      )
  `);
  return violations;
}

/** Whether the page is wider than its window, so that a reader must scroll it sideways. */
export function overflowsWindow(page: Page): Promise<boolean> {
  return page.evaluate<boolean>(
    'document.documentElement.scrollWidth > document.documentElement.clientWidth',
  );
}

/**
 * What is wrong with the page at a phone's width (390 pixels): that it overflows the window, and
 * what axe finds. The window gets back the size it had before.
 */
export async function problemsAtPhoneWidth(page: Page): Promise<string[]> {
  const before = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.setViewportSize({ width: 390, height: before.height });
  const problems = [
    ...((await overflowsWindow(page)) ? ['wider than the window'] : []),
    ...(await accessibilityViolations(page)),
  ];
  await page.setViewportSize(before);
  return problems;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(screenshotDirectory, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDirectory, `${name}.png`), fullPage: true });
}
