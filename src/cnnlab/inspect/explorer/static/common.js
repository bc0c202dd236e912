// cnnlab explore: what every part of the page shares: its state, the API, numbers and small DOM helpers.
// Activations arrive as 8-bit codes with a float32 offset and scale per map:
// value = offset + code * scale (see cnnlab/inspect/explorer/network.py).

export const state = {
  runs: [],
  run: 0,
  layers: [],
  classes: [],
  normalisation: null, // {pixel_max, mean: [per channel], std: [per channel]}: x = (pixel / pixel_max - mean) / std
  channels: 1, // 1 gray, 3 red-green-blue: the run's input shape (C, H, W)
  traced: false, // a network with its own forward(): layers as one pass called them
  channelNames: ["gray"],
  side: [28, 28], // the input's height and width, from the run's input shape
  image: new Uint8Array(28 * 28), // C planes of H rows of W values, as the API sends an image
  forward: null, // the selected run's forward, with activations
  values: [], // per layer: Float32Array of every value, dequantized
  others: {}, // run id -> forward without activations
  selected: null, // {layer, channel}, or {softmax: true}
  cell: null, // [row, col] in the selected map
  detail: null, // the close-up's last answer
  upload: null, // the last uploaded File, so invert can be changed afterwards
  busy: false,
  pending: false,
  renders: 0,
  firstRender: null,
  testIndex: -1,
  versions: {}, // run id -> the version of its checkpoint the page shows
};

export const $ = (id) => document.getElementById(id);

export async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

export const post = (body) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

export function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
}

export function bytesFrom64(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
export const floatsFrom64 = (text) => new Float32Array(bytesFrom64(text).buffer);
export function bytesTo64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

export function dequantize(encoded) {
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

// Numbers as `cnnlab convolve --explain` writes them: integers whole, others to 4 significant digits.
export function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  return String(parseFloat(Number(v).toPrecision(4)));
}
export const pct = (p) => `${(100 * p).toFixed(1)}%`;
export const shapeText = (shape) => (shape.length === 1 ? String(shape[0]) : "(" + shape.join(", ") + ")");

// A run's colour: hues a golden angle apart never repeat, however many runs there are.
export function runColour(k) {
  return `hsl(${Math.round((215 + k * 137.508) % 360)}, 70%, 42%)`;
}

// el("p", {className: "note"}, "text", child, ...): an element with properties and children.
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// The classes tied for the top of a forward's softmax (more than one is a tie), as the server found them.
export function tieText(f, classes) {
  if (!f) return "…";
  if (f.tied.length > 1) {
    const names = f.tied.map((k) => classes[k]);
    const shown = names.length > 3 ? `${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : names.join(", ");
    return `a ${f.tied.length}-way tie: ${shown} (${pct(f.probabilities[f.tied[0]])} each)`;
  }
  return `${classes[f.predicted]} ${pct(f.probabilities[f.predicted])}`;
}

// What the model is given for a pixel value of a channel, with the normalisation written out.
export function normalised(pixel, channel = 0) {
  const n = state.normalisation;
  return (pixel / n.pixel_max - n.mean[channel]) / n.std[channel];
}
export function normalisationText() {
  const n = state.normalisation;
  return state.channelNames.map((name, c) => {
    const which = state.channels > 1 ? `${name}: ` : "";
    return `${which}x = (pixel / ${fmt(n.pixel_max)} - ${fmt(n.mean[c])}) / ${fmt(n.std[c])} ` +
      `(0 -> ${fmt(normalised(0, c))}, ${fmt(n.pixel_max)} -> ${fmt(normalised(n.pixel_max, c))})`;
  }).join("; ");
}

// An image as the API sends it (C planes of H x W) into RGBA pixels of a canvas ImageData:
// gray repeats its one value, colour takes a plane per channel.
export function paintImage(bytes, data, channels = state.channels) {
  const plane = bytes.length / channels;
  for (let i = 0; i < plane; i++) {
    const r = bytes[i], g = channels === 3 ? bytes[plane + i] : r, b = channels === 3 ? bytes[2 * plane + i] : r;
    data.set([r, g, b, 255], 4 * i);
  }
}

// A pixel's brightness, 0..255 (ITU-R 601 luma for colour, as Pillow's "L"), to mix overlays with.
export function brightness(bytes, i, channels = state.channels) {
  if (channels !== 3) return bytes[i];
  const plane = bytes.length / 3;
  return 0.299 * bytes[i] + 0.587 * bytes[plane + i] + 0.114 * bytes[2 * plane + i];
}

// Listeners for what changes: "run" (another run chosen), "render" (a new forward drawn),
// "version" (a run followed while training loaded a new epoch).
export const events = new EventTarget();
export const emit = (name, detail) => events.dispatchEvent(new CustomEvent(name, { detail }));

// Functions the entry module (explore.js) owns and the others call: refresh, drawInput,
// showTestImage, valueAt, renderColumns. Filled in by explore.js before anything runs.
export const hooks = {};
