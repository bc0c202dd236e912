// cnnlab explore: the page's entry. The input (drawing, test images, uploads), the forward passes of
// every run, the prediction and the compact overview of the layers; close-ups and the other panels
// live in closeup.js and panels.js. Plain JavaScript modules, nothing fetched but this server's API.
import {
  $, api, bytesFrom64, bytesTo64, dequantize, el, emit, events, fmt, hooks, normalisationText, normalised,
  paintImage, pct, post, runColour, shapeText, showError, state, tieText,
} from "./common.js";
import { drawGrid, drawScaleBar, geometry, hit, outline, rgb, scaleFor } from "./draw.js";
import { keepSelection, renderCloseup, select, selectSoftmax } from "./closeup.js";
import { setupPanels } from "./panels.js";

const OVERVIEW_MAPS = 16; // maps per layer in the overview; all of them one click away

// ---- the input: drawing, shifting, showing ----

const plane = () => state.side[0] * state.side[1];
const pixels = () => state.channels * plane(); // every value of the image, all channels

function drawInput() {
  const canvas = $("draw"), ctx = canvas.getContext("2d");
  const [H, W] = state.side;
  const small = el("canvas", { width: W, height: H });
  const sctx = small.getContext("2d"), img = sctx.createImageData(W, H);
  paintImage(state.image, img.data);
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  const field = state.detail && state.detail.cell && state.detail.cell.field;
  if (field) outline(ctx, field, canvas.width / W);
}

let stroke = null;
function brushAt(x, y) {
  const radius = parseFloat($("brush").value);
  const [H, W] = state.side;
  for (let r = Math.floor(y - radius - 1); r <= Math.ceil(y + radius + 1); r++) {
    for (let c = Math.floor(x - radius - 1); c <= Math.ceil(x + radius + 1); c++) {
      if (r < 0 || c < 0 || r >= H || c >= W) continue;
      const d = Math.hypot(r + 0.5 - y, c + 0.5 - x);
      const v = Math.round(255 * Math.max(0, Math.min(1, radius + 0.5 - d)));
      for (let k = r * W + c; k < pixels(); k += plane()) state.image[k] = Math.max(state.image[k], v); // white: every channel
    }
  }
}
function pointerPos(event) {
  const rect = $("draw").getBoundingClientRect();
  return [((event.clientX - rect.left) / rect.width) * state.side[1], ((event.clientY - rect.top) / rect.height) * state.side[0]];
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
    showPixel(event);
    if (stroke === null) return;
    strokeTo(pointerPos(event));
    changed();
  });
  canvas.addEventListener("pointerleave", () => ($("pixel").textContent = "Hover the image for a pixel's value."));
  const end = () => (stroke = null);
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

// The pixel under the pointer, and the number the model is given for it.
function showPixel(event) {
  const [x, y] = pointerPos(event).map(Math.floor);
  const [H, W] = state.side;
  if (x < 0 || y < 0 || x >= W || y >= H || !state.normalisation) return;
  const n = state.normalisation;
  $("pixel").textContent = `pixel [${y}, ${x}]: ` + state.channelNames.map((name, c) => {
    const v = state.image[c * plane() + y * W + x];
    const which = state.channels > 1 ? `${name} ` : "";
    return `${which}${v}: the model sees (${v} / ${fmt(n.pixel_max)} - ${fmt(n.mean[c])}) / ` +
      `${fmt(n.std[c])} = ${fmt(normalised(v, c))}`;
  }).join("; ");
}

function shift(dr, dc) {
  const [H, W] = state.side, out = new Uint8Array(pixels());
  for (let p = 0; p < pixels(); p += plane()) {
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        const sr = r - dr, sc = c - dc;
        if (sr >= 0 && sc >= 0 && sr < H && sc < W) out[p + r * W + c] = state.image[p + sr * W + sc];
      }
    }
  }
  state.image = out;
  changed();
}
const ARROWS = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
function setupKeys() {
  document.addEventListener("keydown", (event) => {
    const tag = (event.target && event.target.tagName) || "";
    if (!(event.key in ARROWS) || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(tag)) return;
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

// ---- forward passes: the selected run with every activation, the others for their prediction ----

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
      renderPrediction();
      if (state.selected) await renderCloseup();
      emit("render");
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

// ---- the prediction, all runs together ----

function renderPrediction() {
  const forwards = state.runs.map((r) => (r.id === state.run ? state.forward : state.others[r.id]));
  $("legend").replaceChildren(...state.runs.map((r, k) => {
    const f = forwards[k];
    const tied = f && f.tied.length > 1;
    return el("div", { className: "prediction" + (tied ? " tie" : "") },
      el("span", { className: "swatch", style: `background:${runColour(k)}` }),
      `${r.name} (${r.model}): `,
      el(tied ? "span" : "b", { className: "answer" }, tieText(f, state.classes)));
  }));
  const top = state.forward && state.forward.tied.length === 1 ? state.forward.predicted : -1;
  const mine = state.runs.findIndex((r) => r.id === state.run);
  $("bars").replaceChildren(...state.classes.map((name, c) => {
    const track = el("div", { className: "bar-track" }, ...forwards.map((f, k) => {
      const p = f ? f.probabilities[c] : 0;
      return el("div", { className: "bar-line", title: `${state.runs[k].name}: ${pct(p)}` },
        el("div", { className: "bar", style: `width:${Math.max(0.5, 100 * p)}%;background:${runColour(k)}` }));
    }));
    const f = forwards[mine];
    return el("div", { className: "bar-row" + (c === top ? " top" : "") }, el("span", { className: "label" }, name), track,
      el("span", { className: "bar-pct", title: "the selected run's probability" }, f ? pct(f.probabilities[c]) : ""));
  }));
}

// ---- the overview: every layer, a few of its maps each, no sideways scrolling ----

function buildColumns() {
  const columns = $("columns");
  columns.replaceChildren();
  for (const layer of state.layers) {
    const g = geometry(layer.shape, OVERVIEW_MAPS);
    const last = layer.index === state.layers.length - 1;
    const col = el("div", { className: `layer depth-${Math.min(layer.depth, 2)}${last ? " logits" : ""}` });
    col.dataset.index = layer.index;
    const title = el("button", { type: "button", className: "layer-title", title: `${layer.name}: ${layer.kind} ${layer.detail}` },
      el("span", { className: "idx" }, layer.name), el("span", { className: "kind" }, layer.kind));
    title.addEventListener("click", () => select(layer.index, state.selected && state.selected.layer === layer.index ? state.selected.channel : 0));
    col.append(title, el("div", { className: "layer-detail", title: layer.detail }, layer.detail));
    if (last && layer.shape.length === 1 && layer.shape[0] === state.classes.length) {
      col.append(el("div", { className: "logit-list" }));
    } else {
      const canvas = el("canvas", { className: "maps" });
      canvas.addEventListener("click", (event) => {
        const at = hit(canvas, g, event);
        if (at) select(layer.index, g.vector ? at.map * g.h * g.w + at.index : at.map);
      });
      canvas.addEventListener("mousemove", (event) => {
        const at = hit(canvas, g, event);
        if (!at) return (canvas.title = "");
        const which = g.vector ? `neuron ${at.index}` : `map ${at.map}, [${at.row}, ${at.col}]`;
        canvas.title = `${which} = ${fmt(valueAt(layer.index, at.map, at.row, at.col, g))}`;
      });
      col.append(canvas);
      if (g.all > g.maps) {
        const more = el("button", { type: "button", className: "more" }, `+${g.all - g.maps} more`);
        more.addEventListener("click", () => select(layer.index, Math.min(g.maps, g.all - 1)));
        col.append(more);
      }
    }
    col.append(el("div", { className: "scale" }, el("span", { className: "lo" }), el("canvas"), el("span", { className: "hi" })),
      el("div", { className: "shape" }, shapeText(layer.shape)));
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
    const canvas = col.querySelector("canvas.maps");
    if (canvas) drawGrid(canvas, state.values[index], geometry(layer.shape, OVERVIEW_MAPS), scale, mark);
    else renderLogits(col.querySelector(".logit-list"), index, scale);
    drawScaleBar(col.querySelector(".scale canvas"), scale);
    col.querySelector(".lo").textContent = fmt(scale.lo);
    col.querySelector(".hi").textContent = fmt(scale.hi);
    col.classList.toggle("selected", !!(state.selected && state.selected.layer === index));
  }
}

// The last layer's values are the logits: one per class, named, with its real value.
function renderLogits(list, index, scale) {
  const logits = state.forward.logits;
  list.replaceChildren(...state.classes.map((name, c) => {
    const [r, g, b] = rgb(logits[c], scale);
    const row = el("button", { type: "button", className: "logit" + (state.forward.tied.includes(c) ? " top" : "") },
      el("span", { className: "chip", style: `background:rgb(${r},${g},${b})` }), el("span", { className: "name" }, name),
      el("span", { className: "value" }, fmt(logits[c])));
    row.addEventListener("click", () => select(index, c));
    return row;
  }));
}

// ---- test images, uploads, runs ----

async function testImage(query, describe) {
  try {
    const t = await api(`/api/runs/${state.run}/test?${query}`);
    state.testIndex = t.index;
    state.upload = null;
    $("test-index").value = t.index;
    setImage(t.image, describe(t));
  } catch (error) {
    showError(error);
  }
}
function showTestImage(index) {
  return testImage(`index=${index}`, (t) => `test image ${t.index}: ${t.class}`);
}

async function sendUpload() {
  const file = state.upload;
  if (!file) return;
  try {
    const answer = await api(`/api/image?run=${state.run}&invert=${$("invert").value}`, {
      method: "POST",
      headers: { "Content-Type": ["image/png", "image/jpeg"].includes(file.type) ? file.type : "application/octet-stream" },
      body: file,
    });
    setImage(answer.image, `uploaded ${file.name}, made ${state.side.join("x")}${answer.inverted ? " (inverted)" : ""}`);
  } catch (error) {
    showError(error);
  }
}

function setupInputs() {
  $("clear").addEventListener("click", () => {
    state.image = new Uint8Array(pixels());
    state.upload = null;
    setNote("a blank image: draw on it");
    changed();
  });
  $("load-test").addEventListener("click", () => showTestImage(Number($("test-index").value)));
  $("next-class").addEventListener("click", () =>
    testImage(`class=${$("test-class").value}&after=${state.testIndex}`, (t) => `test image ${t.index}: ${t.class}`));
  $("mistake").addEventListener("click", () =>
    testImage(`mistake=${Math.floor(Math.random() * 1e9)}`,
      (t) => `test image ${t.index}: a ${t.class} that this run takes for ${state.classes[t.predicted]}`));
  $("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    state.upload = file;
    event.target.value = ""; // so choosing the same file again is a change too
    await sendUpload();
  });
  $("invert").addEventListener("change", sendUpload); // applied to the photo already uploaded
  $("softmax").addEventListener("click", selectSoftmax);
  $("run").addEventListener("change", async () => {
    const before = state.selected && state.layers[state.selected.layer];
    state.run = Number($("run").value);
    await loadRun();
    keepSelection(before);
    emit("run");
    refresh();
  });
}

async function loadRun() {
  const description = await api(`/api/runs/${state.run}/layers`);
  state.layers = description.layers;
  state.classes = description.classes;
  state.normalisation = description.normalisation;
  state.traced = description.traced;
  const [C, H, W] = description.input_shape;
  state.channelNames = description.channels;
  if (C !== state.channels || H !== state.side[0] || W !== state.side[1]) {
    state.channels = C;
    state.side = [H, W];
    state.image = new Uint8Array(C * H * W);
  }
  $("norm").textContent = `The model sees each pixel as ${normalisationText()}.`;
  describeRun();
  const select = $("test-class");
  select.replaceChildren(...state.classes.map((name, k) => new Option(name, k)));
  buildColumns();
}

function describeRun() {
  const run = state.runs[state.run];
  const accuracy = run.finished ? `test accuracy ${(100 * run.test_accuracy).toFixed(2)}%` :
    `training: epoch ${run.epochs_done} of ${run.epochs}`;
  $("run-info").textContent = `${run.model}, ${run.backend} backend, ${accuracy}` + (state.traced ?
    "; its layers as its forward() called them (work between them, such as a functional relu, has no column)" : "");
  $("test-controls").disabled = run.test_images === 0;
  $("test-note").textContent = run.test_note;
  $("test-index").max = Math.max(0, run.test_images - 1);
}

async function start() {
  setupDrawing();
  setupKeys();
  setupInputs();
  try {
    state.runs = (await api("/api/runs")).runs;
    for (const r of state.runs) state.versions[r.id] = r.version;
    $("run").replaceChildren(...state.runs.map((r) => new Option(`${r.id}: ${r.name} (${r.model})`, r.id)));
    await loadRun();
    setupPanels();
    if (state.runs[state.run].test_images > 0) await showTestImage(0);
    else changed();
  } catch (error) {
    showError(error);
  }
}

// A run followed while training loaded a new epoch: the maps, the close-up and the prediction follow.
events.addEventListener("version", () => {
  describeRun();
  refresh();
});

// For tests and the curious: the state, and one map's values as the heatmap shows them.
window.cnnlab = {
  state,
  mapValues(layer, map) {
    const g = geometry(state.layers[layer].shape), per = g.h * g.w;
    return Array.from(state.values[layer].subarray(map * per, (map + 1) * per));
  },
};
Object.assign(hooks, { refresh, drawInput, showTestImage, valueAt, renderColumns });
start();
