/**
 * Claim 5 (patent 0069) in a real browser: Debian's Chromium, driven by playwright-core,
 * uses the outer in portal mode on `intranet.example.localhost` (Chromium treats *.localhost
 * as a secure context, where Clear-Site-Data applies). User A logs in and loads a page the
 * browser may cache for an hour, plus a cookie and localStorage of the site's own. Control:
 * going back to that page is answered from the browser's cache (the outer sees nothing).
 * Then A logs out (or B simply logs in over A's session) and B opens the same page: the
 * browser asks the outer again, shows B's page, and A's cookies and storage are gone.
 * Skipped, saying why, only when /usr/bin/chromium is missing (`.ci/run` installs it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PASSWORDS, startChain, startOrigin, type Chain, type Origin } from '../helpers/e2e.ts';

const CHROMIUM = '/usr/bin/chromium';
const SITE = 'intranet.example';
let origin: Origin;
let chain: Chain;
let base = '';

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  origin = await startOrigin((req, res) => {
    const user = String(req.headers['x-forwarded-user']);
    if (req.url === '/docs/plain') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end('<p id="who">plain</p>');
    if (req.url === '/docs/page' || req.url === '/docs/other') {
      // Cacheable by the browser for an hour; the page stores a cookie and localStorage of its own.
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'private, max-age=3600' });
      res.end(`<!doctype html><title>${req.url}</title><p id="who">page ${req.url} for ${user}</p><script>document.cookie = 'site_pref=${user}; path=/; max-age=86400'; localStorage.setItem('who', '${user}');</script>`);
      return;
    }
    res.writeHead(404).end();
  });
  chain = await startChain({
    originUrl: origin.url,
    host: SITE,
    grants: [
      ['alice', '/**'],
      ['bob', '/**'],
    ],
    outerArgs: ['--portal', '--portal-suffix', '.localhost'],
  });
  base = `http://${SITE}.localhost:${chain.outer.port}`;
});

after(async () => {
  await chain?.stop();
  await origin?.close();
});

/** A fresh profile (its own disk cache and cookie jar) in headless Chromium. */
async function browser(): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'sws-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--host-resolver-rules=MAP *.localhost 127.0.0.1'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Requests for `path` that reached the outer (its access log; a cache hit there counts too). */
const atOuter = (path: string) => chain.outer.logs.filter((l) => l.msg === 'request' && l.path === path).length;

async function logIn(page: Page, user: 'alice' | 'bob', landing = '/docs/page'): Promise<void> {
  await page.fill('#user', user);
  await page.fill('#password', PASSWORDS[user]);
  await Promise.all([page.waitForURL(`${base}${landing}`), page.click('#login')]);
}

/** Waits until the outer has logged `n` requests for `path` (its log is written asynchronously). */
async function outerSaw(path: string, n: number): Promise<void> {
  const end = Date.now() + 5000;
  while (atOuter(path) < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

let barriers = 0;

/**
 * Waits until everything the browser sent so far is in the outer's log. Access lines are
 * written in order (in batches, up to 50 ms late): once a fresh marker request shows up, every
 * earlier request does too, so "the outer saw nothing" below is a real observation.
 */
async function outerSettled(page: Page): Promise<void> {
  const marker = `/docs/marker-${++barriers}`;
  await page.evaluate((u) => fetch(u, { cache: 'no-store' }).then((r) => r.status), marker);
  await outerSaw(marker, 1);
  assert.equal(atOuter(marker), 1, 'the marker request reached the outer');
}

test('claim 5, portal: after logout and a login as B, the browser asks again and A\'s page, cookies and storage are gone; without the erasure the page came from the browser cache', async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('chromium is not installed (.ci/run installs it with apt-get install chromium)');
  const b = await browser();
  try {
    const { page, context } = b;
    await page.goto(`${base}/docs/page`);
    assert.match(page.url(), /\/\.sws\/login\?next=%2Fdocs%2Fpage$/);
    await logIn(page, 'alice');
    assert.equal(await page.textContent('#who'), 'page /docs/page for alice');
    await outerSaw('/docs/page', 1);
    const asked = atOuter('/docs/page');
    assert.equal(asked, 1);
    assert.ok((await context.cookies()).some((c) => c.name === 'site_pref' && c.value === 'alice'));

    // Control: away and back, no erasure: the browser answers from its own cache.
    await page.goto(`${base}/docs/other`);
    await outerSaw('/docs/other', 1);
    await page.goto(`${base}/docs/page`);
    assert.equal(await page.textContent('#who'), 'page /docs/page for alice');
    await outerSettled(page);
    assert.equal(atOuter('/docs/page'), asked, 'control: served from the browser cache, the outer saw nothing');

    // Logout: Clear-Site-Data "cache", "cookies", "storage".
    await page.goto(`${base}/.sws/logout`);
    await Promise.all([page.waitForURL(`${base}/.sws/logout`), page.click('#logout')]);
    await page.waitForSelector('text=You are logged out');
    assert.deepEqual(await context.cookies(), [], 'the cookie jar is empty');
    assert.equal(await page.evaluate(() => localStorage.getItem('who')), null, "A's storage is gone");

    await page.goto(`${base}/docs/page`);
    assert.match(page.url(), /\/\.sws\/login/, 'no session any more: the browser went to the login page');
    await logIn(page, 'bob');
    assert.equal(await page.textContent('#who'), 'page /docs/page for bob', "B sees B's page, not A's cached one");
    await outerSaw('/docs/page', asked + 1);
    assert.equal(atOuter('/docs/page'), asked + 1, 'the browser asked the outer again');
    const names = (await context.cookies()).map((c) => c.name).sort();
    assert.deepEqual(names, ['site_pref', 'sws_last', 'sws_session']);
    assert.equal((await context.cookies()).find((c) => c.name === 'site_pref')!.value, 'bob');
  } finally {
    await b.close();
  }
});

test('claim 5, portal: B logging in over A\'s session (no logout) erases A\'s data before B\'s session starts', async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('chromium is not installed (.ci/run installs it with apt-get install chromium)');
  const b = await browser();
  try {
    const { page, context } = b;
    const path = '/docs/page';
    const before = atOuter(path);
    await page.goto(`${base}${path}`);
    await logIn(page, 'alice');
    await outerSaw(path, before + 1);
    const asked = atOuter(path);
    assert.equal(asked, before + 1);
    await page.goto(`${base}/docs/other`);
    await page.goto(`${base}${path}`);
    await outerSettled(page);
    assert.equal(atOuter(path), asked, 'control: cached in the browser');
    assert.equal(await page.evaluate(() => localStorage.getItem('who')), 'alice');

    // B logs in over A's session and lands on a page that sets nothing: A's data must already be gone.
    await page.goto(`${base}/.sws/login?next=%2Fdocs%2Fplain`);
    await logIn(page, 'bob', '/docs/plain');
    assert.deepEqual((await context.cookies()).map((c) => c.name).sort(), ['sws_last', 'sws_session'], "A's site cookie is gone; only B's session remains");
    assert.equal(await page.evaluate(() => localStorage.getItem('who')), null, "A's localStorage is gone");
    await page.goto(`${base}${path}`);
    assert.equal(await page.textContent('#who'), 'page /docs/page for bob');
    await outerSaw(path, asked + 1);
    assert.equal(atOuter(path), asked + 1, 'the browser asked again instead of showing A\'s cached page');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'sws_session')!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
  } finally {
    await b.close();
  }
});
