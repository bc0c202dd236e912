// cnnlab explore: drawing maps. Black-to-yellow for values >= 0, blue-white-red around 0 otherwise;
// one colour scale per figure; padding drawn hatched, never in the colour of zero.

function lut(stops) {
  const out = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
    for (let c = 0; c < 3; c++) out[3 * i + c] = stops[k][c] + f * (stops[k + 1][c] - stops[k][c]);
  }
  return out;
}
const SEQUENTIAL = lut([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
  [245, 125, 21], [250, 193, 39], [252, 255, 164]]);
const DIVERGING = lut([[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
  [247, 247, 247], [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]]);
const GRAY = lut([[0, 0, 0], [255, 255, 255]]);
export const MARK = "#12b76a";

// A colour scale for values in [lo, hi]: diverging and symmetric if anything is negative.
export function scaleFor(lo, hi) {
  if (lo < 0) {
    const top = Math.max(-lo, hi) || 1;
    return { lut: DIVERGING, lo: -top, hi: top, index: (v) => Math.round(((v / top + 1) / 2) * 255) };
  }
  const top = hi || 1;
  return { lut: SEQUENTIAL, lo: 0, hi: top, index: (v) => Math.round((v / top) * 255) };
}
export const grayScale = { lut: GRAY, lo: 0, hi: 255, index: (v) => Math.round(v) };
export const flatScale = (r, g, b) => ({ lut: [r, g, b], lo: 0, hi: 1, index: () => 0 }); // one colour for any value

export function rgb(v, scale) {
  const i = Math.max(0, Math.min(255, scale.index(v))) * 3;
  return [scale.lut[i], scale.lut[i + 1], scale.lut[i + 2]];
}
function paint(pixels, offset, v, scale) {
  const [r, g, b] = rgb(v, scale);
  pixels[offset] = r;
  pixels[offset + 1] = g;
  pixels[offset + 2] = b;
  pixels[offset + 3] = 255;
}

export function drawScaleBar(canvas, scale) {
  canvas.width = 128;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(128, 1);
  for (let x = 0; x < 128; x++) paint(img.data, 4 * x, scale.lo + ((scale.hi - scale.lo) * x) / 127, scale);
  ctx.putImageData(img, 0, 0);
}

// (C, H, W): C maps of HxW; (C, L): C maps of 1xL; (F,): F neurons in a square, row by row.
export function geometry(shape, limit = Infinity) {
  let maps, h, w;
  if (shape.length === 3) [maps, h, w] = shape;
  else if (shape.length === 2) [maps, h, w] = [shape[0], 1, shape[1]];
  else {
    maps = 1;
    w = Math.ceil(Math.sqrt(shape[0]));
    h = Math.ceil(shape[0] / w);
  }
  const shown = Math.min(maps, limit);
  let cols = w >= 20 ? 4 : w >= 10 ? 4 : 8;
  if (shown === 1) cols = 1;
  cols = Math.min(cols, shown);
  const gap = shown > 1 ? 1 : 0;
  return { maps: shown, all: maps, h, w, cols, rows: Math.ceil(shown / cols), gap, vector: shape.length === 1 };
}

// Maps side by side on one canvas, one pixel each value; ``mark`` outlines one map.
export function drawGrid(canvas, values, g, scale, mark) {
  canvas.width = g.cols * g.w + (g.cols - 1) * g.gap;
  canvas.height = g.rows * g.h + (g.rows - 1) * g.gap;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let m = 0; m < g.maps; m++) {
    const x0 = (m % g.cols) * (g.w + g.gap), y0 = Math.floor(m / g.cols) * (g.h + g.gap);
    for (let k = 0; k < g.h * g.w; k++) {
      const flat = m * g.h * g.w + k;
      if (flat >= values.length) break; // the last row of a vector
      const x = x0 + (k % g.w), y = y0 + Math.floor(k / g.w);
      paint(img.data, 4 * (y * canvas.width + x), values[flat], scale);
    }
  }
  ctx.putImageData(img, 0, 0);
  if (mark !== undefined && mark !== null && mark < g.maps && !g.vector) {
    const x0 = (mark % g.cols) * (g.w + g.gap), y0 = Math.floor(mark / g.cols) * (g.h + g.gap);
    ctx.strokeStyle = MARK;
    ctx.lineWidth = 1;
    ctx.strokeRect(x0 - 0.5, y0 - 0.5, g.w + 1, g.h + 1);
  }
}

// The map and cell under a mouse event on a grid canvas, or null over a gap.
export function hit(canvas, g, event) {
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
  const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
  const col = Math.floor(x / (g.w + g.gap)), row = Math.floor(y / (g.h + g.gap));
  const cx = Math.floor(x - col * (g.w + g.gap)), cy = Math.floor(y - row * (g.h + g.gap));
  const map = row * g.cols + col;
  if (col >= g.cols || map >= g.maps || cx >= g.w || cy >= g.h || cx < 0 || cy < 0) return null;
  return { map, row: cy, col: cx, index: cy * g.w + cx };
}

// Diagonal hatching: how padding is drawn, so it never looks like a value of zero.
function hatch(ctx, x, y, w, h) {
  ctx.fillStyle = "#e7e9ee";
  ctx.fillRect(x, y, w, h);
  ctx.save();
  ctx.beginPath();
  ctx.rect(x, y, w, h);
  ctx.clip();
  ctx.strokeStyle = "#9aa3ae";
  ctx.lineWidth = 1;
  for (let d = -h; d < w; d += 4) {
    ctx.beginPath();
    ctx.moveTo(x + d, y + h);
    ctx.lineTo(x + d + h, y);
    ctx.stroke();
  }
  ctx.restore();
}

// One map (h x w values) drawn at ``zoom`` pixels a cell, with ``pads`` (top, bottom, left, right)
// cells of hatched padding around it; null values (not computed yet) are drawn plain gray. The canvas's cell (r, c) is the
// map's (r - top, c - left).
export function drawCells(canvas, values, h, w, zoom, scale, pads = [0, 0, 0, 0], lines = false) {
  const [top, bottom, left, right] = pads;
  canvas.width = (w + left + right) * zoom;
  canvas.height = (h + top + bottom) * zoom;
  const ctx = canvas.getContext("2d");
  for (let r = 0; r < h + top + bottom; r++) {
    for (let c = 0; c < w + left + right; c++) {
      const i = r - top, j = c - left;
      if (i < 0 || j < 0 || i >= h || j >= w) {
        hatch(ctx, c * zoom, r * zoom, zoom, zoom);
        continue;
      }
      const v = values[i * w + j];
      if (v === null || v === undefined) { // not computed yet: a gray no value is drawn in
        ctx.fillStyle = "#c3c8d0";
      } else {
        const [cr, cg, cb] = rgb(v, scale);
        ctx.fillStyle = `rgb(${cr},${cg},${cb})`;
      }
      ctx.fillRect(c * zoom, r * zoom, zoom, zoom);
    }
  }
  if (lines) { // cell borders, for counting cells
    ctx.strokeStyle = "rgba(29, 35, 43, 0.35)";
    ctx.lineWidth = 1;
    for (let r = 0; r <= h + top + bottom; r++) ctx.strokeRect(0, r * zoom + 0.5, canvas.width, 0);
    for (let c = 0; c <= w + left + right; c++) ctx.strokeRect(c * zoom + 0.5, 0, 0, canvas.height);
  }
  if (top + bottom + left + right > 0) {
    ctx.setLineDash([3, 2]);
    ctx.strokeStyle = "#5d6875";
    ctx.strokeRect(left * zoom + 0.5, top * zoom + 0.5, w * zoom - 1, h * zoom - 1);
    ctx.setLineDash([]);
  }
  return ctx;
}

// A box (top, left, bottom, right), in cells, outlined on a canvas drawn at ``zoom``.
export function outline(ctx, box, zoom, colour = MARK, width = 2, offset = [0, 0]) {
  const [top, left, bottom, right] = box;
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.strokeRect((left + offset[1]) * zoom + width / 2, (top + offset[0]) * zoom + width / 2,
    (right - left + 1) * zoom - width, (bottom - top + 1) * zoom - width);
}

// A line chart of named series over epochs, with its axes labelled: [{name, colour, values}].
export function lineChart(canvas, series, yLabel, xLabel = "epoch") {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 38, B = 22, T = 8, R = 8;
  ctx.clearRect(0, 0, W, H);
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && Number.isFinite(v)));
  const n = Math.max(2, ...series.map((s) => s.values.length));
  if (!all.length) return;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
  const x = (i) => L + ((W - L - R) * i) / (n - 1), y = (v) => T + ((H - T - B) * (hi - v)) / (hi - lo);
  ctx.strokeStyle = "#9aa3ae";
  ctx.fillStyle = "#5d6875";
  ctx.font = "10px system-ui, sans-serif";
  ctx.beginPath();
  ctx.moveTo(L, T);
  ctx.lineTo(L, H - B);
  ctx.lineTo(W - R, H - B);
  ctx.stroke();
  ctx.fillText(fmtAxis(hi), 2, T + 8);
  ctx.fillText(fmtAxis(lo), 2, H - B);
  ctx.fillText(`${xLabel} 1`, L, H - 6);
  ctx.fillText(String(n), W - R - 12, H - 6);
  ctx.save();
  ctx.translate(10, H / 2 + 10);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.values.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
    ctx.stroke();
    s.values.forEach((v, i) => ctx.fillRect(x(i) - 1.5, y(v) - 1.5, 3, 3));
  }
}
function fmtAxis(v) {
  return String(parseFloat(v.toPrecision(3)));
}
