// Test images made from nothing: a grayscale PNG encoder (node's zlib) and a
// drawn face, so that the browser test needs no dataset and no image that
// belongs to anyone.
//
//   node tests/browser/fixtures.mjs   rewrites tests/browser/face48.png
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

// 8-bit grayscale PNG of w x h bytes.
export function grayPng(w, h, px) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = px[y * w + x];
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// A small deterministic pseudo-random generator (noise, varied samples).
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

// A face drawn in a w x h grayscale image: the face's box is (fx, fy, fs, fs).
// smile > 0 curves the mouth up, < 0 down.
export function drawFace(w, h, { fx = 0, fy = 0, fs = Math.min(w, h), smile = 1, seed = 1, bg = 120 } = {}) {
  const px = new Float32Array(w * h);
  const rand = rng(seed);
  const ell = (x, y, cx, cy, rx, ry) => ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // face coordinates in 0..1
      const u = (x + 0.5 - fx) / fs;
      const v = (y + 0.5 - fy) / fs;
      let g = bg + 20 * (y / h - 0.5);
      const face = ell(u, v, 0.5, 0.54, 0.34, 0.44);
      if (face < 1) g = 200 - 45 * face ** 2; // skin, shaded toward the edge
      if (face < 1.15 && v < 0.3 && ell(u, v, 0.5, 0.3, 0.37, 0.24) < 1) g = 45; // hair
      if (face < 1) {
        // eye sockets, eyes, brows
        for (const ex of [0.35, 0.65]) {
          const s = ell(u, v, ex, 0.45, 0.11, 0.07);
          if (s < 1) g = Math.min(g, 150 + 40 * s);
          if (ell(u, v, ex, 0.45, 0.055, 0.028) < 1) g = 35;
          if (Math.abs(v - (0.36 - 0.02 * Math.cos((u - ex) * 12))) < 0.022 && Math.abs(u - ex) < 0.09) g = 50;
        }
        // nose: shaded sides, nostrils
        if (v > 0.46 && v < 0.64 && Math.abs(Math.abs(u - 0.5) - 0.05) < 0.012) g -= 25;
        for (const nx of [0.46, 0.54]) if (ell(u, v, nx, 0.64, 0.025, 0.014) < 1) g = 70;
        // mouth: a curve whose corners go up for a smile
        const d = (u - 0.5) / 0.15;
        if (Math.abs(d) < 1) {
          const my = 0.77 - smile * 0.06 * (d * d - 0.5);
          if (Math.abs(v - my) < 0.022 + 0.015 * (1 - d * d) * Math.max(0, smile)) g = 55;
        }
      }
      px[y * w + x] = g + (rand() - 0.5) * 10;
    }
  }
  // a light 3x3 blur, as a camera would
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0, n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx >= 0 && yy >= 0 && xx < w && yy < h) {
            s += px[yy * w + xx];
            n++;
          }
        }
      }
      out[y * w + x] = Math.max(0, Math.min(255, Math.round(s / n)));
    }
  }
  return out;
}

// A 480x270 "photo" with two faces: a larger smiling one on the left, a
// smaller frowning one on the right (the detector finds both).
export function twoFacePhoto() {
  const w = 480, h = 270;
  const left = drawFace(w, h, { fx: 40, fy: 50, fs: 150, seed: 5 });
  const right = drawFace(w, h, { fx: 300, fy: 90, fs: 110, smile: -1, seed: 7 });
  for (let y = 0; y < h; y++) for (let x = 260; x < w; x++) left[y * w + x] = right[y * w + x];
  return grayPng(w, h, left);
}

// A 48x48 face crop, varied by class k (mouth) and i (noise), for a
// throwaway training set.
export function sampleFace(k, i) {
  return grayPng(48, 48, drawFace(48, 48, { fx: 2, fy: 0, fs: 44, smile: (k - 3) / 2, seed: 1000 * k + i + 1 }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = new URL('./face48.png', import.meta.url);
  writeFileSync(out, grayPng(48, 48, drawFace(48, 48, { fx: 2, fy: 0, fs: 44 })));
  console.log(`wrote ${fileURLToPath(out)}`);
}
