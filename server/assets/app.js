// Ember browser page: live microphone captions over the streaming WebSocket
// (PROTOCOL §3) and file transcription with a waveform and word highlighting (§2).
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'ember.apiKey';

// ---------------------------------------------------------------------------------------
// Shared bits: API key, status lines, tabs

function apiKey() {
  return $('api-key').value.trim();
}

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function initKey() {
  const input = $('api-key');
  try {
    input.value = localStorage.getItem(KEY_STORAGE) || '';
  } catch (_) { /* storage disabled */ }
  input.addEventListener('input', () => {
    try {
      if (input.value.trim()) localStorage.setItem(KEY_STORAGE, input.value.trim());
      else localStorage.removeItem(KEY_STORAGE);
    } catch (_) { /* storage disabled */ }
  });
}

function showTab(tab) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    $(t.dataset.panel).hidden = !on;
  }
  if (tab.id === 'tab-file') drawWaveform();
}

function errorText(value) {
  if (typeof value === 'string') return value;
  if (value && typeof value.message === 'string') return value.message;
  return JSON.stringify(value);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// Live captions

const MAX_PENDING_CHUNKS = 100; // 10 s of audio buffered while the socket connects
let live = null; // the running session, or null

function streamingUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let url = `${scheme}//${location.host}/v1/audio/transcriptions/streaming` +
    '?language=en&timestamp_granularities=word,segment';
  const key = apiKey();
  if (key) url += '&Authorization=' + encodeURIComponent(key);
  return url;
}

function setLiveButtons(running) {
  $('start').disabled = running;
  $('stop').disabled = !running;
}

async function startLive() {
  if (live) return;
  const status = $('status');
  const session = {
    ws: null, stream: null, ctx: null, node: null, pending: [],
    elements: new Map(), stopping: false, ended: false, serverError: false,
    finalSeen: null, onFlushed: null,
  };
  live = session;
  setLiveButtons(true);
  $('captions').replaceChildren();
  try {
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error('the microphone needs a secure page: open it over https or on localhost');
    }
    setStatus(status, 'Asking for the microphone…');
    session.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    // Stop pressed while we waited: release what we got.
    if (session.ended || session.stopping) return stopAudio(session);
    session.ctx = new AudioContext();
    await session.ctx.audioWorklet.addModule('/assets/pcm-worklet.js');
    if (session.ended || session.stopping) return stopAudio(session);
    const source = session.ctx.createMediaStreamSource(session.stream);
    session.node = new AudioWorkletNode(session.ctx, 'pcm16k', { numberOfOutputs: 1 });
    session.node.port.onmessage = (event) => onChunk(session, event.data);
    const mute = session.ctx.createGain();
    mute.gain.value = 0; // keeps the graph pulled without playing the microphone back
    source.connect(session.node).connect(mute).connect(session.ctx.destination);
    await session.ctx.resume();
    if (session.ended || session.stopping) return stopAudio(session);
    openSocket(session);
  } catch (err) {
    failLive(session, 'Could not start: ' + (err && err.message ? err.message : err));
  }
}

function onChunk(session, data) {
  if (data === 'flushed') {
    if (session.onFlushed) session.onFlushed();
    return;
  }
  const ws = session.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(data);
  } else if (!session.ended) {
    session.pending.push(data);
    if (session.pending.length > MAX_PENDING_CHUNKS) session.pending.shift();
  }
}

function openSocket(session) {
  const status = $('status');
  setStatus(status, 'Connecting…');
  const ws = new WebSocket(streamingUrl());
  ws.binaryType = 'arraybuffer';
  session.ws = ws;
  ws.onopen = () => {
    if (session.ended) return;
    setStatus(status, `Listening (${session.ctx.sampleRate} Hz → 16 kHz)`);
    for (const chunk of session.pending) ws.send(chunk);
    session.pending = [];
  };
  ws.onmessage = (event) => {
    if (typeof event.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    if (msg.error !== undefined) {
      setStatus(status, 'Server error: ' + errorText(msg.error), true);
      session.serverError = true;
    } else if (msg.checkpoint_id === 'final') {
      if (session.finalSeen) session.finalSeen();
    } else if (Array.isArray(msg.segments)) {
      applyUpdate(session, msg.segments);
    }
  };
  ws.onerror = () => {
    if (!session.stopping) setStatus(status, 'Connection error', true);
  };
  ws.onclose = (event) => {
    if (session.ended) return;
    if (session.stopping) return; // stopLive reports the end
    let text = `Connection closed (code ${event.code}${event.reason ? ': ' + event.reason : ''})`;
    if (event.code === 1006) text += ' — is the server running, and is the API key right?';
    if (session.serverError) text = status.textContent + ' — ' + text;
    failLive(session, text);
  };
}

// One transcription message: the current window of segments in ascending id order.
function applyUpdate(session, segments) {
  const box = $('captions');
  const follow = box.scrollHeight - box.scrollTop - box.clientHeight < 40; // reader is at the end
  let maxId = -Infinity;
  for (const seg of segments) {
    if (typeof seg.id !== 'number') continue;
    if (seg.id > maxId) maxId = seg.id;
    renderSegment(session, seg);
  }
  for (const [id, el] of session.elements) {
    if (id > maxId) {
      el.remove();
      session.elements.delete(id);
    }
  }
  if (follow) box.scrollTop = box.scrollHeight;
}

function renderSegment(session, seg) {
  let el = session.elements.get(seg.id);
  if (!el) {
    el = document.createElement('span');
    el.className = 'segment';
    el.dataset.id = String(seg.id);
    // Keep ascending id order: insert before the first element with a larger id.
    let before = null;
    for (const [id, other] of session.elements) {
      if (id > seg.id && (!before || id < Number(before.dataset.id))) before = other;
    }
    $('captions').insertBefore(el, before);
    session.elements.set(seg.id, el);
  }
  const parts = [];
  const words = Array.isArray(seg.words) ? seg.words : [];
  if (words.length === 0 && seg.text) {
    const span = document.createElement('span');
    span.className = 'word partial';
    span.textContent = seg.text.trim();
    parts.push(span);
  }
  for (const w of words) {
    if (parts.length) parts.push(' ');
    const span = document.createElement('span');
    span.className = 'word ' + (w.is_final ? 'final' : 'partial');
    span.textContent = String(w.word).trim();
    parts.push(span);
  }
  el.replaceChildren(...parts);
}

function stopAudio(session) {
  if (session.stream) for (const track of session.stream.getTracks()) track.stop();
  if (session.ctx && session.ctx.state !== 'closed') session.ctx.close().catch(() => {});
  session.stream = null;
}

function endLive(session) {
  session.ended = true;
  stopAudio(session);
  const ws = session.ws;
  if (ws && ws.readyState <= WebSocket.OPEN) {
    try { ws.close(1000, 'done'); } catch (_) { /* already closing */ }
  }
  if (live === session) {
    live = null;
    setLiveButtons(false);
  }
}

function failLive(session, text) {
  if (session.ended) return;
  setStatus($('status'), text, true);
  endLive(session);
}

async function stopLive() {
  const session = live;
  if (!session || session.stopping) return;
  session.stopping = true;
  $('stop').disabled = true;
  const status = $('status');
  setStatus(status, 'Finishing…');
  // Send what the worklet still holds (less than 100 ms), then stop the microphone.
  if (session.node) {
    await Promise.race([
      new Promise((resolve) => { session.onFlushed = resolve; session.node.port.postMessage('flush'); }),
      sleep(500),
    ]);
  }
  stopAudio(session);
  const ws = session.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    let gotFinal = false;
    const finalReply = new Promise((resolve) => { session.finalSeen = () => { gotFinal = true; resolve(); }; });
    const closed = new Promise((resolve) => ws.addEventListener('close', resolve, { once: true }));
    ws.send(JSON.stringify({ checkpoint_id: 'final' }));
    await Promise.race([finalReply, closed, sleep(5000)]);
    if (!session.serverError) {
      setStatus(status, gotFinal ? 'Stopped' : 'Stopped (no final reply from the server)', !gotFinal);
    }
  } else {
    setStatus(status, 'Stopped');
  }
  endLive(session);
}

// ---------------------------------------------------------------------------------------
// File transcription

const view = { peaks: null, duration: 0, words: [], spans: [], current: -1, url: null, job: 0 };

async function transcribeFile(blob, name) {
  const job = ++view.job;
  const status = $('file-status');
  const player = $('player');
  view.words = [];
  view.spans = [];
  view.current = -1;
  view.peaks = null;
  view.duration = 0;
  $('transcript').replaceChildren();
  if (view.url) URL.revokeObjectURL(view.url);
  view.url = URL.createObjectURL(blob);
  player.src = view.url;
  drawWaveform();
  setStatus(status, 'Transcribing…');

  const waveform = decodePeaks(blob).then(({ peaks, duration }) => {
    if (job !== view.job) return;
    view.peaks = peaks;
    view.duration = duration;
    drawWaveform();
  }).catch(() => { /* the browser cannot decode this format: no waveform */ });

  const form = new FormData();
  form.append('file', blob, name || blob.name || 'audio');
  form.append('response_format', 'verbose_json');
  form.append('timestamp_granularities[]', 'word');
  const headers = {};
  const key = apiKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  const started = performance.now();
  let result;
  try {
    const resp = await fetch('/v1/audio/transcriptions', { method: 'POST', body: form, headers });
    const text = await resp.text();
    let body = null;
    try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
    if (!resp.ok) {
      const msg = body && body.error ? errorText(body.error) : (text.trim() || resp.statusText);
      throw new Error(`HTTP ${resp.status}: ${msg}`);
    }
    if (!body) throw new Error('the server did not answer JSON');
    result = body;
  } catch (err) {
    if (job === view.job) setStatus(status, err.message || String(err), true);
    return { ok: false, error: err.message || String(err) };
  }
  if (job !== view.job) return { ok: false, error: 'superseded' };
  const words = Array.isArray(result.words) ? result.words : [];
  renderTranscript(words, result.text || '');
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  setStatus(status, `${words.length} words, ${Number(result.duration || 0).toFixed(1)} s of audio, transcribed in ${secs} s`);
  await waveform;
  return { ok: true, words: words.length, text: result.text || '' };
}

function renderTranscript(words, text) {
  const box = $('transcript');
  const parts = [];
  view.words = words.filter((w) => typeof w.start === 'number');
  view.spans = [];
  if (view.words.length === 0 && text) parts.push(text);
  view.words.forEach((w, i) => {
    if (i) parts.push(' ');
    const span = document.createElement('span');
    span.className = 'word';
    span.textContent = String(w.word).trim();
    span.dataset.start = String(w.start);
    span.title = `${w.start.toFixed(2)} s`;
    span.addEventListener('click', () => seek(w.start));
    view.spans.push(span);
    parts.push(span);
  });
  box.replaceChildren(...parts);
}

const MAX_WAVEFORM_BYTES = 200 << 20; // decoding holds the whole file as PCM in memory

async function decodePeaks(blob) {
  if (blob.size > MAX_WAVEFORM_BYTES) throw new Error('too large to draw');
  const data = await blob.arrayBuffer();
  const ctx = new OfflineAudioContext(1, 1, 16000);
  const audio = await ctx.decodeAudioData(data);
  const samples = audio.getChannelData(0);
  const columns = 2000; // resampled to the canvas width when drawn
  const peaks = new Float32Array(columns * 2);
  const per = samples.length / columns;
  for (let c = 0; c < columns; c++) {
    let lo = 0;
    let hi = 0;
    const end = Math.min(samples.length, Math.floor((c + 1) * per));
    for (let i = Math.floor(c * per); i < end; i++) {
      const v = samples[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    peaks[2 * c] = lo;
    peaks[2 * c + 1] = hi;
  }
  return { peaks, duration: audio.duration };
}

function drawWaveform() {
  const canvas = $('waveform');
  const width = Math.round(canvas.clientWidth * devicePixelRatio) || canvas.width;
  const height = Math.round(canvas.clientHeight * devicePixelRatio) || canvas.height;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, width, height);
  const peaks = view.peaks;
  const duration = durationNow();
  if (!peaks) return;
  const columns = peaks.length / 2;
  const playX = duration > 0 ? ($('player').currentTime / duration) * width : 0;
  const mid = height / 2;
  for (let x = 0; x < width; x++) {
    // min/max over the precomputed columns that fall in this pixel column
    const c0 = Math.floor((x / width) * columns);
    const c1 = Math.max(c0 + 1, Math.floor(((x + 1) / width) * columns));
    let lo = 0;
    let hi = 0;
    for (let c = c0; c < c1 && c < columns; c++) {
      lo = Math.min(lo, peaks[2 * c]);
      hi = Math.max(hi, peaks[2 * c + 1]);
    }
    g.fillStyle = x < playX ? '#d9480f' : '#868e96';
    g.fillRect(x, mid - hi * mid, 1, Math.max(1, (hi - lo) * mid));
  }
  if (duration > 0) {
    g.fillStyle = '#e03131';
    g.fillRect(Math.min(width - 2, Math.floor(playX)), 0, 2, height);
  }
}

function durationNow() {
  const d = $('player').duration;
  return Number.isFinite(d) && d > 0 ? d : view.duration;
}

function seek(seconds) {
  const player = $('player');
  player.currentTime = seconds;
  player.play().catch(() => {});
  updatePlayback();
}

// The word being spoken: the last one that started at or before t (with a little
// slack, as media times read back rounded after a seek).
function wordAt(t) {
  t += 0.01;
  const words = view.words;
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (words[m].start <= t) { found = m; lo = m + 1; } else { hi = m - 1; }
  }
  if (found >= 0 && t > words[found].end + 0.5) return -1; // in a pause
  return found;
}

function updatePlayback() {
  const i = wordAt($('player').currentTime);
  if (i !== view.current) {
    if (view.current >= 0 && view.spans[view.current]) view.spans[view.current].classList.remove('current');
    if (i >= 0 && view.spans[i]) view.spans[i].classList.add('current');
    view.current = i;
  }
  drawWaveform();
}

function animate() {
  updatePlayback();
  if (!$('player').paused) requestAnimationFrame(animate);
}

// ---------------------------------------------------------------------------------------

function init() {
  initKey();
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener('click', () => showTab(tab));
  }
  $('start').addEventListener('click', startLive);
  $('stop').addEventListener('click', stopLive);
  $('file').addEventListener('change', (event) => {
    const file = event.target.files && event.target.files[0];
    if (file) transcribeFile(file, file.name);
  });
  const player = $('player');
  player.addEventListener('play', () => requestAnimationFrame(animate));
  player.addEventListener('seeked', updatePlayback);
  player.addEventListener('timeupdate', updatePlayback); // rAF pauses in background tabs
  player.addEventListener('loadedmetadata', drawWaveform);
  $('waveform').addEventListener('click', (event) => {
    const duration = durationNow();
    if (!duration) return;
    const rect = event.currentTarget.getBoundingClientRect();
    seek(((event.clientX - rect.left) / rect.width) * duration);
  });
  window.addEventListener('resize', drawWaveform);
}

// For scripts and tests: transcribe a Blob as if it had been picked in the file input.
window.emberTranscribeBlob = (blob, name) => transcribeFile(blob, name);

init();
