// cnnlab explore: the page. Plain JavaScript, no libraries, nothing fetched but this server's API.
// Activations arrive as 8-bit codes with a float32 offset and scale per map:
// value = offset + code * scale (see cnnlab/inspect/explorer/network.py).
"use strict";

(function () {
  const SIDE = 28;
  const RUN_COLOURS = ["#1f6feb", "#e8590c", "#2f9e44", "#9c36b5", "#c92a2a", "#0b7285"];

  const state = {
    runs: [],
    run: 0,
    layers: [],
    classes: [],
    image: new Uint8Array(SIDE * SIDE),
    forward: null, // the selected run's forward, with activations
    values: [], // per layer: Float32Array of every value, dequantized
    others: {}, // run id -> forward without activations
    selected: null, // {layer, channel}
    cell: null, // [row, col] in the selected map
    detail: null, // the close-up's last answer
    busy: false,
    pending: false,
    renders: 0,
    firstRender: null,
    testIndex: -1,
  };
  const $ = (id) => document.getElementById(id);

  // ---- helpers -------------------------------------------------------------

  async function api(path, options) {
    const response = await fetch(path, options);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }
  const post = (body) => ({
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

  function showError(error) {
    $("error").textContent = error ? String(error.message || error) : "";
  }

  function bytesFrom64(text) {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }
  const floatsFrom64 = (text) => new Float32Array(bytesFrom64(text).buffer);
  function bytesTo64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary);
  }

  function dequantize(encoded) {
    const offsets = floatsFrom64(encoded.offsets);
    const scales = floatsFrom64(encoded.scales);
    const codes = bytesFrom64(encoded.data);
    const per = codes.length / offsets.length;
    const out = new Float32Array(codes.length);
    for (let m = 0; m < offsets.length; m++) {
      const o = offsets[m], s = scales[m];
      for (let k = m * per; k < (m + 1) * per; k++) out[k] = o + codes[k] * s;
    }
    out.scales = scales;
    return out;
  }

  function fmt(v) {
    if (Number.isInteger(v)) return String(v);
    return String(parseFloat(v.toPrecision(4)));
  }
  const shapeText = (shape) => (shape.length === 1 ? String(shape[0]) : "(" + shape.join(", ") + ")");

  // ---- colours: black-to-yellow for values >= 0, blue-white-red around 0 otherwise ----

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

  // A colour scale for values in [lo, hi]: diverging and symmetric if anything is negative.
  function scaleFor(lo, hi) {
    if (lo < 0) {
      const top = Math.max(-lo, hi) || 1;
      return { lut: DIVERGING, lo: -top, hi: top, index: (v) => Math.round(((v / top + 1) / 2) * 255) };
    }
    const top = hi || 1;
    return { lut: SEQUENTIAL, lo: 0, hi: top, index: (v) => Math.round((v / top) * 255) };
  }
  function paint(pixels, offset, v, scale) {
    const i = Math.max(0, Math.min(255, scale.index(v))) * 3;
    pixels[offset] = scale.lut[i];
    pixels[offset + 1] = scale.lut[i + 1];
    pixels[offset + 2] = scale.lut[i + 2];
    pixels[offset + 3] = 255;
  }
  function drawScaleBar(canvas, scale) {
    canvas.width = 128;
    canvas.height = 1;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(128, 1);
    for (let x = 0; x < 128; x++) paint(img.data, 4 * x, scale.lo + ((scale.hi - scale.lo) * x) / 127, scale);
    ctx.putImageData(img, 0, 0);
  }

  // ---- maps: a layer's output as a grid of small heatmaps on one canvas ----

  // (C, H, W): C maps of HxW; (C, L): C maps of 1xL; (F,): one map, wrapped into rows.
  function geometry(shape) {
    let maps, h, w;
    if (shape.length === 3) [maps, h, w] = shape;
    else if (shape.length === 2) [maps, h, w] = [shape[0], 1, shape[1]];
    else {
      maps = 1;
      w = Math.min(shape[0], shape[0] > 256 ? 40 : 16);
      h = Math.ceil(shape[0] / w);
    }
    let cols = w >= 20 ? 4 : w >= 10 ? 6 : 8;
    if (maps === 1) cols = 1;
    cols = Math.min(cols, maps);
    const gap = maps > 1 ? 1 : 0;
    return { maps, h, w, cols, rows: Math.ceil(maps / cols), gap };
  }

  function drawGrid(canvas, values, g, scale, mark) {
    canvas.width = g.cols * g.w + (g.cols - 1) * g.gap;
    canvas.height = g.rows * g.h + (g.rows - 1) * g.gap;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(canvas.width, canvas.height);
    for (let m = 0; m < g.maps; m++) {
      const x0 = (m % g.cols) * (g.w + g.gap), y0 = Math.floor(m / g.cols) * (g.h + g.gap);
      for (let k = 0; k < g.h * g.w; k++) {
        const flat = m * g.h * g.w + k;
        if (flat >= values.length) break; // the last row of a wrapped vector
        const x = x0 + (k % g.w), y = y0 + Math.floor(k / g.w);
        paint(img.data, 4 * (y * canvas.width + x), values[flat], scale);
      }
    }
    ctx.putImageData(img, 0, 0);
    if (mark !== undefined && mark !== null) {
      const x0 = (mark % g.cols) * (g.w + g.gap), y0 = Math.floor(mark / g.cols) * (g.h + g.gap);
      ctx.strokeStyle = "#12b76a";
      ctx.lineWidth = 1;
      ctx.strokeRect(x0 - 0.5, y0 - 0.5, g.w + 1, g.h + 1);
    }
  }

  // The map and cell under a mouse event on a grid canvas, or null over a gap.
  function hit(canvas, g, event) {
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
    const col = Math.floor(x / (g.w + g.gap)), row = Math.floor(y / (g.h + g.gap));
    const cx = Math.floor(x - col * (g.w + g.gap)), cy = Math.floor(y - row * (g.h + g.gap));
    const map = row * g.cols + col;
    if (col >= g.cols || map >= g.maps || cx >= g.w || cy >= g.h || cx < 0 || cy < 0) return null;
    return { map, row: cy, col: cx };
  }

  // ---- the input: drawing, shifting, showing ----

  function drawInput() {
    const canvas = $("draw"), ctx = canvas.getContext("2d");
    const small = document.createElement("canvas");
    small.width = small.height = SIDE;
    const sctx = small.getContext("2d"), img = sctx.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      img.data.set([state.image[i], state.image[i], state.image[i], 255], 4 * i);
    }
    sctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    const field = state.detail && state.detail.cell && state.detail.cell.field;
    if (field) outline(ctx, field, canvas.width / SIDE, "#12b76a");
  }

  function outline(ctx, box, zoom, colour) {
    const [top, left, bottom, right] = box;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.strokeRect(left * zoom + 1, top * zoom + 1, (right - left + 1) * zoom - 2, (bottom - top + 1) * zoom - 2);
  }

  let stroke = null;
  function brushAt(x, y) {
    const radius = parseFloat($("brush").value);
    for (let r = Math.floor(y - radius - 1); r <= Math.ceil(y + radius + 1); r++) {
      for (let c = Math.floor(x - radius - 1); c <= Math.ceil(x + radius + 1); c++) {
        if (r < 0 || c < 0 || r >= SIDE || c >= SIDE) continue;
        const d = Math.hypot(r + 0.5 - y, c + 0.5 - x);
        const v = 255 * Math.max(0, Math.min(1, radius + 0.5 - d));
        const i = r * SIDE + c;
        state.image[i] = Math.max(state.image[i], Math.round(v));
      }
    }
  }
  function pointerPos(event) {
    const rect = $("draw").getBoundingClientRect();
    return [((event.clientX - rect.left) / rect.width) * SIDE, ((event.clientY - rect.top) / rect.height) * SIDE];
  }
  function strokeTo(p) {
    const [x0, y0] = stroke || p, [x1, y1] = p;
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 4));
    for (let s = 0; s <= steps; s++) brushAt(x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps);
    stroke = p;
  }
  function setupDrawing() {
    const canvas = $("draw");
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      stroke = null;
      strokeTo(pointerPos(event));
      setNote("your drawing");
      changed();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (stroke === null) return;
      strokeTo(pointerPos(event));
      changed();
    });
    const end = () => { stroke = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  function shift(dr, dc) {
    const out = new Uint8Array(SIDE * SIDE);
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        const sr = r - dr, sc = c - dc;
        if (sr >= 0 && sc >= 0 && sr < SIDE && sc < SIDE) out[r * SIDE + c] = state.image[sr * SIDE + sc];
      }
    }
    state.image = out;
    changed();
  }
  const ARROWS = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  function setupKeys() {
    document.addEventListener("keydown", (event) => {
      const tag = (event.target && event.target.tagName) || "";
      if (!(event.key in ARROWS) || ["INPUT", "SELECT", "TEXTAREA"].includes(tag)) return;
      event.preventDefault();
      shift(...ARROWS[event.key]);
    });
  }

  function setNote(text) {
    $("input-note").textContent = text;
  }
  function setImage(b64, note) {
    state.image = bytesFrom64(b64);
    setNote(note);
    changed();
  }
  function changed() {
    drawInput();
    refresh();
  }

  // ---- forward passes ----

  async function refresh() {
    if (state.busy) {
      state.pending = true;
      return;
    }
    state.busy = true;
    try {
      do {
        state.pending = false;
        const image = bytesTo64(state.image);
        const others = state.runs
          .filter((r) => r.id !== state.run)
          .map((r) => api(`/api/runs/${r.id}/forward`, post({ image, activations: false })).then((f) => [r.id, f]));
        const [main, ...rest] = await Promise.all([api(`/api/runs/${state.run}/forward`, post({ image })), ...others]);
        state.forward = main;
        state.values = main.layers.map(dequantize);
        state.others = Object.fromEntries(rest);
        renderColumns();
        renderSoftmax();
        if (state.selected) await renderCloseup();
        showError(null);
      } while (state.pending);
      state.renders += 1;
      if (state.firstRender === null) state.firstRender = performance.now();
    } catch (error) {
      showError(error);
    } finally {
      state.busy = false;
    }
  }

  // ---- softmax bars, all runs together ----

  function renderSoftmax() {
    const forwards = state.runs.map((r) => (r.id === state.run ? state.forward : state.others[r.id]));
    const legend = $("legend");
    legend.replaceChildren();
    state.runs.forEach((r, k) => {
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = RUN_COLOURS[k % RUN_COLOURS.length];
      const f = forwards[k];
      item.append(sw, `${r.name} (${r.model}): `);
      const b = document.createElement("b");
      b.textContent = f ? `${f.class} ${(100 * f.probabilities[f.predicted]).toFixed(1)}%` : "…";
      item.append(b);
      item.className = "prediction";
      legend.append(item);
    });
    const bars = $("bars");
    bars.replaceChildren();
    state.classes.forEach((name, c) => {
      const row = document.createElement("div");
      row.className = "bar-row" + (state.forward && state.forward.predicted === c ? " top" : "");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = name;
      const track = document.createElement("div");
      track.className = "bar-track";
      forwards.forEach((f, k) => {
        const line = document.createElement("div");
        line.className = "bar-line";
        const bar = document.createElement("div");
        bar.className = "bar";
        const p = f ? f.probabilities[c] : 0;
        bar.style.width = `${Math.max(0.3, 120 * p)}px`;
        bar.style.background = RUN_COLOURS[k % RUN_COLOURS.length];
        const pct = document.createElement("span");
        pct.className = "bar-pct";
        pct.textContent = `${(100 * p).toFixed(1)}%`;
        line.append(bar, pct);
        track.append(line);
      });
      row.append(label, track);
      bars.append(row);
    });
  }

  // ---- the layer columns ----

  function buildColumns() {
    const columns = $("columns");
    columns.replaceChildren();
    for (const layer of state.layers) {
      const col = document.createElement("div");
      col.className = `layer depth-${Math.min(layer.depth, 2)}`;
      col.dataset.index = layer.index;
      col.innerHTML =
        '<div class="layer-title"><span class="idx"></span><span class="kind"></span></div>' +
        '<div class="layer-detail"></div><canvas class="maps"></canvas>' +
        '<div class="scale"><span class="lo"></span><canvas></canvas><span class="hi"></span></div>' +
        '<div class="shape"></div>';
      col.querySelector(".idx").textContent = layer.name;
      col.querySelector(".kind").textContent = layer.kind;
      col.querySelector(".layer-detail").textContent = layer.detail;
      col.querySelector(".layer-detail").title = layer.detail;
      col.querySelector(".shape").textContent = shapeText(layer.shape);
      const canvas = col.querySelector("canvas.maps");
      const g = geometry(layer.shape);
      canvas.addEventListener("click", (event) => {
        const at = hit(canvas, g, event);
        if (at) select(layer.index, at.map);
      });
      canvas.addEventListener("mousemove", (event) => {
        const at = hit(canvas, g, event);
        canvas.title = at ? `map ${at.map}, value ${fmt(valueAt(layer.index, at.map, at.row, at.col, g))}` : "";
      });
      columns.append(col);
    }
  }

  function valueAt(layer, map, row, col, g) {
    return state.values[layer][map * g.h * g.w + row * g.w + col];
  }

  function renderColumns() {
    for (const col of $("columns").children) {
      const index = Number(col.dataset.index);
      const layer = state.layers[index], enc = state.forward.layers[index];
      const scale = scaleFor(enc.min, enc.max);
      const mark = state.selected && state.selected.layer === index ? state.selected.channel : null;
      drawGrid(col.querySelector("canvas.maps"), state.values[index], geometry(layer.shape), scale, mark);
      drawScaleBar(col.querySelector(".scale canvas"), scale);
      col.querySelector(".lo").textContent = fmt(scale.lo);
      col.querySelector(".hi").textContent = fmt(scale.hi);
    }
  }

  function select(layer, channel) {
    state.selected = { layer, channel };
    state.cell = null;
    state.detail = null;
    renderColumns();
    renderCloseup();
  }

  // ---- the close-up ----

  function figure(caption, canvas) {
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.textContent = caption;
    fig.append(canvas, cap);
    return fig;
  }
  function sized(canvas, width) {
    canvas.style.width = `${width}px`;
    return canvas;
  }

  async function renderCloseup() {
    const body = $("closeup-body");
    const { layer, channel } = state.selected;
    const step = state.layers[layer];
    const image = bytesTo64(state.image);
    const title = document.createElement("h3");
    title.textContent = `layer ${step.name}: ${step.kind} ${step.detail}, map ${channel}`;
    try {
      if (step.closeup === "conv") {
        state.detail = await api(`/api/runs/${state.run}/conv`, post({ image, layer, channel, cell: state.cell }));
        body.replaceChildren(title, ...convView(state.detail));
      } else if (step.closeup === "pool") {
        state.detail = await api(`/api/runs/${state.run}/pool`, post({ image, layer, channel }));
        body.replaceChildren(title, ...poolView(state.detail));
      } else {
        state.detail = null;
        body.replaceChildren(title, ...mapView(step, channel));
      }
      drawInput();
    } catch (error) {
      showError(error);
    }
  }

  function mapView(step, channel) {
    const g = geometry(step.shape);
    const one = { ...g, maps: 1, cols: 1, rows: 1, gap: 0 };
    const per = g.h * g.w;
    const values = state.values[step.index].subarray(channel * per, (channel + 1) * per);
    const enc = state.forward.layers[step.index];
    const canvas = document.createElement("canvas");
    drawGrid(canvas, values, one, scaleFor(enc.min, enc.max));
    sized(canvas, Math.min(260, Math.max(60, one.w * 8)));
    const facts = document.createElement("p");
    facts.className = "facts";
    facts.textContent = "Hover for values (8-bit, as the heatmaps travel). Only convolution and pooling maps open up further.";
    canvas.addEventListener("mousemove", (event) => {
      const at = hit(canvas, one, event);
      if (at) facts.textContent = `[${at.row}, ${at.col}] = ${fmt(values[at.row * one.w + at.col])}`;
    });
    return [figure(`map ${channel} of ${shapeText(step.shape)}`, canvas), facts];
  }

  function convView(d) {
    const [C, H, W] = d.input_shape;
    const inputs = dequantize(d.inputs);
    const kh = d.kernel[0].length, kw = d.kernel[0][0].length;
    const gIn = { maps: C, h: H, w: W, cols: Math.min(C, C > 16 ? 8 : 4), gap: 1 };
    gIn.rows = Math.ceil(C / gIn.cols);
    const gK = { maps: C, h: kh, w: kw, cols: gIn.cols, rows: gIn.rows, gap: 1 };
    const kernel = Float32Array.from(d.kernel.flat(2));
    const kTop = Math.max(...kernel.map(Math.abs)) || 1;
    const [OH, OW] = [d.output.length, d.output[0].length];
    const out = Float32Array.from(d.output.flat());
    const gOut = { maps: 1, h: OH, w: OW, cols: 1, rows: 1, gap: 0 };
    const outScale = scaleFor(Math.min(...out), Math.max(...out));

    const inCanvas = sized(document.createElement("canvas"), Math.min(300, Math.max(120, gIn.cols * (W + 1) * 3)));
    const kCanvas = sized(document.createElement("canvas"), Math.min(240, Math.max(60, gK.cols * (kw + 1) * 10)));
    const outCanvas = sized(document.createElement("canvas"), Math.min(240, Math.max(80, OW * 9)));
    outCanvas.id = "conv-output";
    outCanvas.className = "pickable";
    const inScale = scaleFor(d.inputs.min, d.inputs.max);
    const drawIns = (cell) => {
      drawGrid(inCanvas, inputs, gIn, inScale);
      if (!cell) return;
      const ctx = inCanvas.getContext("2d");
      const [top, left] = [cell[0] * d.stride[0] - d.pads[0], cell[1] * d.stride[1] - d.pads[2]];
      const [hh, ww] = [d.dilation[0] * (kh - 1) + 1, d.dilation[1] * (kw - 1) + 1];
      ctx.strokeStyle = "#12b76a";
      ctx.lineWidth = 1;
      for (let m = 0; m < C; m++) {
        const x0 = (m % gIn.cols) * (W + 1), y0 = Math.floor(m / gIn.cols) * (H + 1);
        ctx.strokeRect(x0 + left - 0.5, y0 + top - 0.5, ww + 1, hh + 1);
      }
    };
    const drawOut = (cell) => {
      drawGrid(outCanvas, out, gOut, outScale);
      if (cell) {
        const ctx = outCanvas.getContext("2d");
        ctx.strokeStyle = "#12b76a";
        ctx.lineWidth = 1;
        ctx.strokeRect(cell[1] - 0.5, cell[0] - 0.5, 2, 2);
      }
    };
    drawIns(state.cell);
    drawGrid(kCanvas, kernel, gK, scaleFor(-kTop, kTop));
    drawOut(state.cell);
    outCanvas.addEventListener("mousemove", (event) => {
      const at = hit(outCanvas, gOut, event);
      drawIns(at ? [at.row, at.col] : state.cell);
    });
    outCanvas.addEventListener("mouseleave", () => drawIns(state.cell));
    outCanvas.addEventListener("click", (event) => {
      const at = hit(outCanvas, gOut, event);
      if (!at) return;
      state.cell = [at.row, at.col];
      renderCloseup();
    });

    const figures = document.createElement("div");
    figures.className = "figures";
    figures.append(
      figure(`input channels ${d.in_channels[0]}..${d.in_channels[C - 1]} (${C}x${H}x${W}), ` +
        `range ${fmt(inScale.lo)}..${fmt(inScale.hi)}; the window of the chosen cell outlined`, inCanvas),
      figure(`kernel ${C}x${kh}x${kw}, blue < 0 < red, |w| up to ${fmt(kTop)}; bias ${fmt(d.bias)}`, kCanvas),
      figure(`output map ${d.channel} (${OH}x${OW}): click a cell`, outCanvas),
    );
    const parts = [figures];
    if (d.cell) parts.push(...sumView(d, inputs, gIn));
    return parts;
  }

  function numbers(caption, rows) {
    const table = document.createElement("table");
    table.className = "numbers";
    const cap = document.createElement("caption");
    cap.textContent = caption;
    table.append(cap);
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const v of row) {
        const td = document.createElement("td");
        td.textContent = fmt(v);
        tr.append(td);
      }
      table.append(tr);
    }
    return table;
  }

  // The window and the kernel side by side for one input channel's products.
  function pairView(c, products, kh, kw, inChannel) {
    const pair = document.createElement("div");
    pair.className = "pair";
    const rows = (k) => Array.from({ length: kh }, (_, p) => Array.from({ length: kw }, (_, q) => products[p * kw + q][k]));
    pair.append(numbers(`window, channel ${inChannel}`, rows(0)), numbers("kernel", rows(1)));
    return pair;
  }

  function sumView(d, inputs, gIn) {
    const cell = d.cell, kh = d.kernel[0].length, kw = d.kernel[0][0].length;
    const g = geometry(state.layers[d.layer].shape);
    const heat = valueAt(d.layer, d.channel, cell.row, cell.col, g);
    const scales = state.values[d.layer].scales;
    const text = document.createElement("p");
    text.id = "sum-text";
    text.className = "mono";
    text.textContent = cell.text;
    text.dataset.value = cell.value;
    text.dataset.sum = cell.sum;
    text.dataset.heatmap = heat;
    text.dataset.tolerance = scales ? scales[d.channel] / 2 : 0;
    const facts = document.createElement("p");
    facts.className = "facts";
    facts.id = "map-value";
    facts.textContent = `map value ${fmt(cell.value)} (float32); sum of products + bias ${fmt(cell.sum)} ` +
      `(float64); heatmap ${fmt(heat)} (8-bit). Receptive field in the input image: rows ` +
      `${cell.field[0]}..${cell.field[2]}, columns ${cell.field[1]}..${cell.field[3]} (outlined on the input).`;
    const parts = [text, facts];
    if (cell.channels.length === 1) {
      parts.push(pairView(0, cell.channels[0].products, kh, kw, d.in_channels[0]));
    } else {
      const list = document.createElement("div");
      list.id = "channels";
      cell.channels.forEach((ch, k) => {
        const det = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = `input channel ${d.in_channels[k]}: partial sum ${fmt(ch.partial)}`;
        det.append(summary);
        det.addEventListener("toggle", () => {
          if (!det.open || det.childElementCount > 1) return;
          const products = document.createElement("p");
          products.className = "mono";
          products.textContent = ch.text;
          det.append(pairView(k, ch.products, kh, kw, d.in_channels[k]), products);
        });
        list.append(det);
      });
      parts.push(list);
    }
    return parts;
  }

  function poolView(d) {
    const [H, W] = [d.input.length, d.input[0].length];
    const [OH, OW] = [d.output.length, d.output[0].length];
    const input = Float32Array.from(d.input.flat()), out = Float32Array.from(d.output.flat());
    const scale = scaleFor(Math.min(...input, ...out), Math.max(...input, ...out));
    const zoom = Math.max(4, Math.floor(260 / Math.max(H, W)));
    const inCanvas = document.createElement("canvas");
    const outCanvas = document.createElement("canvas");
    outCanvas.id = "pool-output";
    outCanvas.className = "pickable";
    const text = document.createElement("p");
    text.id = "pool-text";
    text.className = "mono";
    text.textContent = "Click an output cell (or hover) to see its window written out.";
    const gOut = { maps: 1, h: OH, w: OW, cols: 1, rows: 1, gap: 0 };
    const drawBig = (canvas, values, h, w, z) => {
      canvas.width = w * z;
      canvas.height = h * z;
      const ctx = canvas.getContext("2d");
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) {
          const i = Math.max(0, Math.min(255, scale.index(values[r * w + c]))) * 3;
          ctx.fillStyle = `rgb(${scale.lut[i]},${scale.lut[i + 1]},${scale.lut[i + 2]})`;
          ctx.fillRect(c * z, r * z, z, z);
        }
      }
      return ctx;
    };
    const drawIn = (chosen) => {
      const ctx = drawBig(inCanvas, input, H, W, zoom);
      d.windows.forEach((box, k) => {
        ctx.lineWidth = k === chosen ? 2 : 1;
        ctx.strokeStyle = k === chosen ? "#12b76a" : "rgba(255,255,255,0.55)";
        ctx.strokeRect(box[1] * zoom + 0.5, box[0] * zoom + 0.5, (box[3] - box[1] + 1) * zoom - 1, (box[2] - box[0] + 1) * zoom - 1);
      });
      if (d.winners) {
        ctx.fillStyle = "#12b76a";
        for (const [r, c] of d.winners) ctx.fillRect(c * zoom + zoom / 3, r * zoom + zoom / 3, zoom / 3, zoom / 3);
      }
    };
    const outZoom = Math.max(4, Math.floor(200 / Math.max(OH, OW)));
    const drawOut = (chosen) => {
      const ctx = drawBig(outCanvas, out, OH, OW, outZoom);
      if (chosen !== null) {
        ctx.strokeStyle = "#12b76a";
        ctx.lineWidth = 2;
        ctx.strokeRect((chosen % OW) * outZoom + 1, Math.floor(chosen / OW) * outZoom + 1, outZoom - 2, outZoom - 2);
      }
    };
    const choose = (k, keep) => {
      drawIn(k);
      drawOut(k);
      if (k !== null) text.textContent = `y[${d.channel}, ${Math.floor(k / OW)}, ${k % OW}] = ${d.texts[k]}`;
      if (keep) state.cell = k === null ? null : [Math.floor(k / OW), k % OW];
    };
    const current = state.cell ? state.cell[0] * OW + state.cell[1] : null;
    choose(current !== null && current < OH * OW ? current : null, false);
    outCanvas.addEventListener("mousemove", (event) => {
      const at = hit(outCanvas, { ...gOut, w: OW * outZoom, h: OH * outZoom }, event);
      if (at) choose(Math.floor(at.row / outZoom) * OW + Math.floor(at.col / outZoom), false);
    });
    outCanvas.addEventListener("click", (event) => {
      const at = hit(outCanvas, { ...gOut, w: OW * outZoom, h: OH * outZoom }, event);
      if (at) choose(Math.floor(at.row / outZoom) * OW + Math.floor(at.col / outZoom), true);
    });
    const how = d.winners ? "each window's maximum marked" : "each output the mean of its window";
    const figures = document.createElement("div");
    figures.className = "figures";
    figures.append(
      figure(`input map ${d.channel} (${H}x${W}), windows outlined, ${how}`, inCanvas),
      figure(`output (${OH}x${OW}), range ${fmt(scale.lo)}..${fmt(scale.hi)}`, outCanvas),
    );
    return [figures, text];
  }

  // ---- test images, uploads, runs ----

  async function testImage(query, describe) {
    try {
      const t = await api(`/api/runs/${state.run}/test?${query}`);
      state.testIndex = t.index;
      $("test-index").value = t.index;
      setImage(t.image, describe(t));
    } catch (error) {
      showError(error);
    }
  }

  function setupInputs() {
    $("clear").addEventListener("click", () => {
      state.image = new Uint8Array(SIDE * SIDE);
      setNote("a blank image: draw on it");
      changed();
    });
    $("load-test").addEventListener("click", () =>
      testImage(`index=${Number($("test-index").value)}`, (t) => `test image ${t.index}: ${t.class}`));
    $("next-class").addEventListener("click", () =>
      testImage(`class=${$("test-class").value}&after=${state.testIndex}`, (t) => `test image ${t.index}: ${t.class}`));
    $("mistake").addEventListener("click", () =>
      testImage(`mistake=${Math.floor(Math.random() * 1e9)}`,
        (t) => `test image ${t.index}: a ${t.class} that this run takes for ${state.classes[t.predicted]}`));
    $("upload").addEventListener("change", async (event) => {
      const file = event.target.files[0];
      if (!file) return;
      try {
        const answer = await api(`/api/image?invert=${$("invert").value}`, {
          method: "POST",
          headers: { "Content-Type": file.type || "application/octet-stream" },
          body: file,
        });
        setImage(answer.image, `uploaded ${file.name}, made 28x28${answer.inverted ? " (inverted)" : ""}`);
      } catch (error) {
        showError(error);
      }
    });
    $("run").addEventListener("change", async () => {
      state.run = Number($("run").value);
      state.selected = null;
      state.cell = null;
      state.detail = null;
      $("closeup-body").replaceChildren();
      await loadRun();
      refresh();
    });
  }

  async function loadRun() {
    const description = await api(`/api/runs/${state.run}/layers`);
    state.layers = description.layers;
    state.classes = description.classes;
    const run = state.runs[state.run];
    const accuracy = run.test_accuracy === null ? "unfinished" : `test accuracy ${(100 * run.test_accuracy).toFixed(2)}%`;
    $("run-info").textContent = `${run.model}, ${run.backend} backend, ${accuracy}`;
    $("test-controls").disabled = run.test_images === 0;
    $("test-note").textContent = run.test_note;
    const select = $("test-class");
    select.replaceChildren(...state.classes.map((name, k) => new Option(name, k)));
    $("test-index").max = Math.max(0, run.test_images - 1);
    buildColumns();
  }

  async function start() {
    setupDrawing();
    setupKeys();
    setupInputs();
    try {
      state.runs = (await api("/api/runs")).runs;
      $("run").replaceChildren(...state.runs.map((r) => new Option(`${r.id}: ${r.name} (${r.model})`, r.id)));
      await loadRun();
      if (state.runs[state.run].test_images > 0) {
        await testImage("index=0", (t) => `test image ${t.index}: ${t.class}`);
      } else {
        changed();
      }
    } catch (error) {
      showError(error);
    }
  }

  // For tests and the curious: the state, and one map's values as the heatmap shows them.
  window.cnnlab = {
    state,
    mapValues(layer, map) {
      const g = geometry(state.layers[layer].shape), per = g.h * g.w;
      return Array.from(state.values[layer].subarray(map * per, (map + 1) * per));
    },
  };
  start();
})();
