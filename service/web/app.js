// emotiond's page: classify an image (file, drop, webcam) and run the admin
// API (token, model versions, training with live curves). Plain DOM, no
// framework, nothing from another origin; the Content-Security-Policy allows
// no inline script or style, so everything is built with DOM calls and
// server text only ever goes through textContent.
(function () {
  'use strict';

  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);

  // ---- helpers ---------------------------------------------------------

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clearSvg(svg) {
    // keeps a <title> (the chart's accessible name)
    for (const c of Array.from(svg.childNodes)) if (c.nodeName !== 'title') c.remove();
  }

  const pct = (p) => `${(100 * p).toFixed(1)}%`;

  // The server's error object {"error": {"code", "message"}} as one line.
  function errorText(status, json) {
    const e = json && json.error;
    if (e && e.message) {
      let s = e.message;
      if (e.field) s += ` (field: ${e.field})`;
      return e.code ? `${s} [${e.code}]` : s;
    }
    return `the server answered HTTP ${status}`;
  }

  // fetch that never throws: {ok, status, json, message, headers}.
  async function request(path, init) {
    let resp;
    try {
      resp = await fetch(path, Object.assign({ cache: 'no-store' }, init));
    } catch (e) {
      return { ok: false, status: 0, json: null, message: `cannot reach the server (${e.message})` };
    }
    const text = await resp.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch (e) {
      json = null;
    }
    return {
      ok: resp.ok,
      status: resp.status,
      json,
      headers: resp.headers,
      message: resp.ok ? '' : errorText(resp.status, json),
    };
  }

  function show(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  // ---- classification --------------------------------------------------

  const fileInput = $('file');
  const facesSelect = $('faces');
  const drop = $('drop');
  const statusEl = $('status');
  const errorEl = $('error');
  const resultEl = $('result');
  const imgStage = $('img-stage');
  const preview = $('preview');
  const imgBoxes = $('img-boxes');
  const topEl = $('top');
  const faceList = $('face-list');
  const faceButtons = $('face-buttons');
  const barsEl = $('bars');
  const metaEl = $('meta');

  let previewUrl = null;
  let seq = 0; // only the latest answer is shown
  let shown = null; // {json, boxes: svg, selected}

  function mediaType(blob) {
    // The server recognises PNG and JPEG from the bytes; other types are
    // sent as octet-stream so that its own answer (not a 415) explains.
    return blob.type === 'image/png' || blob.type === 'image/jpeg' ? blob.type : 'application/octet-stream';
  }

  function predict(blob) {
    const q = new URLSearchParams({ faces: facesSelect.value });
    return request(`/predict?${q}`, {
      method: 'POST',
      headers: { 'Content-Type': mediaType(blob) },
      body: blob,
    });
  }

  async function classify(blob, name) {
    const my = ++seq;
    show(errorEl, '');
    statusEl.textContent = `Classifying ${name}…`;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    preview.src = previewUrl;
    const r = await predict(blob);
    if (my !== seq) return;
    if (!r.ok) {
      statusEl.textContent = '';
      resultEl.hidden = true;
      show(errorEl, `The server could not classify ${name}: ${r.message}`);
      return;
    }
    imgStage.hidden = false;
    render(r.json, imgBoxes);
    statusEl.textContent = `Classified ${name}.`;
  }

  // One answer: a face crop ({emotion, probabilities}) or a photo ({faces: [...]}).
  function render(json, boxesSvg) {
    resultEl.hidden = false;
    shown = { json, boxes: boxesSvg, selected: 0 };
    const m = json.model || {};
    const img = json.image || {};
    metaEl.textContent = `Model ${m.id || '?'} (version ${m.version || '?'}), ` +
      `image ${img.width}×${img.height}, ${Number(json.elapsed_ms).toFixed(1)} ms on the server.`;
    if (Array.isArray(json.faces)) {
      renderFaceButtons(json.faces);
      if (json.faces.length === 0) {
        topEl.textContent = 'No face found in this image.';
        barsEl.replaceChildren();
      } else {
        renderScores(json.faces[0], json.faces.length > 1 ? 'Face 1: ' : '');
      }
    } else {
      faceList.hidden = true;
      renderScores(json, '');
    }
    drawBoxes();
  }

  function renderFaceButtons(faces) {
    faceButtons.replaceChildren();
    faceList.hidden = faces.length < 2;
    faces.forEach((f, i) => {
      const b = el('button', { type: 'button', 'aria-pressed': String(i === 0), class: 'secondary' },
        `${i + 1}: ${f.emotion} ${pct(f.confidence)}`);
      b.addEventListener('click', () => selectFace(i));
      faceButtons.append(b);
    });
  }

  function selectFace(i) {
    if (!shown || !shown.json.faces) return;
    shown.selected = i;
    Array.from(faceButtons.children).forEach((b, k) => b.setAttribute('aria-pressed', String(k === i)));
    renderScores(shown.json.faces[i], `Face ${i + 1}: `);
    drawBoxes();
  }

  function renderScores(p, prefix) {
    topEl.replaceChildren(document.createTextNode(prefix),
      el('span', { class: 'name' }, p.emotion), document.createTextNode(` ${pct(p.confidence)}`));
    barsEl.replaceChildren();
    for (const [name, prob] of Object.entries(p.probabilities || {})) {
      const li = el('li', name === p.emotion ? { class: 'best' } : {});
      const fill = el('span', { class: 'fill' });
      fill.style.width = `${Math.max(0, Math.min(1, prob)) * 100}%`; // CSSOM: allowed by the CSP
      const track = el('span', { class: 'track', 'aria-hidden': 'true' });
      track.append(fill);
      li.append(el('span', { class: 'name' }, name), track, el('span', { class: 'pct' }, pct(prob)));
      barsEl.append(li);
    }
  }

  // Face boxes over the image (or the video), in the image's own pixels.
  function drawBoxes() {
    const svgs = [imgBoxes, $('cam-boxes')];
    for (const s of svgs) if (s !== shown.boxes) clearSvg(s);
    const svg = shown.boxes;
    clearSvg(svg);
    const json = shown.json;
    const w = json.image && json.image.width;
    const h = json.image && json.image.height;
    if (!w || !h || !Array.isArray(json.faces)) return;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    const font = Math.max(w, h) / 24;
    json.faces.forEach((f, i) => {
      const b = f.box;
      svg.append(svgEl('rect', {
        class: i === shown.selected ? 'box selected' : 'box',
        x: b.x, y: b.y, width: b.w, height: b.h,
        'stroke-width': 3, 'vector-effect': 'non-scaling-stroke',
      }));
      const label = `${i + 1} ${f.emotion} ${Math.round(100 * f.confidence)}%`;
      const lw = label.length * font * 0.58 + font * 0.5;
      const ly = b.y >= font * 1.3 ? b.y - font * 1.3 : b.y + b.h;
      svg.append(svgEl('rect', { class: 'label-bg', x: b.x, y: ly, width: lw, height: font * 1.3 }));
      svg.append(svgEl('text', { x: b.x + font * 0.25, y: ly + font, 'font-size': font }, label));
    });
  }

  fileInput.addEventListener('change', () => {
    const f = fileInput.files && fileInput.files[0];
    if (f) classify(f, f.name);
  });
  facesSelect.addEventListener('change', () => {
    const f = fileInput.files && fileInput.files[0];
    if (f) classify(f, f.name);
  });

  // Drag and drop: onto the box; a drop elsewhere must not navigate away.
  for (const ev of ['dragover', 'drop']) document.addEventListener(ev, (e) => e.preventDefault());
  drop.addEventListener('dragenter', () => drop.classList.add('over'));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', (e) => {
    if (!drop.contains(e.relatedTarget)) drop.classList.remove('over');
  });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) classify(f, f.name);
    else show(errorEl, 'Drop an image file (PNG or JPEG).');
  });

  // ---- webcam ------------------------------------------------------------

  const video = $('video');
  const camStage = $('cam-stage');
  const camStart = $('cam-start');
  const camCapture = $('cam-capture');
  const camStop = $('cam-stop');
  const camLive = $('cam-live');
  const camBoxes = $('cam-boxes');
  const canvas = document.createElement('canvas');
  let stream = null;
  let liveTimer = null;

  function frame() {
    return new Promise((resolve, reject) => {
      const w = video.videoWidth;
      const h = video.videoHeight;
      if (!w || !h) {
        reject(new Error('the webcam has not sent a picture yet'));
        return;
      }
      canvas.width = w;
      canvas.height = h;
      canvas.getContext('2d').drawImage(video, 0, 0, w, h);
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the frame could not be encoded'))), 'image/png');
    });
  }

  function camButtons() {
    camStart.disabled = !!stream;
    camCapture.disabled = camStop.disabled = camLive.disabled = !stream;
  }

  camStart.addEventListener('click', async () => {
    show(errorEl, '');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show(errorEl, 'This browser gives the page no webcam here (it needs HTTPS or localhost).');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false,
      });
    } catch (e) {
      show(errorEl, `The webcam could not be opened: ${e.message || e.name}`);
      return;
    }
    video.srcObject = stream;
    camStage.hidden = false;
    camButtons();
    try {
      await video.play();
    } catch (e) {
      // autoplay of a muted stream is allowed; play() may still reject if stopped meanwhile
    }
    statusEl.textContent = 'Webcam on.';
  });

  camCapture.addEventListener('click', async () => {
    try {
      classify(await frame(), 'the webcam frame');
    } catch (e) {
      show(errorEl, `No frame: ${e.message}`);
    }
  });

  function stopCam() {
    clearTimeout(liveTimer);
    liveTimer = null;
    camLive.checked = false;
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null;
    video.srcObject = null;
    camStage.hidden = true;
    clearSvg(camBoxes);
    camButtons();
  }

  camStop.addEventListener('click', () => {
    stopCam();
    statusEl.textContent = 'Webcam off.';
    camStart.focus();
  });

  // Live: one frame at a time, the next a second after the previous answer.
  async function liveStep() {
    if (!camLive.checked || !stream) return;
    const my = ++seq;
    try {
      const r = await predict(await frame());
      if (my === seq && camLive.checked) {
        if (r.ok) {
          show(errorEl, '');
          imgStage.hidden = true; // the boxes go over the video instead
          render(r.json, camBoxes);
          statusEl.textContent = 'Live: classifying a frame every second.';
        } else {
          show(errorEl, `The server could not classify the frame: ${r.message}`);
        }
      }
    } catch (e) {
      show(errorEl, `No frame: ${e.message}`);
    }
    if (camLive.checked && stream) liveTimer = setTimeout(liveStep, 1000);
  }

  camLive.addEventListener('change', () => {
    clearTimeout(liveTimer);
    if (camLive.checked) liveStep();
    else clearSvg(camBoxes);
  });

  // ---- admin -------------------------------------------------------------

  let token = null; // in memory only: never written to storage or cookies
  const tokenForm = $('token-form');
  const tokenInput = $('token');
  const forgetBtn = $('forget');
  const adminStatus = $('admin-status');
  const adminError = $('admin-error');
  const panel = $('admin-panel');
  const modelsBody = document.querySelector('#models tbody');
  const trainForm = $('train-form');
  const cancelBtn = $('t-cancel');
  const jobEl = $('job');
  const chart = $('chart');

  function admin(method, path, body) {
    if (!token) return Promise.resolve({ ok: false, status: 0, json: null, message: 'type the admin token first' });
    const init = { method, headers: { Authorization: `Bearer ${token}` } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return request(path, init);
  }

  function adminFailed(what, r) {
    show(adminError, `${what}: ${r.message}`);
    if (r.status === 401 || r.status === 403) {
      panel.hidden = true;
      stopPolling();
    }
  }

  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = tokenInput.value.trim();
    if (!v) return;
    token = v;
    tokenInput.value = ''; // not left in the DOM either
    forgetBtn.disabled = false;
    show(adminError, '');
    adminStatus.textContent = 'Connecting…';
    const ok = await loadModels();
    if (!ok) {
      adminStatus.textContent = '';
      return;
    }
    panel.hidden = false;
    adminStatus.textContent = 'Connected: the token is held in memory.';
    loadLatestJob();
  });

  forgetBtn.addEventListener('click', () => {
    token = null;
    stopPolling();
    panel.hidden = true;
    forgetBtn.disabled = true;
    show(adminError, '');
    adminStatus.textContent = 'Token forgotten.';
    tokenInput.focus();
  });

  function fmtDate(s) {
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? String(s || '') : d.toLocaleString();
  }

  async function loadModels() {
    const r = await admin('GET', '/models');
    if (!r.ok) {
      adminFailed('Listing the models failed', r);
      return false;
    }
    modelsBody.replaceChildren();
    for (const v of r.json.versions || []) {
      const tr = el('tr');
      tr.append(el('th', { scope: 'row' }, v.id));
      tr.append(el('td', {}, fmtDate(v.created)));
      tr.append(el('td', v.reason ? { title: v.reason } : {}, v.state + (v.reason ? ` (${v.reason})` : '')));
      tr.append(el('td', {}, typeof v.val_accuracy === 'number' ? pct(v.val_accuracy) : '–'));
      tr.append(el('td', {}, v.architecture || ''));
      const td = el('td', v.active ? { class: 'active' } : {});
      if (v.active) {
        td.textContent = 'active';
      } else {
        const b = el('button', { type: 'button', class: 'secondary', 'aria-label': `Activate ${v.id}` }, 'Activate');
        b.addEventListener('click', () => activate(v.id));
        td.append(b);
      }
      tr.append(td);
      modelsBody.append(tr);
    }
    if (!modelsBody.children.length) {
      const tr = el('tr');
      tr.append(el('td', { colspan: '6' }, 'The store holds no model version.'));
      modelsBody.append(tr);
    }
    return true;
  }

  async function activate(id) {
    show(adminError, '');
    adminStatus.textContent = `Activating ${id}…`;
    const r = await admin('POST', `/models/${encodeURIComponent(id)}/activate`);
    if (!r.ok) {
      adminStatus.textContent = '';
      adminFailed(`Activating ${id} failed`, r);
      return;
    }
    adminStatus.textContent = `${r.json.active} is served now` +
      (r.json.previous ? ` (it was ${r.json.previous}).` : '.');
    await loadModels();
  }

  $('models-refresh').addEventListener('click', () => {
    show(adminError, '');
    loadModels();
  });

  // -- training

  const job = { id: null, timer: null, live: [] };
  const RUNNING = new Set(['queued', 'running']);

  function stopPolling() {
    clearTimeout(job.timer);
    job.timer = null;
  }

  function watch(j) {
    stopPolling();
    if (j.id !== job.id) job.live = [];
    job.id = j.id;
    showJob(j);
    if (RUNNING.has(j.state)) job.timer = setTimeout(poll, 1000);
  }

  async function poll() {
    const id = job.id;
    const r = await admin('GET', `/train/${encodeURIComponent(id)}`);
    if (id !== job.id || !token) return;
    if (!r.ok) {
      adminFailed(`Following job ${id} failed`, r);
      return;
    }
    showJob(r.json);
    if (RUNNING.has(r.json.state)) job.timer = setTimeout(poll, 1000);
    else loadModels();
  }

  async function loadLatestJob() {
    const r = await admin('GET', '/train');
    if (r.ok) watch(r.json);
    else if (r.status === 404) jobEl.textContent = 'No training job has run yet.';
    else adminFailed('Reading the training jobs failed', r);
  }

  function num(x, digits) {
    return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
  }

  function showJob(j) {
    const p = j.progress || {};
    let s = `Job ${j.id}: ${j.state}`;
    if (RUNNING.has(j.state) && p.epochs) {
      s += ` — epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}, loss ${num(p.loss, 3)}, ` +
        `accuracy ${typeof p.accuracy === 'number' ? pct(p.accuracy) : '–'}, ` +
        `${num(p.images_per_s, 0)} images/s, ETA ${num(p.eta_s, 0)} s`;
    }
    if (j.model) s += ` — model ${j.model}`;
    if (typeof j.val_accuracy === 'number') s += `, validation accuracy ${pct(j.val_accuracy)}`;
    if (typeof j.baseline_accuracy === 'number') s += ` (served model: ${pct(j.baseline_accuracy)})`;
    if (!RUNNING.has(j.state) && j.model) s += j.activated ? ', activated' : ', not activated';
    if (j.reason) s += ` — ${j.reason}`;
    if (j.error) s += ` — error: ${j.error}`;
    jobEl.textContent = s;
    cancelBtn.disabled = !RUNNING.has(j.state);
    if (RUNNING.has(j.state) && p.steps > 0 && Number.isFinite(p.loss)) {
      const x = p.epoch - 1 + p.step / p.steps;
      const last = job.live[job.live.length - 1];
      if (!last || x > last.x) job.live.push({ x, loss: p.loss, acc: p.accuracy });
    }
    drawChart(j);
  }

  trainForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    show(adminError, '');
    const opts = {
      epochs: Number($('t-epochs').value),
      lr: Number($('t-lr').value),
      fine_tune: $('t-fine').checked,
    };
    if ($('t-force').checked) opts.force = true;
    if ($('t-max').value) opts.max_train = Number($('t-max').value);
    const arch = $('t-arch').value.trim();
    if (arch.startsWith('{')) {
      try {
        opts.architecture = JSON.parse(arch);
      } catch (err) {
        show(adminError, `The architecture is not valid JSON: ${err.message}`);
        return;
      }
    } else if (arch) {
      opts.architecture = arch;
    }
    const r = await admin('POST', '/train', opts);
    if (r.status === 202) {
      adminStatus.textContent = `Training job ${r.json.id} started.`;
      job.live = [];
      watch(r.json);
    } else if (r.status === 409 && r.json && r.json.error && r.json.error.job) {
      adminFailed('Not started', r);
      const cur = await admin('GET', `/train/${encodeURIComponent(r.json.error.job)}`);
      if (cur.ok) watch(cur.json);
    } else {
      adminFailed('Training was not started', r);
    }
  });

  cancelBtn.addEventListener('click', async () => {
    if (!job.id) return;
    const r = await admin('DELETE', `/train/${encodeURIComponent(job.id)}`);
    if (r.ok) adminStatus.textContent = `Cancelling ${job.id} at its next step…`;
    else adminFailed(`Cancelling ${job.id} failed`, r);
  });

  // Loss (left axis) and accuracy (right axis, 0-100%) against epochs: the
  // finished epochs from the job's history, plus the points seen while
  // polling within the current epoch.
  function drawChart(j) {
    clearSvg(chart);
    const W = 640, H = 260, L = 52, R = 52, T = 14, B = 34;
    const hist = (j.history || []).map((h) => ({ x: h.epoch, loss: h.loss, acc: h.accuracy, val: h.val_accuracy }));
    const pts = hist.concat(job.id === j.id ? job.live : []).filter((p) => Number.isFinite(p.x));
    pts.sort((a, b) => a.x - b.x);
    const epochs = Math.max(1, (j.progress && j.progress.epochs) || (j.options && j.options.epochs) ||
      hist.reduce((m, h) => Math.max(m, h.x), 1));
    const losses = pts.map((p) => p.loss).filter(Number.isFinite);
    const maxLoss = losses.length ? Math.max(...losses) * 1.1 || 1 : 1;
    const sx = (x) => L + (x / epochs) * (W - L - R);
    const sl = (v) => H - B - (v / maxLoss) * (H - T - B);
    const sa = (v) => H - B - v * (H - T - B);

    for (let k = 0; k <= 4; k++) {
      const y = T + (k * (H - T - B)) / 4;
      chart.append(svgEl('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
      chart.append(svgEl('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, (maxLoss * (1 - k / 4)).toFixed(2)));
      chart.append(svgEl('text', { x: W - R + 6, y: y + 4 }, `${100 - 25 * k}%`));
    }
    chart.append(svgEl('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
    const step = Math.max(1, Math.ceil(epochs / 10));
    for (let e = 0; e <= epochs; e += step) {
      chart.append(svgEl('text', { x: sx(e), y: H - B + 16, 'text-anchor': 'middle' }, String(e)));
    }
    chart.append(svgEl('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, 'epoch'));
    if (!pts.length) {
      chart.append(svgEl('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle' }, 'no epoch yet'));
      return;
    }
    const line = (cls, list, sy) => {
      if (!list.length) return;
      const d = list.map((p) => `${sx(p.x).toFixed(1)},${sy(p.v).toFixed(1)}`).join(' ');
      chart.append(svgEl('polyline', { class: `line ${cls}`, points: d }));
    };
    const series = (key) => pts.filter((p) => Number.isFinite(p[key])).map((p) => ({ x: p.x, v: p[key] }));
    line('loss', series('loss'), sl);
    line('acc', series('acc'), sa);
    const val = series('val');
    line('val', val, sa);
    for (const p of val) chart.append(svgEl('circle', { class: 'val', cx: sx(p.x), cy: sa(p.v), r: 3.5 }));
  }

  drawChart({ id: null });
})();
