// cnnlab explore: the panels beside the network: where the model looks (saliency), the run's training
// (followed live while it trains), and the padding / stride / kernel widget.
import { $, api, brightness, bytesTo64, dequantize, el, emit, events, fmt, post, showError, state } from "./common.js";
import { drawCells, drawGrid, flatScale, lineChart, rgb, scaleFor } from "./draw.js";

export function setupPanels() {
  setupLooks();
  setupTraining();
  setupWidget();
}

// ---- where the model looks ----

const LOOKS = {
  gradcam: "Grad-CAM: the layer's maps weighted by how much the class's score gains from each, kept where positive",
  gradient: "gradient: how much the class's score changes per unit change of each pixel (its size)",
  occlusion: "occlusion: how much the class's probability drops when a patch of background covers each place",
};
let looking = 0; // the latest request; older answers are dropped

function setupLooks() {
  for (const id of ["look-method", "look-layer", "look-target"]) $(id).addEventListener("change", look);
  events.addEventListener("run", fillLookChoices);
  events.addEventListener("render", look);
  fillLookChoices();
}

function fillLookChoices() {
  const convs = state.layers.filter((s) => s.kind === "Conv2d");
  $("look-layer").replaceChildren(new Option("the last convolution", ""),
    ...convs.map((s) => new Option(`layer ${s.name}: ${s.detail}`, s.index)));
  $("look-target").replaceChildren(new Option("the predicted class", ""), ...state.classes.map((n, k) => new Option(n, k)));
  $("look-layer").disabled = $("look-method").value !== "gradcam";
}

async function look() {
  const method = $("look-method").value;
  $("look-layer").disabled = method !== "gradcam";
  const layer = method === "gradcam" && $("look-layer").value !== "" ? Number($("look-layer").value) : null;
  const target = $("look-target").value === "" ? null : Number($("look-target").value);
  const ticket = ++looking;
  try {
    const answer = await api(`/api/runs/${state.run}/saliency`,
      post({ image: bytesTo64(state.image), method, layer, target }));
    if (ticket !== looking) return;
    drawLook(answer);
  } catch (error) {
    showError(error);
  }
}

function drawLook(answer) {
  const [H, W] = state.side;
  const values = dequantize(answer.map);
  let lo = Infinity, hi = -Infinity;
  for (const v of values) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const scale = scaleFor(lo, hi), top = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const canvas = $("look-canvas"), zoom = canvas.width / W;
  const ctx = canvas.getContext("2d");
  for (let k = 0; k < H * W; k++) {
    const pixel = brightness(state.image, k), a = Math.min(1, Math.abs(values[k]) / top) * 0.85;
    const [r, g, b] = rgb(values[k], scale);
    const mix = (c) => Math.round(pixel * (1 - a) + c * a);
    ctx.fillStyle = `rgb(${mix(r)},${mix(g)},${mix(b)})`;
    ctx.fillRect((k % W) * zoom, Math.floor(k / W) * zoom, zoom, zoom);
  }
  const where = answer.method === "gradcam" ? ` of layer ${state.layers[answer.layer].name}` : "";
  $("look-note").textContent = `${LOOKS[answer.method]}${where}, for ${answer.class}; values ${fmt(lo)}..${fmt(hi)}` +
    (lo < 0 ? " (blue: covering it made the class more likely)" : "") + ".";
  canvas.dataset.method = answer.method;
  canvas.dataset.target = answer.target;
  state.look = answer;
}

// ---- the run's training, followed live ----

const POLL_MS = 2000;

function setupTraining() {
  events.addEventListener("run", showTraining);
  showTraining();
  setInterval(poll, POLL_MS);
}

async function poll() {
  for (const run of state.runs.filter((r) => !r.finished)) {
    try {
      const progress = await api(`/api/runs/${run.id}/progress`);
      Object.assign(run, progress, { id: run.id });
      run.history = progress.history;
      if (progress.version !== state.versions[run.id]) {
        state.versions[run.id] = progress.version;
        if (run.id === state.run) {
          showTraining();
          emit("version", run.id);
        }
      }
    } catch (error) {
      showError(error);
    }
  }
}

async function showTraining() {
  const run = state.runs[state.run];
  try {
    const progress = run.history ? run : await api(`/api/runs/${state.run}/progress`);
    run.history = progress.history;
    const status = run.finished ? `finished: ${run.epochs_done} epochs, test accuracy ${(100 * run.test_accuracy).toFixed(2)}%` :
      `training: epoch ${run.epochs_done} of ${run.epochs} saved; this page follows each new one`;
    $("training-status").textContent = status;
    $("training-status").dataset.epochs = run.epochs_done;
    const h = run.history;
    lineChart($("curve-loss"), [
      { name: "train", colour: "#1f6feb", values: h.map((r) => r.train_loss) },
      { name: "valid", colour: "#e8590c", values: h.map((r) => r.valid_loss).filter((v) => v !== null) },
    ], "loss");
    lineChart($("curve-accuracy"), [
      { name: "train", colour: "#1f6feb", values: h.map((r) => r.train_accuracy) },
      { name: "valid", colour: "#e8590c", values: h.map((r) => r.valid_accuracy).filter((v) => v !== null) },
    ], "accuracy");
    await drawFilters();
  } catch (error) {
    showError(error);
  }
}

async function drawFilters() {
  const answer = await api(`/api/runs/${state.run}/filters`);
  const [O, C, kh, kw] = answer.shape;
  const values = Float32Array.from(answer.weights.flat(3));
  const top = Math.max(...values.map(Math.abs)) || 1;
  const g = { maps: O * C, h: kh, w: kw, cols: Math.min(O * C, 8), gap: 1 };
  g.rows = Math.ceil(g.maps / g.cols);
  const canvas = $("filters");
  drawGrid(canvas, values, g, scaleFor(-top, top));
  canvas.dataset.version = answer.version;
  $("filters-note").textContent = `layer ${answer.name}'s ${O} kernels of ${C}x${kh}x${kw} as they are now; ` +
    `blue < 0 < red, |w| up to ${fmt(top)}`;
}

// ---- padding, stride, kernel: the output-size formula ----

const widget = { answer: null, k: 0, timer: null };

function setupWidget() {
  for (const id of ["w-size", "w-kernel", "w-padding", "w-stride", "w-dilation"]) $(id).addEventListener("input", widgetChanged);
  $("w-play").addEventListener("click", () => {
    clearInterval(widget.timer);
    widget.timer = setInterval(() => stepWidget(1), 500);
  });
  $("w-step").addEventListener("click", () => {
    clearInterval(widget.timer);
    stepWidget(1);
  });
  widgetChanged();
}

async function widgetChanged() {
  const [n, k, p, s, d] = ["w-size", "w-kernel", "w-padding", "w-stride", "w-dilation"].map((id) => Number($(id).value));
  try {
    widget.answer = await api(`/api/shape?size=${n}&kernel=${k}&padding=${p}&stride=${s}&dilation=${d}`);
    $("w-formula").textContent = `output side = floor((n + 2p - d(k - 1) - 1) / s) + 1 = ${widget.answer.formula}`;
    $("w-formula").classList.remove("bad");
  } catch (error) {
    widget.answer = null;
    $("w-formula").textContent = String(error.message || error);
    $("w-formula").classList.add("bad");
  }
  widget.k = 0;
  drawWidget();
}

function stepWidget(by) {
  if (!widget.answer) return;
  widget.k = (widget.k + by) % (widget.answer.out * widget.answer.out);
  drawWidget();
}

function drawWidget() {
  const a = widget.answer;
  const inCanvas = $("w-input"), outCanvas = $("w-output");
  if (!a) {
    inCanvas.getContext("2d").clearRect(0, 0, inCanvas.width, inCanvas.height);
    return;
  }
  const { size: n, kernel: k, padding: p, stride: s, dilation: d, out } = a;
  const zoom = Math.max(4, Math.floor(220 / (n + 2 * p)));
  const zeros = new Array(n * n).fill(0);
  const ctx = drawCells(inCanvas, zeros, n, n, zoom, flatScale(200, 208, 222), [p, p, p, p], true);
  const i = Math.floor(widget.k / out), j = widget.k % out;
  ctx.fillStyle = "rgba(18, 183, 106, 0.75)";
  for (let a0 = 0; a0 < k; a0++) for (let b0 = 0; b0 < k; b0++) ctx.fillRect((j * s + b0 * d) * zoom + 1, (i * s + a0 * d) * zoom + 1, zoom - 2, zoom - 2);
  const outZoom = Math.max(4, Math.floor(160 / out));
  const shown = Array.from({ length: out * out }, (_, m) => (m <= widget.k ? 1 : null));
  const octx = drawCells(outCanvas, shown, out, out, outZoom, flatScale(31, 111, 235), [0, 0, 0, 0], true);
  octx.strokeStyle = "#12b76a";
  octx.lineWidth = 2;
  octx.strokeRect(j * outZoom + 1, i * outZoom + 1, outZoom - 2, outZoom - 2);
  $("w-note").textContent = `input ${n}x${n}, padding ${p} (hatched) on each side, a ${k}x${k} kernel` +
    (d > 1 ? ` dilated by ${d}` : "") + ` moving ${s} at a time: output ${out}x${out}; window for output [${i}, ${j}] shown.`;
}
