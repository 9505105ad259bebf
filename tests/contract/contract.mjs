// tests/contract/contract.mjs - the API contract test (make test-contract).
//
// Starts emotiond and Prism (@stoplight/prism-cli, pinned in package.json) in
// proxy mode in front of it, sends requests of every kind through Prism, and
// fails on any violation Prism reports (the `sl-violations` response header,
// and its log): every response the service sends is checked against
// openapi.yaml, errors included (400, 401, 403, 404, 405, 409, 413, 415, 422,
// 501, 503).
//
// Two kinds of request cannot go through Prism, and are sent straight to
// emotiond instead, their responses validated here against the same
// openapi.yaml with Ajv (JSON Schema 2020-12, which OpenAPI 3.1 uses):
//  - binary bodies (raw image/png, multipart/form-data): Prism reads every
//    non-JSON body as UTF-8 text and forwards it mangled (stoplightio/prism
//    #2475, #1321); base64 JSON bodies carry the same images through Prism;
//  - requests the spec cannot describe (an unknown path, a method a path does
//    not have): Prism does not validate a response it cannot route, so they
//    are checked here against components.responses NotFound and
//    MethodNotAllowed.
// Every response, through Prism or not, is also validated here, and each
// operation of the spec must be exercised at least once.
//
// The server runs three times on the same port behind one Prism: without an
// admin token (403, and 501 with face detection off), with a token but no
// model store (503 not_configured), and with the token, a model store and a
// tiny generated dataset (the whole admin API, a training job included).
//
// Usage: node tests/contract/contract.mjs   (BUILD=build by default;
// CONTRACT_VERBOSE=1 prints every response)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { grayPng } from '../browser/fixtures.mjs';

const require = createRequire(import.meta.url);
const yaml = require('js-yaml');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.chdir(ROOT);
const BIN = path.resolve(process.env.BUILD || 'build', 'emotiond');
const PRISM = path.resolve('tests/contract/node_modules/.bin/prism');
const VERBOSE = !!process.env.CONTRACT_VERBOSE;
const TOKEN = 'contract-test-token-5d2c81';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const MAX_BODY = 2 * 1024 * 1024;
const MAX_WIDTH = 2000;
const TINY_ARCH = {
  name: 'tiny',
  input: { size: 48, channels: 1, scale: 1 / 255, mean: 0.5, std: 0.25 },
  layers: [
    { type: 'conv', filters: 4, kernel: 3, padding: 'same' },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'maxpool' },
    { type: 'maxpool' },
    { type: 'flatten' },
    { type: 'dense', units: 7 },
  ],
};
const CLASSES = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'];

// ---- the spec, and validation against it -----------------------------------

const SPEC = process.env.CONTRACT_SPEC || 'openapi.yaml'; // another file: to test this test
const spec = yaml.safeLoad(fs.readFileSync(SPEC, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema(spec, 'openapi');
const compiled = new Map();

const ptrEscape = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const ptrJoin = (...segs) => segs.map((s) => '/' + ptrEscape(String(s))).join('');
function ptrGet(ptr) {
  let node = spec;
  for (const seg of ptr.split('/').slice(1)) {
    node = node?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}
// Follows $refs; returns the node and its JSON pointer.
function deref(ptr) {
  let node = ptrGet(ptr);
  while (node && node.$ref) {
    ptr = node.$ref.slice(1);
    node = ptrGet(ptr);
  }
  return { node, ptr };
}
function validator(ptr) {
  if (!compiled.has(ptr)) {
    const frag = ptr.split('/').map(encodeURIComponent).join('/');
    compiled.set(ptr, ajv.compile({ $ref: `openapi#${frag}` }));
  }
  return compiled.get(ptr);
}

function findOperation(method, urlPath) {
  const m = method === 'HEAD' ? 'get' : method.toLowerCase();
  for (const [tpl, item] of Object.entries(spec.paths)) {
    const re = new RegExp('^' + tpl.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$');
    if (re.test(urlPath)) return { tpl, method: m, op: item[m] };
  }
  return null;
}

const exercised = new Map(); // "get /healthz" -> Set of statuses

// Validates one response against openapi.yaml; returns a list of problems.
function validateResponse(method, url, res, text) {
  const errs = [];
  const urlPath = url.split('?')[0];
  const found = findOperation(method, urlPath);
  let resp;
  const status = String(res.status);
  if (found && found.op) {
    const key = `${found.method} ${found.tpl}`;
    if (!exercised.has(key)) exercised.set(key, new Set());
    exercised.get(key).add(status);
    const base = ptrJoin('paths', found.tpl, found.method, 'responses');
    const responses = found.op.responses;
    const code = status in responses ? status : `${status[0]}XX` in responses ? `${status[0]}XX`
      : 'default' in responses ? 'default' : null;
    if (!code) errs.push(`status ${status} is not documented for ${key}`);
    else resp = deref(base + ptrJoin(code));
  } else {
    const generic = { 404: 'NotFound', 405: 'MethodNotAllowed' }[status];
    if (!generic) errs.push(`${method} ${urlPath} is not in the spec and ${status} is no generic error`);
    else resp = deref(ptrJoin('components', 'responses', generic));
  }
  if (!resp) return errs;
  const ctype = (res.headers.get('content-type') || '').split(';')[0].trim().toLowerCase();
  const content = resp.node.content;
  if (!content) {
    if (text.length) errs.push(`a body (${ctype}) where the spec describes none`);
  } else if (method !== 'HEAD') {
    if (!(ctype in content)) {
      errs.push(`Content-Type '${ctype}' is not one of ${Object.keys(content).join(', ')}`);
    } else if (content[ctype].schema) {
      let value = text;
      if (/json$/.test(ctype)) {
        try {
          value = JSON.parse(text);
        } catch (e) {
          errs.push(`the body is not JSON: ${e.message}`);
          return errs;
        }
      }
      const v = validator(resp.ptr + ptrJoin('content', ctype, 'schema'));
      if (!v(value)) {
        for (const e of v.errors) errs.push(`body${e.instancePath} ${e.message} (${e.schemaPath})`);
      }
    }
  }
  for (const [name, h] of Object.entries(resp.node.headers || {})) {
    const hd = h.$ref ? deref(h.$ref.slice(1)).node : h;
    const hv = res.headers.get(name);
    if (hv == null) {
      if (hd.required) errs.push(`header ${name} is missing`);
      continue;
    }
    const type = hd.schema?.type;
    if ((type === 'integer' && !/^-?\d+$/.test(hv)) || (type === 'number' && isNaN(Number(hv)))) {
      errs.push(`header ${name}: '${hv}' is not a${type === 'integer' ? 'n' : ''} ${type}`);
    }
    if (hd.schema?.pattern && !new RegExp(hd.schema.pattern).test(hv)) {
      errs.push(`header ${name}: '${hv}' does not match ${hd.schema.pattern}`);
    }
  }
  return errs;
}

// ---- images ------------------------------------------------------------------

// An 8-bit grayscale PNG; pixel(x, y) gives 0..255 (the writer is the browser
// test's, tests/browser/fixtures.mjs: plain node, no npm package behind it).
function png(w, h, pixel) {
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = pixel(x, y) & 255;
  return grayPng(w, h, px);
}
// A synthetic 48x48 "face" of class k, variant i (as tests/common_admin.c).
function face(k, i) {
  let r = BigInt(k * 7919 + i * 104729 + 12345);
  const px = new Uint8Array(48 * 48);
  for (let p = 0; p < px.length; p++) {
    r = (r * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    px[p] = 40 + Number((r >> 33n) & 31n);
  }
  const y0 = 3 + 6 * k;
  for (let y = y0; y < y0 + 4; y++) for (let x = 4; x < 44; x++) px[y * 48 + x] = 220;
  return png(48, 48, (x, y) => px[y * 48 + x]);
}
const FACE = face(3, 1);
const PHOTO = png(320, 240, (x, y) => (x * 3 + y * 5) & 255); // no face in it
const WIDE = png(MAX_WIDTH + 1, 1, (x) => x);
const b64 = (buf) => buf.toString('base64');
const dlibDir = '../shared/data/photos-dlib';
const DLIB = fs.existsSync(dlibDir)
  ? fs.readdirSync(dlibDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(dlibDir, f))[0]
  : null;

function multipart(fields) {
  const boundary = 'contract' + Math.random().toString(16).slice(2);
  const parts = [];
  for (const [name, v] of Object.entries(fields)) {
    const file = Buffer.isBuffer(v);
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"` +
      (file ? `; filename="${name}.png"\r\nContent-Type: image/png` : '') + '\r\n\r\n'));
    parts.push(file ? v : Buffer.from(v));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { type: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(parts) };
}

// ---- processes -----------------------------------------------------------------

const children = new Set();
function cleanup() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts a process and waits until its output matches ready (a RegExp).
function start(cmd, args, env, ready, logFile, timeoutS) {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'a');
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let seen = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) { done = true; reject(new Error(`${path.basename(cmd)} not ready after ${timeoutS} s; see ${logFile}`)); }
    }, timeoutS * 1000);
    const onData = (d) => {
      fs.writeSync(log, d);
      if (done) return;
      seen += d.toString();
      if (ready.test(seen)) { done = true; clearTimeout(timer); resolve(child); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      children.delete(child);
      fs.closeSync(log);
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`${path.basename(cmd)} exited (${code ?? sig}); see ${logFile}`)); }
    });
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

// ---- requests --------------------------------------------------------------

let prismPort = 0;
let serverPort = 0;
const failures = [];
let count = 0;

// One request. c: { name, method, path, headers, body, status, direct,
// badRequest }. direct: sent straight to emotiond (binary bodies, invalid
// JSON); badRequest: the request breaks the spec on purpose, so Prism's
// request violations are expected (its response is still checked).
async function check(c) {
  const method = c.method || 'GET';
  const port = c.direct ? serverPort : prismPort;
  const url = `http://127.0.0.1:${port}${c.path}`;
  let res;
  let text;
  try {
    res = await fetch(url, {
      method,
      headers: c.headers || {},
      body: c.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(120000),
    });
    text = await res.text();
  } catch (e) {
    failures.push(`${c.name}: ${method} ${c.path}: ${e.message}`);
    console.log(`FAIL ${c.name}: ${e.message}`);
    return null;
  }
  count++;
  const errs = [];
  const want = Array.isArray(c.status) ? c.status : [c.status];
  if (!want.includes(res.status)) errs.push(`status ${res.status}, expected ${want.join(' or ')}: ${text.slice(0, 300)}`);
  if (!c.direct) {
    const raw = res.headers.get('sl-violations');
    let v = [];
    if (raw) {
      try { v = JSON.parse(raw); } catch { errs.push(`prism: ${raw}`); }
    }
    for (const x of v) {
      const where = (x.location || []).join('.');
      const isRequest = (x.location || [])[0] === 'request';
      if (isRequest && c.badRequest) continue;
      errs.push(`prism ${x.severity} at ${where}: ${x.message}`);
    }
  }
  for (const e of validateResponse(method, c.path, res, text)) errs.push(`openapi.yaml: ${e}`);
  // info.description: "Every response carries X-Request-Id", the client's own when valid
  const rid = res.headers.get('x-request-id');
  const sent = Object.entries(c.headers || {}).find(([k]) => k.toLowerCase() === 'x-request-id')?.[1];
  if (!rid || !/^[A-Za-z0-9._:/+=@-]{1,64}$/.test(rid)) errs.push(`X-Request-Id '${rid}' missing or malformed`);
  else if (sent && rid !== sent) errs.push(`X-Request-Id '${rid}' is not the request's '${sent}'`);
  const tag = `${res.status} ${method} ${c.path.length > 60 ? c.path.slice(0, 57) + '...' : c.path}`;
  if (errs.length) {
    failures.push(`${c.name} (${tag}):\n      ${errs.join('\n      ')}`);
    console.log(`FAIL ${c.name} (${tag})\n      ${errs.join('\n      ')}`);
  } else {
    console.log(`ok   ${tag}  ${c.name}${c.direct ? ' [direct]' : ''}`);
  }
  if (VERBOSE) console.log(`     ${text.slice(0, 400)}`);
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { res, text, json };
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const post = (name, p, body, status, extra = {}) => check({
  ...extra, name, method: 'POST', path: p, headers: { ...JSON_TYPE, ...(extra.headers || {}) },
  body: typeof body === 'string' ? body : JSON.stringify(body), status,
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitJob(id, states, timeoutS) {
  const t0 = Date.now();
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${serverPort}/train/${id}`, { headers: AUTH });
    const j = await r.json();
    if (states.includes(j.state)) return j;
    if (Date.now() - t0 > timeoutS * 1000) throw new Error(`job ${id} still ${j.state} after ${timeoutS} s`);
    await sleep(200);
  }
}

// ---- the cases -------------------------------------------------------------

async function publicCases() {
  for (const p of ['/healthz', '/livez', '/readyz', '/model', '/metrics', '/openapi.yaml']) {
    await check({ name: 'GET', path: p, status: 200 });
  }
  for (const p of ['/', '/app.js', '/style.css']) {
    const r = await check({ name: 'the web page', path: p, status: 200 });
    const etag = r?.res.headers.get('etag');
    if (etag) await check({ name: 'the web page, cached copy', path: p, headers: { 'If-None-Match': etag }, status: 304 });
  }
  await check({ name: 'HEAD is GET without a body', method: 'HEAD', path: '/healthz', status: 200, direct: true });
  await check({ name: 'unknown path', path: '/nowhere', status: 404, direct: true });
  await check({ name: 'unknown admin resource', path: '/models/v0001/nothing', headers: AUTH, status: 404, direct: true });
  await check({ name: 'method not allowed', method: 'POST', path: '/healthz', status: 405, direct: true });
  await check({ name: 'method not allowed', method: 'GET', path: '/predict', status: 405, direct: true });
  await check({ name: 'method not allowed', method: 'DELETE', path: '/metrics', status: 405, direct: true });
  await check({
    name: 'CORS preflight', method: 'OPTIONS', path: '/predict', status: 204,
    headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
  });

  // base64 JSON goes through Prism
  await post('base64 face crop', '/predict', { image: b64(FACE) }, 200);
  await post('base64 face crop, top 3', '/predict?top=3', { image: b64(FACE) }, 200);
  await post('data URL', '/predict', { image: `data:image/png;base64,${b64(FACE)}` }, 200);
  await post('URL-safe base64', '/predict', { image: b64(FACE).replace(/\+/g, '-').replace(/\//g, '_') }, 200);
  await post('photo without a face', '/predict', { image: b64(PHOTO) }, 200);
  await post('photo, faces=none', '/predict?faces=none', { image: b64(PHOTO) }, 200);
  await post('face crop, faces=detect', '/predict?faces=detect&max_faces=2', { image: b64(FACE) }, 200,
    { headers: { 'X-Request-Id': 'contract-42' } });
  if (DLIB) {
    const jpg = fs.readFileSync(DLIB);
    const r = await post(`photo with faces (${path.basename(DLIB)})`, '/predict?top=2', { image: b64(jpg) }, 200);
    if (r?.json && !(r.json.faces?.length > 0)) failures.push(`no face found in ${DLIB}`);
    await post('photo with faces, max_faces=1', '/predict?faces=auto&max_faces=1', { image: b64(jpg) }, 200);
    await check({ name: 'raw JPEG photo', method: 'POST', path: '/predict', headers: { 'Content-Type': 'image/jpeg' }, body: jpg, status: 200, direct: true });
  } else {
    console.log(`note: ${dlibDir} not found: no photo with faces (the FacePrediction of an empty photo is still checked)`);
  }
  await post('truncated PNG', '/predict', { image: b64(FACE.subarray(0, 60)) }, 400);
  await post('not an image', '/predict', { image: b64(Buffer.from('hello, world')) }, 400);
  await post('bad base64', '/predict', { image: '@@@ not base64 @@@' }, 400, { badRequest: true });
  await post('no image field', '/predict', { picture: b64(FACE) }, 400, { badRequest: true });
  await post('image not a string', '/predict', { image: 42 }, 400, { badRequest: true });
  await post('top out of range', '/predict?top=0', { image: b64(FACE) }, 400, { badRequest: true });
  await post('faces unknown', '/predict?faces=maybe', { image: b64(FACE) }, 400, { badRequest: true });
  await post('max_faces not a number', '/predict?max_faces=x', { image: b64(FACE) }, 400, { badRequest: true });
  await post('image too wide', '/predict', { image: b64(WIDE) }, 422);
  await post('body over max_body_bytes', '/predict', { image: 'A'.repeat(MAX_BODY + 64 * 1024) }, 413);
  await check({
    name: 'unsupported media type', method: 'POST', path: '/predict', status: 415, badRequest: true,
    headers: { 'Content-Type': 'text/plain' }, body: 'a face',
  });
  await check({
    name: 'invalid JSON', method: 'POST', path: '/predict', status: 400, direct: true,
    headers: { 'Content-Type': 'application/json' }, body: '{"image": ',
  });

  // binary bodies: straight to the server (Prism would mangle them)
  const raw = (name, type, body, status) => check({
    name, method: 'POST', path: '/predict', headers: { 'Content-Type': type }, body, status, direct: true,
  });
  await raw('raw PNG', 'image/png', FACE, 200);
  await raw('raw octet-stream', 'application/octet-stream', FACE, 200);
  await raw('raw photo', 'image/png', PHOTO, 200);
  await raw('empty body', 'image/png', Buffer.alloc(0), 400);
  await raw('corrupt PNG', 'image/png', Buffer.concat([FACE.subarray(0, 40), Buffer.alloc(40)]), 400);
  await raw('raw image too wide', 'image/png', WIDE, 422);
  const mp = multipart({ image: FACE, note: 'hello' });
  await raw('multipart', mp.type, mp.body, 200);
  const mpNo = multipart({ picture: FACE });
  await raw('multipart without image', mpNo.type, mpNo.body, 400);
  await raw('multipart without boundary', 'multipart/form-data', mp.body, 400);
}

// Phase 1: no admin token, no face detector.
async function phaseNoToken() {
  await check({ name: 'admin disabled', path: '/models', headers: AUTH, status: 403 });
  await check({ name: 'admin disabled', path: '/train', headers: AUTH, status: 403 });
  await post('admin disabled', '/train', { epochs: 1 }, 403, { headers: AUTH });
  await check({ name: 'admin disabled', path: '/samples/stats', headers: AUTH, status: 403 });
  await post('admin disabled', '/samples', { image: b64(FACE), label: 'happy' }, 403, { headers: AUTH });
  await check({ name: 'admin disabled', path: '/train/j0001', headers: AUTH, status: 403 });
  await check({ name: 'admin disabled', method: 'DELETE', path: '/train/j0001', headers: AUTH, status: 403 });
  await check({ name: 'admin disabled', method: 'POST', path: '/models/v0001/activate', headers: AUTH, status: 403 });
  // direct: Prism answers a mock of its own when the upstream says 501
  await post('face detection off', '/predict?faces=detect', { image: b64(PHOTO) }, 501, { direct: true });
  await post('face detection off, auto', '/predict', { image: b64(PHOTO) }, 200);
  await check({ name: 'health', path: '/healthz', status: 200 });
}

// Phase 2: a token, no model store, no data directory.
async function phaseNoStore() {
  await check({ name: 'no model store', path: '/models', headers: AUTH, status: 503 });
  await check({ name: 'no model store', path: '/train', headers: AUTH, status: 503 });
  await check({ name: 'no model store', path: '/train/j0001', headers: AUTH, status: 503 });
  await post('no data directory', '/samples', { image: b64(FACE), label: 'happy' }, 503, { headers: AUTH });
  await check({ name: 'no data directory', path: '/samples/stats', headers: AUTH, status: 503 });
  await post('no model store', '/train', { epochs: 1 }, 503, { headers: AUTH });
  await check({ name: 'no model store', method: 'DELETE', path: '/train/j0001', headers: AUTH, status: 503 });
  await check({ name: 'no model store', method: 'POST', path: '/models/v0001/activate', headers: AUTH, status: 503 });
  await check({ name: 'no token', path: '/train/j0001', status: 401, badRequest: true });
  await check({ name: 'no token', method: 'DELETE', path: '/train/j0001', status: 401, badRequest: true });
  await check({ name: 'no token', method: 'POST', path: '/models/v0001/activate', status: 401, badRequest: true });
  await post('no token', '/samples', { image: b64(FACE), label: 'happy' }, 401, { badRequest: true });
  await check({ name: 'no token', path: '/train', status: 401, badRequest: true });
  await check({ name: 'no token', path: '/models', status: 401, badRequest: true });
  await check({ name: 'wrong token', path: '/models', headers: { Authorization: 'Bearer nope' }, status: 401 });
  await check({ name: 'not a Bearer token', path: '/models', headers: { Authorization: 'Basic eDp5' }, status: 401, badRequest: true });
}

// Phase 3: the admin API with a model store and a dataset.
async function phaseAdmin(ctx) {
  const A = { headers: AUTH };
  // feedback samples
  await post('sample, JSON', '/samples', { image: b64(FACE), label: 'happy' }, 201, A);
  await post('sample again: duplicate', '/samples', { image: b64(FACE), label: 'sad' }, 200, A);
  await check({
    name: 'sample, raw PNG with ?label', method: 'POST', path: '/samples?label=sad', status: 201,
    headers: { ...AUTH, 'Content-Type': 'image/png' }, body: face(5, 7), direct: true,
  });
  const mp = multipart({ image: face(2, 9), label: 'fear' });
  await check({
    name: 'sample, multipart', method: 'POST', path: '/samples', status: 201,
    headers: { ...AUTH, 'Content-Type': mp.type }, body: mp.body, direct: true,
  });
  await post('sample, unknown label', '/samples', { image: b64(face(1, 1)), label: 'bored' }, 400, { ...A, badRequest: true });
  await post('sample, no label', '/samples', { image: b64(face(1, 2)) }, 400, { ...A, badRequest: true });
  await post('sample, corrupt image', '/samples', { image: b64(Buffer.from('nope')), label: 'sad' }, 400, A);
  await post('sample, too wide', '/samples', { image: b64(WIDE), label: 'sad' }, 422, A);
  await post('sample, too large', '/samples', { image: 'A'.repeat(MAX_BODY + 64 * 1024), label: 'sad' }, 413, A);
  await check({
    name: 'sample, unsupported media type', method: 'POST', path: '/samples', status: 415, badRequest: true,
    headers: { ...AUTH, 'Content-Type': 'text/plain' }, body: 'happy',
  });
  await check({ name: 'sample stats', path: '/samples/stats', headers: AUTH, status: 200 });
  await check({ name: 'method not allowed', method: 'GET', path: '/samples', headers: AUTH, status: 405, direct: true });
  await check({ name: 'no token', path: '/samples/stats', status: 401, badRequest: true });

  // training jobs
  await check({ name: 'no job yet', path: '/train', headers: AUTH, status: 404 });
  await post('bad option', '/train', { epochs: 0 }, 400, { ...A, badRequest: true });
  await post('unknown option', '/train', { epoch: 3 }, 400, { ...A, badRequest: true });
  await post('unknown architecture', '/train', { architecture: 'nope' }, 400, A);
  await check({
    name: 'invalid JSON', method: 'POST', path: '/train', status: 400, direct: true,
    headers: { ...AUTH, 'Content-Type': 'application/json' }, body: '{"epochs": ',
  });
  await post('resume an unknown job', '/train', { resume: 'j9999' }, [400, 404], A);
  const long = { architecture: TINY_ARCH, epochs: 1000, batch: 7, max_train: 14, include_feedback: false, seed: 3 };
  const started = await post('start a job', '/train', long, 202, A);
  const id = started?.json?.id;
  if (!id) throw new Error('no job id: cannot go on with the admin API');
  if (started.res.headers.get('location') !== `/train/${id}`) failures.push(`Location ${started.res.headers.get('location')} is not /train/${id}`);
  await post('a second job while one runs', '/train', { epochs: 1 }, 409, A);
  await check({ name: 'the latest job', path: '/train', headers: AUTH, status: 200 });
  await check({ name: 'the job', path: `/train/${id}`, headers: AUTH, status: 200 });
  await check({ name: 'cancel', method: 'DELETE', path: `/train/${id}`, headers: AUTH, status: 202 });
  const cancelled = await waitJob(id, ['cancelled', 'failed', 'succeeded', 'rejected'], 120);
  await check({ name: 'the cancelled job', path: `/train/${id}`, headers: AUTH, status: 200 });
  await check({ name: 'cancel a finished job', method: 'DELETE', path: `/train/${id}`, headers: AUTH, status: 409 });
  await check({ name: 'unknown job', path: '/train/j9999', headers: AUTH, status: 404 });
  await check({ name: 'cancel an unknown job', method: 'DELETE', path: '/train/j9999', headers: AUTH, status: 404 });
  await check({ name: 'method not allowed', method: 'PUT', path: `/train/${id}`, headers: AUTH, status: 405, direct: true });
  await check({ name: 'method not allowed', method: 'DELETE', path: '/train', headers: AUTH, status: 405, direct: true });
  const epochs = (cancelled.progress?.epoch || 0) + 1;
  await post('resume the cancelled job', '/train', { resume: id, epochs, force: true }, 202, A);
  const done = await waitJob(id, ['succeeded', 'rejected', 'failed'], 300);
  if (done.state !== 'succeeded') failures.push(`the resumed job ended ${done.state}: ${done.error || done.reason || ''}`);
  await check({ name: 'the finished job', path: `/train/${id}`, headers: AUTH, status: 200 });
  await post('resume a finished job', '/train', { resume: id }, 409, A);

  // model versions
  const list = await check({ name: 'model versions', path: '/models', headers: AUTH, status: 200 });
  const ids = (list?.json?.versions || []).map((v) => v.id);
  if (ids.length < 2) failures.push(`expected two model versions, got ${ids.join(', ')}`);
  const oldest = ids[ids.length - 1] || 'v0001';
  await check({ name: 'activate (rollback)', method: 'POST', path: `/models/${oldest}/activate`, headers: AUTH, status: 200 });
  await check({ name: 'activate an unknown version', method: 'POST', path: '/models/v9999/activate', headers: AUTH, status: 404 });
  const newest = ids[0];
  if (newest && newest !== oldest) {
    fs.writeFileSync(path.join(ctx.modelDir, `${newest}.emod`), 'not a model');
    await check({ name: 'activate a damaged version', method: 'POST', path: `/models/${newest}/activate`, headers: AUTH, status: 422 });
  }
  await check({ name: 'method not allowed', method: 'GET', path: `/models/${oldest}/activate`, headers: AUTH, status: 405, direct: true });
  await check({ name: 'method not allowed', method: 'POST', path: '/models', headers: AUTH, status: 405, direct: true });
  await check({ name: 'wrong token', path: '/models', headers: { Authorization: 'Bearer nope' }, status: 401 });
  await post('wrong token', '/train', { epochs: 1 }, 401, { headers: { Authorization: 'Bearer nope' } });
  await check({ name: 'model served after rollback', path: '/model', status: 200 });
}

// ---- main ----------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} not found: run make first`);
  if (!fs.existsSync(PRISM)) throw new Error(`${PRISM} not found: run npm ci in tests/contract`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'emotiond-contract-'));
  const logs = path.join(tmp, 'logs');
  fs.mkdirSync(logs);
  // a tiny dataset: 2 training and 1 validation image per class
  const data = path.join(tmp, 'data');
  for (const [split, n, off] of [['train', 2, 0], ['test', 1, 500]]) {
    CLASSES.forEach((cls, k) => {
      fs.mkdirSync(path.join(data, split, cls), { recursive: true });
      for (let i = 0; i < n; i++) fs.writeFileSync(path.join(data, split, cls, `${i}.png`), face(k, i + off));
    });
  }
  const noCascade = path.join(tmp, 'no-cascade.json');
  fs.writeFileSync(noCascade, JSON.stringify({ face_cascade: null }));

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EMOTIOND_')));
  serverPort = await freePort();
  prismPort = await freePort();
  const common = ['serve', '--host', '127.0.0.1', '--port', String(serverPort), '--model', 'models/default.emod',
    '--workers', '1', '--max-body-bytes', String(MAX_BODY), '--max-image-width', String(MAX_WIDTH),
    '--cors-origins', 'https://app.example', '--log-requests', 'true'];
  const phases = [
    { name: 'no admin token, no face detector', args: ['--config', noCascade], env: {}, run: phaseNoToken },
    { name: 'admin token, no model store', args: [], env: { EMOTIOND_ADMIN_TOKEN: TOKEN }, run: phaseNoStore },
    {
      name: 'admin token, model store and dataset',
      args: ['--model-dir', path.join(tmp, 'models'), '--data-dir', data, '--train-threads', '1'],
      env: { EMOTIOND_ADMIN_TOKEN: TOKEN },
      run: async () => { await publicCases(); await phaseAdmin({ modelDir: path.join(tmp, 'models') }); },
    },
  ];

  const prismLog = path.join(logs, 'prism.log');
  console.log(`contract: ${BIN} behind Prism ${JSON.parse(fs.readFileSync('tests/contract/node_modules/@stoplight/prism-cli/package.json')).version} (proxy mode, openapi.yaml); logs in ${logs}`);
  let prism = null;
  try {
    for (const [i, ph] of phases.entries()) {
      console.log(`\n== phase ${i + 1}: ${ph.name}`);
      const server = await start(BIN, [...common, ...ph.args], { ...env, ...ph.env }, /ready on port \d+/,
        path.join(logs, `emotiond-${i + 1}.log`), 120);
      if (!prism) {
        prism = await start(PRISM, ['proxy', SPEC, `http://127.0.0.1:${serverPort}`, '--host', '127.0.0.1',
          // --cors false: Prism would answer CORS preflights itself, not forward them
          '--port', String(prismPort), '--errors', 'false', '--cors', 'false'], env, /Prism is listening/, prismLog, 300);
      }
      try {
        await ph.run();
      } finally {
        await stop(server);
      }
    }
  } finally {
    if (prism) await stop(prism);
  }

  // Prism's own log: every violation it saw about a response
  const plog = fs.readFileSync(prismLog, 'utf8');
  const respViolations = plog.split('\n').filter((l) => /Violation: response/.test(l));
  if (respViolations.length) failures.push(`Prism's log shows ${respViolations.length} response violation(s):\n      ${respViolations.join('\n      ')}`);

  // coverage: each operation of the spec was exercised
  console.log('\ncoverage (documented statuses; * = exercised):');
  for (const [tpl, item] of Object.entries(spec.paths)) {
    for (const m of ['get', 'post', 'put', 'delete', 'options', 'head', 'patch']) {
      if (!item[m]) continue;
      const seen = exercised.get(`${m} ${tpl}`) || new Set();
      const codes = Object.keys(item[m].responses).map((s) => (seen.has(s) ? `${s}*` : s)).join(' ');
      console.log(`  ${m.toUpperCase().padEnd(7)} ${tpl.padEnd(24)} ${codes}`);
      if (!seen.size) failures.push(`${m.toUpperCase()} ${tpl} was never exercised`);
    }
  }
  fs.rmSync(path.join(tmp, 'data'), { recursive: true, force: true });
  fs.rmSync(path.join(tmp, 'models'), { recursive: true, force: true });
  console.log(`\ncontract: ${count} responses, ${failures.length} failure(s)`);
  if (failures.length) {
    console.log(failures.map((f) => `  - ${f}`).join('\n'));
    console.log(`logs: ${logs}`);
    process.exit(1);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(`contract: ${e.stack || e}`);
  process.exit(1);
});
