// cnnlab explore: one map or neuron up close. Each kind of layer gets a view with its formula and the
// real (float32) numbers: a convolution's sums (animated, window by window), pooling's windows,
// an activation, batch norm, flatten, a dense neuron, a residual sum, and the softmax. Below the view:
// the test images that excite the map most, and the same layer in another run.
import {
  $, api, bytesTo64, dequantize, el, fmt, hooks, paintImage, pct, post, runColour, shapeText, showError, state,
} from "./common.js";
import { drawCells, drawGrid, geometry, hit, MARK, outline, scaleFor } from "./draw.js";

const anim = { cells: null, key: "", k: -1, timer: null }; // the animated convolution

export function channels(step) {
  return step.shape.length === 1 ? step.shape[0] : step.shape[0];
}

export function select(layer, channel) {
  stopAnimation();
  state.selected = { layer, channel };
  state.cell = null;
  state.detail = null;
  hooks.renderColumns();
  renderCloseup();
}

export function selectSoftmax() {
  stopAnimation();
  state.selected = { softmax: true };
  state.detail = null;
  hooks.renderColumns();
  renderCloseup();
}

// After another run is chosen: the same layer (by name and kind) and map, if the run has them.
export function keepSelection(before) {
  stopAnimation();
  if (!state.selected || state.selected.softmax) return;
  const same = before && state.layers.find((s) => s.name === before.name && s.kind === before.kind);
  if (same && state.selected.channel < channels(same)) {
    state.selected = { layer: same.index, channel: state.selected.channel };
    return;
  }
  state.selected = null;
  state.detail = null;
  $("closeup-body").replaceChildren(el("p", { className: "note" },
    `This run has no layer ${before ? before.name + " (" + before.kind + ")" : ""} with that map; click a map above.`));
}

const figure = (caption, ...content) => el("figure", {}, ...content, el("figcaption", {}, caption));
const sized = (canvas, width) => ((canvas.style.width = `${Math.round(width)}px`), canvas);
const zoomFor = (h, w, room) => Math.max(3, Math.min(24, Math.floor(room / Math.max(h, w))));

export async function renderCloseup() {
  const body = $("closeup-body");
  if (!state.selected) return;
  if (state.selected.softmax) {
    body.replaceChildren(...softmaxView());
    return;
  }
  const { layer, channel } = state.selected;
  const step = state.layers[layer];
  const image = bytesTo64(state.image);
  const last = layer === state.layers.length - 1 && step.shape.length === 1;
  const what = step.shape.length === 1 ? `neuron ${channel}${last ? ` (${state.classes[channel]})` : ""}` : `map ${channel}`;
  const kind = [step.kind, step.detail].filter(Boolean).join(" ");
  const title = el("h3", {}, `layer ${step.name}: ${kind}, ${what} of ${shapeText(step.shape)}`);
  try {
    let parts;
    if (step.closeup === "conv") {
      state.detail = await api(`/api/runs/${state.run}/conv`, post({ image, layer, channel, cell: state.cell }));
      parts = convView(state.detail);
    } else if (step.closeup === "pool") {
      state.detail = await api(`/api/runs/${state.run}/pool`, post({ image, layer, channel }));
      parts = poolView(state.detail);
    } else if (["activation", "batchnorm", "dense", "add"].includes(step.closeup)) {
      state.detail = await api(`/api/runs/${state.run}/explain`, post({ image, layer, channel }));
      parts = VIEWS[state.detail.view](state.detail, step, last);
    } else if (step.closeup === "flatten") {
      state.detail = null;
      parts = flattenView(step, channel);
    } else {
      state.detail = null;
      parts = mapView(step, channel);
    }
    body.replaceChildren(title, mapPicker(step, channel), ...parts, ...extras(step, channel));
    hooks.drawInput();
  } catch (error) {
    showError(error);
  }
}

// Which map (or neuron) of the layer: a number to type, and the previous and next.
function mapPicker(step, channel) {
  const n = channels(step);
  if (n <= 1) return el("span");
  const input = el("input", { type: "number", min: 0, max: n - 1, value: channel, id: "map-number" });
  input.addEventListener("change", () => select(step.index, Math.max(0, Math.min(n - 1, Number(input.value) || 0))));
  const prev = el("button", { type: "button" }, "previous");
  const next = el("button", { type: "button" }, "next");
  prev.addEventListener("click", () => select(step.index, (channel + n - 1) % n));
  next.addEventListener("click", () => select(step.index, (channel + 1) % n));
  return el("div", { className: "row" }, el("label", {}, step.shape.length === 1 ? "neuron " : "map ", input),
    el("span", { className: "note" }, `of ${n}`), prev, next);
}

// ---- tables of numbers: windows, kernels, contributions ----

function numbers(caption, rows, padded) {
  const table = el("table", { className: "numbers" }, el("caption", {}, caption));
  rows.forEach((row, r) => {
    const tr = el("tr");
    row.forEach((v, c) => {
      const pad = padded && padded[r * row.length + c];
      tr.append(el("td", pad ? { className: "pad", title: "padding: a zero the layer adds around its input" } : {}, pad ? "pad 0" : fmt(v)));
    });
    table.append(tr);
  });
  return table;
}

// ---- a convolution: inputs, kernel, output, one cell's sum, and the animation ----

function convView(d) {
  const [C, H, W] = d.input_shape;
  const inputs = dequantize(d.inputs);
  const kh = d.kernel[0].length, kw = d.kernel[0][0].length;
  const out = Float32Array.from(d.output.flat());
  const [OH, OW] = [d.output.length, d.output[0].length];
  const inScale = scaleFor(d.inputs.min, d.inputs.max);
  const outScale = scaleFor(Math.min(...out), Math.max(...out));
  const kernel = Float32Array.from(d.kernel.flat(2));
  const kTop = Math.max(...kernel.map(Math.abs)) || 1;
  const [pt, pb, pl, pr] = d.pads;

  // the first input channel big, with its padding hatched; all of them small beside it
  const big = el("canvas", { id: "conv-input" });
  const zoom = zoomFor(H + pt + pb, W + pl + pr, 260);
  const drawBig = (cell) => {
    const ctx = drawCells(big, inputs.subarray(0, H * W), H, W, zoom, inScale, d.pads);
    if (!cell) return;
    const top = cell[0] * d.stride[0], left = cell[1] * d.stride[1]; // in padded coordinates
    outline(ctx, [top, left, top + d.dilation[0] * (kh - 1), left + d.dilation[1] * (kw - 1)], zoom);
  };
  const gIn = { maps: C, h: H, w: W, cols: Math.min(C, C > 16 ? 8 : 4), gap: 1 };
  gIn.rows = Math.ceil(C / gIn.cols);
  const small = sized(el("canvas"), Math.min(220, gIn.cols * (W + 1) * 2));
  drawGrid(small, inputs, gIn, inScale);
  const kCanvas = sized(el("canvas"), Math.min(200, Math.max(48, Math.min(C, 4) * (kw + 1) * 10)));
  const gK = { maps: C, h: kh, w: kw, cols: Math.min(C, C > 16 ? 8 : 4), gap: 1 };
  gK.rows = Math.ceil(C / gK.cols);
  drawGrid(kCanvas, kernel, gK, scaleFor(-kTop, kTop));

  const outCanvas = el("canvas", { id: "conv-output", className: "pickable" });
  const outZoom = zoomFor(OH, OW, 220);
  const drawOut = (upTo, cell) => {
    const shown = upTo === null ? out : Array.from(out, (v, k) => (k <= upTo ? v : null));
    const ctx = drawCells(outCanvas, shown, OH, OW, outZoom, outScale);
    if (cell) outline(ctx, [cell[0], cell[1], cell[0], cell[1]], outZoom);
  };
  drawBig(state.cell);
  drawOut(null, state.cell);
  outCanvas.addEventListener("mousemove", (event) => {
    const at = cellAt(outCanvas, OH, OW, event);
    if (anim.timer === null && anim.k < 0) drawBig(at ? [at.row, at.col] : state.cell);
  });
  outCanvas.addEventListener("click", (event) => {
    const at = cellAt(outCanvas, OH, OW, event);
    if (!at) return;
    stopAnimation();
    anim.k = -1;
    state.cell = [at.row, at.col];
    renderCloseup();
  });

  const padNote = pt + pb + pl + pr ? `; hatched cells are padding (${pt} on top, ${pl} on the left), not values` : "";
  const figures = el("div", { className: "figures" },
    figure(`input channel ${channelName(d, d.in_channels[0])}, ${H}x${W}, range ${fmt(inScale.lo)}..${fmt(inScale.hi)}${padNote}`, big),
    C > 1 ? figure(`all ${C} input channels`, small) : null,
    figure(`kernel ${C}x${kh}x${kw}, blue < 0 < red, |w| up to ${fmt(kTop)}; bias ${fmt(d.bias)}`, kCanvas),
    figure(`output map ${d.channel} (${OH}x${OW}): click a cell, or play`, outCanvas));
  const parts = [figures, animationBar(d, drawBig, drawOut, OW)];
  if (d.cell) parts.push(...sumView(d, kh, kw));
  return parts;
}

function cellAt(canvas, h, w, event) {
  const rect = canvas.getBoundingClientRect();
  const col = Math.floor(((event.clientX - rect.left) / rect.width) * w);
  const row = Math.floor(((event.clientY - rect.top) / rect.height) * h);
  return row >= 0 && col >= 0 && row < h && col < w ? { row, col } : null;
}

// Play, pause and step the window over the map, writing each output value's sum as it goes.
function animationBar(d, drawBig, drawOut, OW) {
  const key = `${state.run}/${d.layer}/${d.channel}/${bytesTo64(state.image)}`;
  if (anim.key !== key) Object.assign(anim, { key, cells: null, k: -1 });
  const text = el("p", { id: "anim-text", className: "mono" }, "Press play: the window slides over the input, one output value at a time.");
  const where = el("span", { id: "anim-position", className: "note" });
  const show = () => {
    const c = anim.cells[anim.k], [i, j] = [Math.floor(anim.k / OW), anim.k % OW];
    drawBig([i, j]);
    drawOut(anim.k, [i, j]);
    text.textContent = c.text;
    text.dataset.value = c.value;
    text.dataset.sum = c.sum;
    where.textContent = `cell [${i}, ${j}]: ${anim.k + 1} of ${anim.cells.length}`;
  };
  const load = async () => {
    if (anim.cells) return true;
    try {
      const image = bytesTo64(state.image);
      const answer = await api(`/api/runs/${state.run}/conv`, post({ image, layer: d.layer, channel: d.channel, all_cells: true }));
      anim.cells = answer.cells;
      return true;
    } catch (error) {
      showError(error);
      return false;
    }
  };
  const step = async () => {
    if (!(await load())) return;
    anim.k = (anim.k + 1) % anim.cells.length;
    show();
  };
  const play = el("button", { type: "button", id: "anim-play" }, "Play");
  const pause = el("button", { type: "button", id: "anim-pause" }, "Pause");
  const stepButton = el("button", { type: "button", id: "anim-step" }, "Step");
  const speed = el("select", { id: "anim-speed", ariaLabel: "speed" },
    new Option("slow", 900), new Option("medium", 350, true, true), new Option("fast", 80));
  play.addEventListener("click", async () => {
    stopAnimation();
    if (!(await load())) return;
    const tick = () => {
      if (anim.k >= anim.cells.length - 1) return stopAnimation();
      anim.k += 1;
      show();
    };
    if (anim.k >= anim.cells.length - 1) anim.k = -1;
    tick();
    anim.timer = setInterval(tick, Number(speed.value));
  });
  pause.addEventListener("click", stopAnimation);
  stepButton.addEventListener("click", () => {
    stopAnimation();
    step();
  });
  if (anim.cells && anim.k >= 0) setTimeout(show, 0);
  return el("div", { className: "animation" }, el("div", { className: "row" }, play, pause, stepButton, speed, where), text);
}

function stopAnimation() {
  if (anim.timer !== null) clearInterval(anim.timer);
  anim.timer = null;
}

// The window and the kernel side by side for one input channel's products.
// An input channel's name: for a layer fed by a colour image itself, its colour too.
function channelName(d, c) {
  const fromImage = state.layers[d.layer].sources[0] === -1 && state.channels > 1;
  return fromImage ? `${c} (${state.channelNames[c]})` : `${c}`;
}

function pairView(products, padded, kh, kw, inChannel) {
  const rows = (k) => Array.from({ length: kh }, (_, p) => Array.from({ length: kw }, (_, q) => products[p * kw + q][k]));
  return el("div", { className: "pair" }, numbers(`window, channel ${inChannel}`, rows(0), padded), numbers("kernel", rows(1)));
}

function sumView(d, kh, kw) {
  const cell = d.cell;
  const g = geometry(state.layers[d.layer].shape);
  const heat = hooks.valueAt(d.layer, d.channel, cell.row, cell.col, g);
  const scales = state.values[d.layer].scales;
  const text = el("p", { id: "sum-text", className: "mono" }, cell.text);
  Object.assign(text.dataset, { value: cell.value, sum: cell.sum, heatmap: heat, tolerance: scales ? scales[d.channel] / 2 : 0 });
  const facts = el("p", { className: "facts", id: "map-value" },
    `map value ${fmt(cell.value)} (float32); sum of products + bias ${fmt(cell.sum)} (float64); heatmap ${fmt(heat)} ` +
    (cell.field ? `(8-bit). Receptive field in the input image: rows ${cell.field[0]}..${cell.field[2]}, columns ` +
      `${cell.field[1]}..${cell.field[3]} (outlined on the input).` :
      "(8-bit). No receptive field: this network's own forward() may work between its layers."));
  const parts = [text, facts];
  if (cell.channels.length === 1) {
    parts.push(pairView(cell.channels[0].products, cell.channels[0].padded, kh, kw, channelName(d, d.in_channels[0])));
  } else {
    const list = el("div", { id: "channels" });
    cell.channels.forEach((ch, k) => {
      const det = el("details", {}, el("summary", {}, `input channel ${channelName(d, d.in_channels[k])}: partial sum ${fmt(ch.partial)}`));
      det.addEventListener("toggle", () => {
        if (!det.open || det.childElementCount > 1) return;
        det.append(pairView(ch.products, ch.padded, kh, kw, channelName(d, d.in_channels[k])), el("p", { className: "mono" }, ch.text));
      });
      list.append(det);
    });
    parts.push(list);
  }
  return parts;
}

// ---- pooling ----

function poolView(d) {
  const [H, W] = [d.input.length, d.input[0].length];
  const [OH, OW] = [d.output.length, d.output[0].length];
  const input = Float32Array.from(d.input.flat()), out = Float32Array.from(d.output.flat());
  const scale = scaleFor(Math.min(...input, ...out), Math.max(...input, ...out));
  const zoom = zoomFor(H, W, 260), outZoom = zoomFor(OH, OW, 200);
  const inCanvas = el("canvas"), outCanvas = el("canvas", { id: "pool-output", className: "pickable" });
  const text = el("p", { id: "pool-text", className: "mono" }, "Click an output cell (or hover) to see its window written out.");
  const drawIn = (chosen) => {
    const ctx = drawCells(inCanvas, input, H, W, zoom, scale);
    d.windows.forEach((box, k) => outline(ctx, box, zoom, k === chosen ? MARK : "rgba(255,255,255,0.55)", k === chosen ? 2 : 1));
    if (d.winners) {
      ctx.fillStyle = MARK;
      for (const [r, c] of d.winners) ctx.fillRect(c * zoom + zoom / 3, r * zoom + zoom / 3, zoom / 3, zoom / 3);
    }
  };
  const drawOut = (chosen) => {
    const ctx = drawCells(outCanvas, out, OH, OW, outZoom, scale);
    if (chosen !== null) outline(ctx, [Math.floor(chosen / OW), chosen % OW, Math.floor(chosen / OW), chosen % OW], outZoom);
  };
  const choose = (k, keep) => {
    drawIn(k);
    drawOut(k);
    if (k !== null) text.textContent = `y[${d.channel}, ${Math.floor(k / OW)}, ${k % OW}] = ${d.texts[k]}`;
    if (keep) state.cell = k === null ? null : [Math.floor(k / OW), k % OW];
  };
  const current = state.cell ? state.cell[0] * OW + state.cell[1] : null;
  choose(current !== null && current < OH * OW ? current : null, false);
  for (const [type, keep] of [["mousemove", false], ["click", true]]) {
    outCanvas.addEventListener(type, (event) => {
      const at = cellAt(outCanvas, OH, OW, event);
      if (at) choose(at.row * OW + at.col, keep);
    });
  }
  const how = d.winners ? "each window's maximum marked" : "each output the mean of its window";
  return [el("div", { className: "figures" },
    figure(`input map ${d.channel} (${H}x${W}), windows outlined, ${how}`, inCanvas),
    figure(`output (${OH}x${OW}), range ${fmt(scale.lo)}..${fmt(scale.hi)}`, outCanvas)), text];
}

// ---- the layers between: activation, batch norm, dense, residual sum, flatten ----

// Two maps of the same size side by side on one colour scale; hovering a cell writes ``say(k)``.
function beforeAfter(captions, maps, h, w, say, id) {
  const all = maps.flat();
  const scale = scaleFor(Math.min(...all), Math.max(...all));
  const zoom = zoomFor(h, w, maps.length > 2 ? 170 : 230);
  const text = el("p", { className: "mono", id }, say(0));
  const canvases = maps.map(() => el("canvas", { className: "pickable" }));
  const draw = (k) => canvases.forEach((canvas, m) => {
    const ctx = drawCells(canvas, maps[m], h, w, zoom, scale);
    if (k !== null) outline(ctx, [Math.floor(k / w), k % w, Math.floor(k / w), k % w], zoom);
  });
  draw(0);
  for (const canvas of canvases) {
    canvas.addEventListener("mousemove", (event) => {
      const at = cellAt(canvas, h, w, event);
      if (!at) return;
      draw(at.row * w + at.col);
      text.textContent = say(at.row * w + at.col);
    });
  }
  return [el("div", { className: "figures" }, ...canvases.map((c, m) => figure(captions[m], c))), text];
}

function mapShape(step) {
  return step.shape.length === 3 ? step.shape.slice(1) : [1, step.shape[step.shape.length - 1]];
}

function activationView(d, step) {
  const [h, w] = step.shape.length === 3 ? step.shape.slice(1) : [1, d.input.length];
  const x = d.input.flat(), y = d.output.flat();
  const formula = d.formula.replace("y = ", "");
  const say = (k) => `[${Math.floor(k / w)}, ${k % w}]: ${d.kind === "ReLU" ? `max(0, ${fmt(x[k])})` : `${d.kind}(${fmt(x[k])})`} = ${fmt(y[k])}`;
  const facts = el("p", { className: "facts" }, `${d.formula}, for each value on its own. ` +
    (d.kind === "ReLU" ? `Of ${x.length} values, ${d.negative} were negative and became 0; the rest pass unchanged.` : `(${formula})`));
  return [facts, ...beforeAfter([`what it received (${h}x${w})`, "what it gives"], [x, y], h, w, say, "act-text")];
}

function batchnormView(d, step) {
  const two = step.shape.length === 3;
  const [h, w] = two ? step.shape.slice(1) : [1, 1];
  const x = two ? d.input.flat() : [d.input], y = two ? d.output.flat() : [d.output];
  const facts = el("p", { className: "facts" },
    `y = (x - mean) / sqrt(var + eps) x gamma + beta, with this channel's running statistics (evaluation mode): ` +
    `mean ${fmt(d.mean)}, var ${fmt(d.var)}, eps ${d.eps}, gamma ${fmt(d.gamma)}, beta ${fmt(d.beta)}; ` +
    `so y = ${fmt(d.scale)} x + ${fmt(d.shift)}.`);
  const say = (k) => `(${fmt(x[k])} - ${fmt(d.mean)}) / sqrt(${fmt(d.var)} + ${d.eps}) x ${fmt(d.gamma)} + ${fmt(d.beta)} = ${fmt(y[k])}`;
  return [facts, ...beforeAfter(["what it received", "what it gives"], [x, y], h, w, say, "bn-text")];
}

function denseView(d, step, last) {
  const name = last ? ` (${state.classes[d.neuron]})` : "";
  const text = el("p", { id: "dense-text", className: "mono" }, d.text);
  Object.assign(text.dataset, { value: d.value, sum: d.sum });
  const rows = d.top.map((t) => el("tr", {},
    el("td", {}, String(t.index)), el("td", {}, t.from ? `map ${t.from[0]} [${t.from[1]}, ${t.from[2]}]` : "-"),
    el("td", {}, fmt(t.input)), el("td", {}, fmt(t.weight)), el("td", { className: t.product < 0 ? "neg" : "posv" }, fmt(t.product))));
  const table = el("table", { className: "numbers contributions" },
    el("caption", {}, `the ${d.top.length} largest of ${d.inputs} products input x weight`),
    el("tr", {}, ...["input", "from", "x", "w", "x w"].map((h) => el("th", {}, h))), ...rows);
  const facts = el("p", { className: "facts" },
    `Neuron ${d.neuron}${name} adds up all ${d.inputs} inputs, each times its own weight, and its bias: ` +
    `the positive products give ${fmt(d.positive)}, the negative ${fmt(d.negative)}, the bias ${fmt(d.bias)}, ` +
    `so y = ${fmt(d.value)}.` + (last ? " This is the logit of the class; the softmax turns the logits into probabilities." : ""));
  const parts = [facts, text, table];
  if (d.origin) {
    const [C, H, W] = d.origin;
    const values = dequantize(d.products);
    const summed = new Float32Array(H * W);
    for (let c = 0; c < C; c++) for (let k = 0; k < H * W; k++) summed[k] += values[c * H * W + k];
    const lo = Math.min(...summed), hi = Math.max(...summed);
    const canvas = el("canvas");
    drawCells(canvas, summed, H, W, zoomFor(H, W, 140), scaleFor(Math.min(lo, -1e-9), hi));
    parts.push(figure(`x w summed over the ${C} maps at each place (${H}x${W}): red helps, blue hurts`, canvas));
  }
  if (last) {
    const button = el("button", { type: "button", id: "to-softmax" }, "From logits to probabilities: the softmax");
    button.addEventListener("click", selectSoftmax);
    parts.push(button);
  }
  return parts;
}

function addView(d, step) {
  const [h, w] = mapShape(step);
  const a = d.main.flat(), b = d.shortcut.flat(), y = d.output.flat();
  const say = (k) => `${fmt(a[k])} + ${fmt(b[k])} = ${fmt(y[k])}`;
  const facts = el("p", { className: "facts" }, "A residual block adds what its main path made to what came in " +
    "(through the shortcut, which is the block's input itself or a 1x1 convolution of it).");
  return [facts, ...beforeAfter(["main path", "shortcut", "sum"], [a, b, y], h, w, say, "add-text")];
}

const VIEWS = { activation: activationView, batchnorm: batchnormView, dense: denseView, add: addView };

function flattenView(step, channel) {
  const source = state.layers[step.sources[0]];
  const shape = source ? source.shape : [];
  const facts = el("p", { className: "facts" });
  if (shape.length !== 3) {
    facts.textContent = `Flatten turns its input into one vector of ${step.shape[0]} values; nothing is computed.`;
    return [facts];
  }
  const [C, H, W] = shape;
  const f = Math.min(channel, C * H * W - 1), c = Math.floor(f / (H * W)), i = Math.floor((f % (H * W)) / W), j = f % W;
  facts.textContent = `Flatten lays the ${C} maps of ${H}x${W} end to end, row by row, as one vector of ${C * H * W}: ` +
    `value [c, i, j] goes to position c x ${H * W} + i x ${W} + j. Nothing is computed; the dense layer after it ` +
    `gives every value a weight of its own.`;
  const v = state.values[step.index][f];
  const example = el("p", { className: "mono", id: "flatten-text" },
    `position ${f} = ${c} x ${H * W} + ${i} x ${W} + ${j} <- map ${c} [${i}, ${j}] = ${fmt(v)}`);
  return [facts, example];
}

function mapView(step, channel) {
  const g = geometry(step.shape);
  const per = g.h * g.w;
  const values = g.vector ? state.values[step.index] : state.values[step.index].subarray(channel * per, (channel + 1) * per);
  const enc = state.forward.layers[step.index];
  const canvas = el("canvas");
  drawCells(canvas, values, g.h, g.w, zoomFor(g.h, g.w, 240), scaleFor(enc.min, enc.max));
  const facts = el("p", { className: "facts" }, "Hover for values (8-bit, as the heatmaps travel).");
  canvas.addEventListener("mousemove", (event) => {
    const at = cellAt(canvas, g.h, g.w, event);
    if (at) facts.textContent = `[${at.row}, ${at.col}] = ${fmt(values[at.row * g.w + at.col])}`;
  });
  return [figure(`${g.vector ? "the vector" : "map " + channel} of ${shapeText(step.shape)}`, canvas), facts];
}

// ---- the softmax: from logits to probabilities, with the real numbers ----

function softmaxView() {
  const f = state.forward, z = f.logits;
  const top = Math.max(...z);
  const e = z.map((v) => Math.exp(v - top));
  const total = e.reduce((a, b) => a + b, 0);
  const rows = state.classes.map((name, k) => el("tr", { className: f.tied.includes(k) ? "top" : "" },
    el("td", { className: "name" }, name), el("td", {}, fmt(z[k])), el("td", {}, fmt(z[k] - top)),
    el("td", {}, fmt(e[k])), el("td", {}, `${fmt(e[k] / total)} = ${pct(e[k] / total)}`)));
  const table = el("table", { className: "numbers softmax", id: "softmax-table" },
    el("caption", {}, "each class's logit z, then p = e^(z - max z) / the sum of them all"),
    el("tr", {}, ...["class", "logit z", "z - max", "e^(z - max)", "p"].map((h) => el("th", {}, h))), ...rows,
    el("tr", { className: "sum" }, el("td", {}, "sum"), el("td"), el("td"), el("td", {}, fmt(total)), el("td", {}, "1")));
  const tie = f.tied.length > 1 ?
    `The ${f.tied.length} largest logits are equal (to float32 rounding), so their probabilities are too: a tie, ` +
    "not a prediction. A blank image through a network often gives one." :
    `The largest logit, ${state.classes[f.predicted]}'s ${fmt(z[f.predicted])}, wins: ${pct(f.probabilities[f.predicted])}.`;
  return [el("h3", {}, "Softmax: logits to probabilities"),
    el("p", { className: "facts" }, "p_k = e^(z_k) / (e^(z_1) + ... + e^(z_n)): exponentials make every score " +
      "positive and stretch the gaps, the division makes them sum to 1. Subtracting the largest logit first " +
      "changes nothing but keeps e^z from overflowing."), table, el("p", { className: "facts", id: "softmax-tie" }, tie)];
}

// ---- below each view: the test images a map likes best, and another run's maps for the layer ----

function extras(step, channel) {
  const parts = [];
  const run = state.runs[state.run];
  if (run.test_images > 0 && !["Add", "Flatten"].includes(step.kind)) {
    const button = el("button", { type: "button", id: "top-images" }, `Test images that excite ${step.shape.length === 1 ? "neuron" : "map"} ${channel} most`);
    const grid = el("div", { className: "thumbs", id: "thumbs" });
    button.addEventListener("click", () => topImages(step.index, channel, grid, button));
    parts.push(el("section", { className: "extra" }, button, grid));
  }
  if (state.runs.length > 1 && step.shape.length === 3) parts.push(compareSection(step));
  return parts;
}

async function topImages(layer, channel, grid, button) {
  button.disabled = true;
  grid.replaceChildren(el("p", { className: "note" }, "Ranking the test set (once per checkpoint; cached in the run directory)…"));
  try {
    const answer = await api(`/api/runs/${state.run}/top?layer=${layer}&channel=${channel}`);
    grid.replaceChildren(...answer.images.map((item) => {
      const canvas = el("canvas", { width: state.side[1], height: state.side[0] });
      const ctx = canvas.getContext("2d"), img = ctx.createImageData(state.side[1], state.side[0]);
      const bytes = Uint8Array.from(atob(item.image), (ch) => ch.charCodeAt(0));
      paintImage(bytes, img.data);
      ctx.putImageData(img, 0, 0);
      const thumb = el("button", { type: "button", className: "thumb", title: `test image ${item.index}: show it` },
        canvas, el("span", {}, `#${item.index} ${item.class}`), el("span", { className: "note" }, `peak ${fmt(item.value)}`));
      thumb.addEventListener("click", () => hooks.showTestImage(item.index));
      return thumb;
    }));
  } catch (error) {
    grid.replaceChildren();
    showError(error);
  } finally {
    button.disabled = false;
  }
}

const layersOf = {}; // run id -> its layers, for comparing

function compareSection(step) {
  const others = state.runs.filter((r) => r.id !== state.run);
  const choice = el("select", { id: "compare-run", ariaLabel: "compare with run" },
    ...others.map((r) => new Option(`${r.id}: ${r.name} (${r.model})`, r.id)));
  const out = el("div", { className: "figures", id: "compare" });
  const button = el("button", { type: "button", id: "compare-show" }, "Show side by side");
  const show = () => compare(step, Number(choice.value), out);
  button.addEventListener("click", show);
  choice.addEventListener("change", show);
  return el("section", { className: "extra" }, el("div", { className: "row" }, el("label", {}, `layer ${step.name} here and in run `, choice), button), out);
}

async function compare(step, other, out) {
  try {
    layersOf[other] = layersOf[other] || (await api(`/api/runs/${other}/layers`)).layers;
    const theirs = layersOf[other].find((s) => s.name === step.name && s.kind === step.kind);
    if (!theirs) {
      out.replaceChildren(el("p", { className: "note" }, `run ${other} has no layer ${step.name} (${step.kind})`));
      return;
    }
    const f = await api(`/api/runs/${other}/forward`, post({ image: bytesTo64(state.image) }));
    const panels = [[state.run, step, state.values[step.index], state.forward.layers[step.index]],
      [other, theirs, dequantize(f.layers[theirs.index]), f.layers[theirs.index]]];
    out.replaceChildren(...panels.map(([id, s, values, enc]) => {
      const g = geometry(s.shape);
      const canvas = sized(el("canvas", { className: "compare-maps" }), Math.min(300, g.cols * (g.w + 1) * 3));
      drawGrid(canvas, values, g, scaleFor(enc.min, enc.max), state.selected.channel);
      const r = state.runs[id];
      return figure(`run ${id}: ${r.name} (${r.model}), layer ${s.name} ${s.kind} ${shapeText(s.shape)}, ` +
        `range ${fmt(enc.min)}..${fmt(enc.max)}`, el("div", { className: "swatch-line", style: `border-color:${runColour(id)}` }, canvas));
    }));
  } catch (error) {
    showError(error);
  }
}
