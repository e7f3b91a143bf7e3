// AudioWorklet: microphone audio at the context's rate -> 16 kHz mono s16le, posted to
// the main thread as 100 ms Int16Array chunks (their ArrayBuffer is transferred).
// Resampling: a 4th-order Butterworth low-pass at 7 kHz (when downsampling), then
// linear interpolation at the output instants. Works for any input rate.

const TARGET_RATE = 16000;
const CHUNK_SAMPLES = 1600; // 100 ms at 16 kHz

// RBJ cookbook low-pass biquad, transposed direct form II.
function lowpass(cutoff, rate, q) {
  const w0 = 2 * Math.PI * cutoff / rate;
  const cos = Math.cos(w0);
  const alpha = Math.sin(w0) / (2 * q);
  const a0 = 1 + alpha;
  return {
    b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
    a1: -2 * cos / a0, a2: (1 - alpha) / a0, z1: 0, z2: 0,
  };
}

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.pos = 0; // next output instant, in input samples from the current block's start
    this.prev = 0; // last input sample of the previous block (position -1)
    this.mono = new Float32Array(128);
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.fill = 0;
    // Q values of a 4th-order Butterworth as two biquads.
    this.filters = sampleRate > TARGET_RATE
      ? [lowpass(7000, sampleRate, 0.5412), lowpass(7000, sampleRate, 1.3066)]
      : [];
    this.port.onmessage = (event) => {
      if (event.data === 'flush') this.flush();
    };
  }

  flush() {
    if (this.fill > 0) {
      const out = this.chunk.slice(0, this.fill);
      this.port.postMessage(out.buffer, [out.buffer]);
      this.fill = 0;
    }
    this.port.postMessage('flushed');
  }

  emit(value) {
    const s = value < -1 ? -1 : value > 1 ? 1 : value;
    this.chunk[this.fill++] = Math.round(s < 0 ? s * 32768 : s * 32767);
    if (this.fill === CHUNK_SAMPLES) {
      const full = this.chunk;
      this.port.postMessage(full.buffer, [full.buffer]);
      this.chunk = new Int16Array(CHUNK_SAMPLES);
      this.fill = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // nothing connected right now
    const n = channels[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const x = this.mono;
    x.fill(0);
    for (const ch of channels) {
      for (let i = 0; i < n; i++) x[i] += ch[i];
    }
    if (channels.length > 1) {
      const k = 1 / channels.length;
      for (let i = 0; i < n; i++) x[i] *= k;
    }
    for (const f of this.filters) {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const y = f.b0 * v + f.z1;
        f.z1 = f.b1 * v - f.a1 * y + f.z2;
        f.z2 = f.b2 * v - f.a2 * y;
        x[i] = y;
      }
    }
    // Output instants in [-1, n-1): interpolate between x[i] and x[i+1] (x[-1] = prev).
    let pos = this.pos;
    while (pos < n - 1) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i < 0 ? this.prev : x[i];
      this.emit(a + (x[i + 1] - a) * frac);
      pos += this.step;
    }
    this.pos = pos - n;
    this.prev = x[n - 1];
    return true;
  }
}

registerProcessor('pcm16k', Pcm16kProcessor);
