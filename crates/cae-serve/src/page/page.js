// The inspection page's behaviour: reads the model card from GET /v1/model, then sends each
// picked or dropped file on its own to POST /v1/score?heatmap=1 (multipart, so the server's
// messages name the file) and draws its answer: verdict, score against the threshold,
// normalised score, heatmap; or the server's {"error"} text when it refuses the file.
"use strict";

/** How many files are in flight at once; the server batches them for the model. */
const IN_FLIGHT = 4;

const $ = (id) => document.getElementById(id);

/** The run has a threshold; null until /v1/model answered. */
let thresholded = null;
/** The heatmap's four panels, for its alt text (as `plot::anomaly_overlay` titles them). */
let panels = "input, reconstruction, error map and overlay";
/** Result counts for the summary line. */
const counts = { pending: 0, normal: 0, anomalous: 0, scored: 0, rejected: 0 };

/** A score to four significant digits (scores run from 1e-5 to 1e3). */
function number(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-4 || a >= 1e5) ? x.toExponential(3) : x.toPrecision(4);
}

/** A new element, with its text and class when given. */
function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

/** The score kind with its parameters: `mse`, `ssim (window 11)`. */
function scoreKind(score) {
  if (!score || typeof score !== "object") return String(score);
  const rest = Object.entries(score)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`);
  return rest.length ? `${score.kind} (${rest.join(", ")})` : score.kind;
}

/** How a threshold was fitted: `percentile 95`, `fpr 0.01`, `manual`. */
function method(m) {
  if (m === null || m === undefined) return "";
  if (typeof m !== "object") return String(m);
  return Object.entries(m)
    .map(([k, v]) => (v === null || typeof v === "object" ? k : `${k} ${v}`))
    .join(", ");
}

function renderModel(m) {
  const dl = document.createElement("dl");
  const row = (term, value, detail) => {
    const div = el("div");
    div.append(el("dt", term));
    const dd = el("dd", value);
    if (detail) dd.append(el("span", detail, "detail"));
    div.append(dd);
    dl.append(div);
  };
  const a = m.architecture || {};
  row("Architecture", a.name, a.description);
  row(
    "Parameters",
    Number(a.parameters).toLocaleString("en"),
    `code ${a.code_shape} (${a.code_len} values)`,
  );
  const input = m.input || {};
  row(
    "Input",
    `${input.shape} (C×H×W)`,
    input.resized
      ? "other sizes are resized to it"
      : "other sizes are scored at their own size",
  );
  row("Channels", String(input.channels), input.channels_converted ? "converted" : "");
  row("Score", scoreKind(m.score));
  const t = m.threshold || {};
  if (t.fitted) {
    const on = t.fitted_on || {};
    const fitted =
      on.normal !== undefined
        ? `${method(t.method)}; fitted on ${on.normal} normal, ${on.anomalous} anomalous images`
        : method(t.method);
    row("Threshold", number(t.image), fitted);
  } else {
    row("Threshold", "none fitted", "scores only, no verdicts");
  }
  const summary = (m.training || {}).summary;
  if (summary && summary.epochs !== undefined) {
    row("Training", `${summary.epochs} epochs`, `best loss ${number(summary.best_loss)}`);
  }
  row("Run", m.run);
  $("model").replaceChildren(dl);

  thresholded = Boolean(t.fitted);
  const last = thresholded ? "predicted mask" : "overlay";
  panels =
    m.score && m.score.kind === "mask"
      ? `input, predicted map, anomaly map and ${last}`
      : `input, reconstruction, error map and ${last}`;
  if (!thresholded) {
    $("no-threshold-note").textContent = t.note || "";
    $("no-threshold").hidden = false;
  }
  $("input-hint").textContent = `The model takes ${input.shape}.`;
  document.title = `cae serve: ${a.name}, ${input.shape}`;
}

async function loadModel() {
  try {
    const response = await fetch("v1/model");
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    renderModel(body);
  } catch (e) {
    $("model").replaceChildren(el("p", `Cannot read /v1/model: ${e.message}`, "error"));
  }
}

function summarise() {
  const done = counts.normal + counts.anomalous + counts.scored + counts.rejected;
  if (done + counts.pending === 0) {
    $("summary").textContent = "No images scored yet.";
  } else {
    const parts = [];
    if (counts.anomalous) parts.push(`${counts.anomalous} anomalous`);
    if (counts.normal) parts.push(`${counts.normal} normal`);
    if (counts.scored) parts.push(`${counts.scored} scored without a verdict`);
    if (counts.rejected) parts.push(`${counts.rejected} rejected`);
    if (counts.pending) parts.push(`${counts.pending} scoring`);
    $("summary").textContent = `${done + counts.pending} image${done + counts.pending === 1 ? "" : "s"}: ${parts.join(", ")}.`;
  }
  $("clear").disabled = counts.pending > 0 || done === 0;
}

/** Moves a card to its final state and updates the counts. */
function settle(card, state) {
  counts.pending -= 1;
  counts[state] += 1;
  card.dataset.state = state;
  card.removeAttribute("aria-busy");
  summarise();
}

function showAnswer(card, name, r) {
  const verdict = card.querySelector(".verdict");
  const anomalous = r.is_anomaly;
  const state = anomalous === true ? "anomalous" : anomalous === false ? "normal" : "scored";
  verdict.textContent =
    state === "anomalous" ? "Anomalous" : state === "normal" ? "Normal" : "No verdict";
  card.querySelector(".score").textContent = number(r.score);
  card.querySelector(".threshold").textContent =
    r.threshold === null || r.threshold === undefined ? "none fitted" : number(r.threshold);
  const normalized = r.normalized_score;
  const hasNormalized = typeof normalized === "number";
  card.querySelector(".normalized").textContent = hasNormalized
    ? `${normalized.toFixed(2)} (threshold at 0.50)`
    : "–";
  card.querySelector(".numbers").hidden = false;
  if (hasNormalized) {
    const scale = card.querySelector(".scale");
    scale.style.setProperty("--n", Math.min(1, Math.max(0, normalized)));
    scale.setAttribute("role", "img");
    scale.setAttribute(
      "aria-label",
      `normalised score ${normalized.toFixed(2)} on a scale from 0 to 1, threshold at 0.50`,
    );
    scale.hidden = false;
  }
  if (r.heatmap_png_base64) {
    const img = card.querySelector(".heatmap img");
    img.alt = `Heatmap of ${name}: ${panels}`;
    img.src = `data:image/png;base64,${r.heatmap_png_base64}`;
    card.querySelector(".heatmap").hidden = false;
  }
  settle(card, state);
}

function showError(card, status, message) {
  card.querySelector(".verdict").textContent = status ? `Rejected (${status})` : "Not sent";
  const error = card.querySelector(".error");
  error.textContent = message;
  error.hidden = false;
  settle(card, "rejected");
}

/** Sends one file and fills its card. */
async function score(file, card) {
  const form = new FormData();
  form.append("image", file, file.name);
  let response;
  try {
    response = await fetch("v1/score?heatmap=1", { method: "POST", body: form });
  } catch (e) {
    showError(card, 0, `cannot reach the server: ${e.message}`);
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    showError(card, response.status, message);
    return;
  }
  const result = body && Array.isArray(body.results) ? body.results[0] : body;
  if (!result || typeof result.score !== "number") {
    showError(card, response.status, "the server's answer holds no score");
    return;
  }
  showAnswer(card, file.name, result);
}

/** Adds one card per file (newest batch first) and scores them, IN_FLIGHT at a time. */
async function take(fileList) {
  const files = Array.from(fileList);
  if (files.length === 0) return;
  const template = $("result-template").content;
  const jobs = files.map((file) => {
    const card = template.firstElementChild.cloneNode(true);
    card.querySelector(".name").textContent = file.name || "(unnamed)";
    return { file, card };
  });
  $("results").prepend(...jobs.map((j) => j.card));
  counts.pending += jobs.length;
  summarise();
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { file, card } = jobs[next++];
      await score(file, card);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, jobs.length) }, worker));
}

function clearResults() {
  $("results").replaceChildren();
  for (const k of Object.keys(counts)) counts[k] = 0;
  summarise();
  $("files").focus();
}

function wireDrop() {
  const drop = $("drop");
  // A file dropped anywhere on the page is taken, never opened by the browser in its place.
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  window.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) drop.classList.remove("over");
  });
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files) take(e.dataTransfer.files);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const input = $("files");
  input.addEventListener("change", () => {
    take(input.files);
    // The same file picked again is a new request.
    input.value = "";
  });
  $("clear").addEventListener("click", clearResults);
  wireDrop();
  loadModel();
});
