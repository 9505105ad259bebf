// emotiond's web page end to end: `build/emotiond serve` on a free port and
// Debian's headless Chromium driven by playwright-core. Run by
// tests/browser/run.sh (make test-browser); screenshots go to build/browser/.
//
// The face: a FER2013 test image from .cache/fer2013/test/happy/ when the
// dataset is unpacked, otherwise tests/browser/face48.png (drawn by
// fixtures.mjs, as is every other image here); FACE_IMAGE=FILE picks another.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { sampleFace, twoFacePhoto } from './fixtures.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BUILD = path.resolve(ROOT, process.env.BUILD || 'build');
const OUT = path.join(BUILD, 'browser');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = `browser-${randomBytes(12).toString('hex')}`;
const CLASSES = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'];
// The tests' tiny architecture (tests/common_svc.c): a training job of a few seconds.
const TINY_ARCH = JSON.stringify({
  name: 'tiny',
  input: { size: 48, channels: 1, scale: 0.00392156862745098, mean: 0.5, std: 0.25 },
  layers: [
    { type: 'conv', filters: 4, kernel: 3, padding: 'same' },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'maxpool' },
    { type: 'maxpool' },
    { type: 'flatten' },
    { type: 'dense', units: 7 },
  ],
});

let tmp, server, serverExit, base, browser, context, page;
const problems = []; // CSP violations and script errors seen by the page

function pickFace() {
  if (process.env.FACE_IMAGE) return path.resolve(ROOT, process.env.FACE_IMAGE);
  const dir = path.join(ROOT, '.cache/fer2013/test/happy');
  if (existsSync(dir)) {
    const f = readdirSync(dir).filter((n) => /\.(png|jpe?g)$/i.test(n)).sort()[0];
    if (f) return path.join(dir, f);
  }
  return path.join(HERE, 'face48.png');
}

function makeDataset(root) {
  for (const [split, n] of [['train', 6], ['test', 2]]) {
    CLASSES.forEach((c, k) => {
      const dir = path.join(root, split, c);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < n; i++) writeFileSync(path.join(dir, `${i}.png`), sampleFace(k, split === 'test' ? 100 + i : i));
    });
  }
}

// Starts the server and resolves with its port, read from "ready on port N".
function startServer() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EMOTIOND_')));
  env.EMOTIOND_ADMIN_TOKEN = TOKEN; // not on the command line
  const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--model', 'models/default.emod',
    '--model-dir', path.join(tmp, 'models'), '--data-dir', path.join(tmp, 'data'),
    '--workers', '1', '--train-threads', '1'];
  server = spawn(path.join(BUILD, 'emotiond'), args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  serverExit = new Promise((resolve) => server.on('exit', (code, sig) => resolve({ code, sig })));
  const log = createWriteStream(path.join(OUT, 'server.log'));
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no "ready on port" within 60 s:\n${seen}`)), 60000);
    server.stderr.on('data', (d) => {
      log.write(d);
      if (seen === null) return;
      seen += d.toString();
      const m = seen.match(/ready on port (\d+)/);
      if (m) {
        clearTimeout(timer);
        seen = null;
        resolve(Number(m[1]));
      }
    });
    server.on('exit', (code) => {
      clearTimeout(timer);
      if (seen !== null) reject(new Error(`emotiond exited (${code}) before it was ready:\n${seen}`));
    });
  });
}

// The server's own answer, to compare the page with.
async function serverPredict(bytes, query = '') {
  const r = await fetch(`${base}/predict${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  return { status: r.status, json: await r.json() };
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  tmp = mkdtempSync(path.join(tmpdir(), 'emotiond-browser-'));
  makeDataset(path.join(tmp, 'data'));
  const port = await startServer();
  base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['camera'], { origin: base });
  page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await Promise.race([serverExit, new Promise((r) => setTimeout(r, 15000))]);
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the page loads from the server with its security headers', async () => {
  const resp = await page.goto(`${base}/`);
  assert.equal(resp.status(), 200);
  const h = resp.headers();
  assert.match(h['content-type'], /^text\/html/);
  assert.equal(h['x-content-type-options'], 'nosniff');
  const csp = h['content-security-policy'];
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.locator('h1', { hasText: 'emotiond' }).waitFor();
  // the script ran (it draws the empty chart) and the style sheet applies
  assert.ok(await page.locator('#chart text').count() > 0, 'app.js did not run');
  assert.equal(await page.locator('#drop').evaluate((e) => getComputedStyle(e).borderTopStyle), 'dashed');
});

test('a face: seven bars appear and the top class is named', async () => {
  const face = pickFace();
  console.log(`# face image: ${path.relative(ROOT, face)}`);
  const expect = await serverPredict(readFileSync(face));
  assert.equal(expect.status, 200);
  await page.setInputFiles('#file', face);
  await page.locator('#bars li').nth(6).waitFor();
  assert.equal(await page.locator('#bars li').count(), 7);
  const names = await page.locator('#bars li .name').allTextContents();
  assert.deepEqual(names, CLASSES);
  const top = await page.locator('#top .name').textContent();
  assert.equal(top, expect.json.emotion, 'the page names the server\'s top class');
  assert.equal(await page.locator('#bars li.best .name').textContent(), top);
  const best = await page.locator('#bars li.best .fill').boundingBox();
  const track = await page.locator('#bars li.best .track').boundingBox();
  const want = expect.json.confidence * track.width;
  assert.ok(Math.abs(best.width - want) < 2, `bar ${best.width}px, expected ${want}px`);
  assert.ok(await page.locator('#preview').evaluate((i) => i.complete && i.naturalWidth > 0), 'the image is shown');
  assert.ok(await page.locator('#error').isHidden());
});

test('a bad file shows the server\'s error message', async () => {
  const bad = path.join(tmp, 'not-an-image.png');
  writeFileSync(bad, 'this is text, not a PNG\n');
  const expect = await serverPredict(readFileSync(bad));
  assert.equal(expect.status, 400);
  await page.setInputFiles('#file', bad);
  const err = page.locator('#error');
  await err.waitFor({ state: 'visible' });
  const text = await err.textContent();
  assert.ok(text.includes(expect.json.error.message), `"${text}" lacks "${expect.json.error.message}"`);
  assert.ok(text.includes(expect.json.error.code));
  assert.ok(await page.locator('#result').isHidden());
});

test('the webcam: a frame is captured, posted as PNG and answered', async () => {
  await page.click('#cam-start');
  await page.waitForFunction(() => document.getElementById('video').videoWidth > 0);
  const posted = page.waitForRequest((r) => r.url().includes('/predict') && r.method() === 'POST');
  await page.click('#cam-capture');
  const req = await posted;
  assert.equal(req.headers()['content-type'], 'image/png');
  await page.locator('#status', { hasText: 'Classified the webcam frame' }).waitFor();
  const meta = await page.locator('#meta').textContent();
  const v = await page.locator('#video').evaluate((e) => `${e.videoWidth}×${e.videoHeight}`);
  assert.ok(meta.includes(`image ${v}`), meta);
  // live: a frame a second, answered over the video
  await page.check('#cam-live');
  await page.locator('#status', { hasText: 'Live: classifying a frame every second' }).waitFor();
  assert.ok(await page.locator('#img-stage').isHidden(), 'the video replaces the still image');
  await page.uncheck('#cam-live');
  await page.click('#cam-stop');
  assert.ok(await page.locator('#cam-stage').isHidden());
  assert.ok(await page.locator('#cam-start').isEnabled());
});

test('a dropped photo: a labelled box over each face', async () => {
  const bytes = twoFacePhoto();
  const expect = await serverPredict(bytes);
  assert.equal(expect.json.faces.length, 2, 'the detector finds both drawn faces');
  const dt = await page.evaluateHandle((b64) => {
    const bin = atob(b64);
    const u8 = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([u8], 'two-faces.png', { type: 'image/png' }));
    return d;
  }, bytes.toString('base64'));
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
  await page.locator('#img-boxes rect.box').nth(1).waitFor();
  assert.equal(await page.locator('#img-boxes rect.box').count(), 2);
  const labels = await page.locator('#img-boxes text').allTextContents();
  assert.match(labels[0], new RegExp(`^1 ${expect.json.faces[0].emotion} \\d+%$`));
  assert.match(labels[1], new RegExp(`^2 ${expect.json.faces[1].emotion} \\d+%$`));
  // the first box sits where the server says, over the shown image
  const img = await page.locator('#preview').boundingBox();
  const box = await page.locator('#img-boxes rect.box').first().boundingBox();
  const f = expect.json.faces[0].box;
  const scale = img.width / expect.json.image.width;
  assert.ok(Math.abs(box.x - (img.x + f.x * scale)) < 4, `box x ${box.x}`);
  assert.ok(Math.abs(box.width - f.w * scale) < 6, `box w ${box.width}`);
  // choose the second face with the keyboard
  await page.locator('#face-buttons button').nth(1).focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#face-buttons button').nth(1).getAttribute('aria-pressed'), 'true');
  assert.match(await page.locator('#top').textContent(), /^Face 2: /);
  assert.equal(await page.locator('#top .name').textContent(), expect.json.faces[1].emotion);
  await page.locator('#face-buttons button').first().click();
});

test('keyboard: the controls are reached with Tab and show focus', async () => {
  await page.locator('body').click({ position: { x: 2, y: 2 } });
  await page.evaluate(() => window.scrollTo(0, 0));
  const seen = [];
  for (let i = 0; i < 40 && !seen.includes('token'); i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => document.activeElement.id || document.activeElement.tagName));
  }
  for (const id of ['file', 'faces', 'cam-start', 'token']) assert.ok(seen.includes(id), `${id} not reached: ${seen}`);
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, 'solid', 'the focused control shows an outline');
});

test('admin: a wrong token shows the server\'s refusal', async () => {
  const r = await fetch(`${base}/models`, { headers: { Authorization: 'Bearer wrong-token' } });
  const expect = (await r.json()).error.message;
  await page.fill('#token', 'wrong-token');
  await page.press('#token', 'Enter');
  const err = page.locator('#admin-error');
  await err.waitFor({ state: 'visible' });
  assert.ok((await err.textContent()).includes(expect));
  assert.ok(await page.locator('#admin-panel').isHidden());
});

test('admin: the token lists the models and stays in memory only', async () => {
  await page.fill('#token', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.locator('#models tbody th', { hasText: 'v0001' }).waitFor();
  const row = page.locator('#models tbody tr', { has: page.locator('th', { hasText: 'v0001' }) });
  assert.equal(await row.locator('td.active').textContent(), 'active');
  assert.equal(await page.inputValue('#token'), '', 'the field is cleared');
  const stored = await page.evaluate(() => [JSON.stringify(localStorage), JSON.stringify(sessionStorage), document.cookie].join('|'));
  assert.ok(!stored.includes('browser-'), 'the token is not stored');
  assert.equal(stored, '{}|{}|');
  await page.locator('#job', { hasText: 'No training job has run yet' }).waitFor();
});

test('admin: a training job runs and its loss and accuracy are plotted', async () => {
  await page.fill('#t-epochs', '3');
  await page.fill('#t-lr', '0.01');
  await page.fill('#t-arch', TINY_ARCH);
  await page.uncheck('#t-fine');
  await page.check('#t-force');
  await page.click('#t-start');
  await page.locator('#admin-status', { hasText: /Training job j\d+ started/ }).waitFor();
  const job = page.locator('#job');
  await job.filter({ hasText: /: (succeeded|failed|cancelled|rejected|interrupted)/ }).waitFor({ timeout: 180000 });
  const text = await job.textContent();
  assert.match(text, /: succeeded/, text);
  assert.match(text, /activated/, text);
  const loss = await page.locator('#chart polyline.loss').getAttribute('points');
  assert.ok(loss.split(' ').length >= 3, `loss points: ${loss}`);
  assert.equal(await page.locator('#chart polyline.acc').count(), 1);
  assert.equal(await page.locator('#chart circle.val').count(), 3, 'one validation point per epoch');
  // the new version is listed and served
  await page.locator('#models tbody tr', { has: page.locator('th', { hasText: 'v0002' }) })
    .locator('td.active').waitFor();
});

test('admin: an older version is activated again', async () => {
  await page.click('button[aria-label="Activate v0001"]');
  await page.locator('#admin-status', { hasText: 'v0001 is served now (it was v0002)' }).waitFor();
  const row = page.locator('#models tbody tr', { has: page.locator('th', { hasText: 'v0001' }) });
  await row.locator('td.active').waitFor();
  const r = await fetch(`${base}/models`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal((await r.json()).active, 'v0001');
  // a screenshot of the whole page for review, with a photo's result on it
  await page.setInputFiles('#file', { name: 'two-faces.png', mimeType: 'image/png', buffer: twoFacePhoto() });
  await page.locator('#status', { hasText: 'Classified two-faces.png' }).waitFor();
  await page.locator('#img-boxes rect.box').nth(1).waitFor();
  await page.screenshot({ path: path.join(OUT, 'page.png'), fullPage: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, 'top.png') });
});

test('a phone: one column, nothing wider than the screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForFunction(() => window.innerWidth === 390);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  const img = await page.locator('#img-stage').boundingBox();
  const bars = await page.locator('#bars').boundingBox();
  assert.ok(bars.y >= img.y + img.height - 1, 'the bars go below the image on a phone');
  await page.screenshot({ path: path.join(OUT, 'phone.png'), fullPage: true });
});

test('no Content-Security-Policy violation and no script error', () => {
  assert.deepEqual(problems, []);
});
