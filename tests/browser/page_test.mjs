// Drives the inspection page of `cae serve` (GET /) in headless Chromium, as a person would:
// Tab to the file input, pick images, read the verdicts. Started by page_test.sh, which trains
// the run, starts the servers and picks the images; each check prints one "ok" line, and the
// first failure ends the run with exit code 1.
//
// Environment:
//   CAE_URL       a server on a run with a threshold
//   CAE_PLAIN_URL a server on the same run without one (optional)
//   NORMAL_PNG    an image `cae predict` calls normal; ANOMALOUS_PNG one it calls anomalous
//   TEXT_FILE     a file that is no image (the server must refuse it)
//   CHROMIUM      the browser (default /usr/bin/chromium)
//   SCREENSHOT    where to write a picture of the page with its results (optional)
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { deflateSync } from "node:zlib";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`set ${name}`);
  return v;
};
const base = env("CAE_URL");
const plain = process.env.CAE_PLAIN_URL;
const normal = env("NORMAL_PNG");
const anomalous = env("ANOMALOUS_PNG");
const text = env("TEXT_FILE");

let checks = 0;
function check(ok, what, detail = "") {
  if (!ok) throw new Error(`not ok - ${what}${detail ? `: ${detail}` : ""}`);
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}

/** A `side`×`side` 8-bit gray PNG (a gradient), made here so the test needs no image tool. */
function grayPng(side) {
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(body));
    return Buffer.concat([head, body, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (gray), no interlace
  const rows = Buffer.alloc(side * (side + 1));
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) rows[y * (side + 1) + 1 + x] = (x + y) % 256;
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The API's own answer for a file, as the page sends it (one multipart part). */
async function apiScore(url, path, bytes) {
  const form = new FormData();
  form.append("image", new Blob([bytes || (await readFile(path))]), basename(path));
  const response = await fetch(`${url}/v1/score?heatmap=1`, { method: "POST", body: form });
  const body = await response.json();
  return { status: response.status, body: body.results ? body.results[0] : body };
}

/** What the page shows for the card of `name` once it has settled. */
async function card(page, name) {
  const li = page.locator("#results > li", { has: page.locator("h3", { hasText: name }) });
  return li.evaluate((el) => {
    const img = el.querySelector(".heatmap img");
    const shown = (sel) => !el.querySelector(sel).closest("[hidden]");
    return {
      state: el.dataset.state,
      verdict: el.querySelector(".verdict").textContent.trim(),
      score: el.querySelector(".score").textContent.trim(),
      threshold: el.querySelector(".threshold").textContent.trim(),
      normalized: el.querySelector(".normalized").textContent.trim(),
      numbers: shown(".numbers"),
      error: shown(".error") ? el.querySelector(".error").textContent.trim() : null,
      alt: img.alt,
      heatmap:
        shown(".heatmap") && img.complete && img.naturalWidth > 0
          ? [img.naturalWidth, img.naturalHeight]
          : null,
    };
  });
}

async function settled(page, count) {
  await page.waitForFunction(
    (n) =>
      document.querySelectorAll("#results > li").length === n &&
      !document.querySelector('#results > li[data-state="pending"]') &&
      // A broken image is complete too; the checks then say it did not render.
      Array.from(document.querySelectorAll(".heatmap:not([hidden]) img")).every((i) => i.complete),
    count,
    { timeout: 30000 },
  );
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Without the background-networking flags Chromium's own connections get refused and slow
  // the start; Playwright gives the browser a new, empty user-data-dir.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
  const page = await context.newPage();
  // Every problem the page meets is a failure: a script error, a console error (a refused
  // content-security-policy too), a request to another host (the page must work offline).
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().includes("status of 4")) {
      problems.push(`console: ${m.text()}`);
    }
  });
  const servers = [base, plain].filter(Boolean).map((u) => new URL(u).origin);
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith("data:") && !servers.includes(new URL(url).origin)) {
      problems.push(`asked ${url}`);
    }
  });

  await page.goto(base);
  await page.waitForSelector("#model dl");
  const model = await (await fetch(`${base}/v1/model`)).json();
  const cardText = await page.locator("#model").innerText();
  check(
    cardText.includes(model.architecture.name) && cardText.includes(model.input.shape),
    "the model card shows the architecture and the input shape",
    cardText,
  );
  check(await page.locator("#no-threshold").isHidden(), "a run with a threshold has no notice");

  // Keyboard: the first Tab reaches the file input, and its label shows the focus.
  await page.keyboard.press("Tab");
  const focus = await page.evaluate(() => {
    const label = document.querySelector('label[for="files"]');
    return { id: document.activeElement.id, outline: getComputedStyle(label).outlineStyle };
  });
  check(focus.id === "files", "Tab reaches the file input", JSON.stringify(focus));
  check(focus.outline !== "none", "the focused input's label shows a focus ring", focus.outline);

  await page.setInputFiles("#files", [normal, anomalous, text]);
  await settled(page, 3);

  const threshold = model.threshold.image;
  for (const [path, want] of [
    [normal, "normal"],
    [anomalous, "anomalous"],
  ]) {
    const name = basename(path);
    const shown = await card(page, name);
    const api = await apiScore(base, path);
    const detail = JSON.stringify({ shown, api: { ...api.body, heatmap_png_base64: "…" } });
    check(shown.state === want, `${name} is ${want}`, detail);
    check(
      shown.verdict === (want === "normal" ? "Normal" : "Anomalous"),
      `${name}'s verdict reads ${shown.verdict}`,
      detail,
    );
    check(api.body.is_anomaly === (want === "anomalous"), `the API agrees on ${name}`, detail);
    check(
      Math.abs(Number(shown.score) - api.body.score) <= 1e-3 * api.body.score &&
        Math.abs(Number(shown.threshold) - threshold) <= 1e-3 * threshold,
      `${name}'s score ${shown.score} and threshold ${shown.threshold} are the API's`,
      detail,
    );
    check(
      shown.normalized.startsWith(api.body.normalized_score.toFixed(2)),
      `${name}'s normalised score ${shown.normalized}`,
      detail,
    );
    check(
      shown.heatmap !== null && shown.heatmap[0] > 4 * model.input.width,
      `${name}'s heatmap rendered (${shown.heatmap})`,
      detail,
    );
    check(
      shown.alt === `Heatmap of ${name}: input, reconstruction, error map and predicted mask`,
      `${name}'s heatmap has its alt text`,
      shown.alt,
    );
  }
  const refused = await card(page, basename(text));
  const api = await apiScore(base, text);
  check(
    refused.state === "rejected" && refused.verdict === `Rejected (${api.status})`,
    `${basename(text)} is rejected with ${api.status}`,
    JSON.stringify(refused),
  );
  check(
    refused.error === api.body.error && refused.heatmap === null && !refused.numbers,
    `its card shows the server's message: ${refused.error}`,
    JSON.stringify({ refused, api }),
  );
  const summary = await page.locator("#summary").innerText();
  check(summary === "3 images: 1 anomalous, 1 normal, 1 rejected.", `summary: ${summary}`);
  if (process.env.SCREENSHOT) {
    await page.evaluate(() => document.activeElement.blur());
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    console.log(`# wrote ${process.env.SCREENSHOT}`);
  }

  // A phone: one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  check(overflow <= 0, "on a 390 px wide screen nothing overflows sideways", `${overflow} px`);
  if (process.env.PHONE_SCREENSHOT) {
    await page.screenshot({ path: process.env.PHONE_SCREENSHOT, fullPage: true });
  }

  // Clear, then two files dropped on the drop zone (a drop event carrying them, as files
  // dragged from the desktop make one): the anomalous digit, and an image far larger than
  // this run takes (it scores other sizes up to 16 times the training area), which the server
  // refuses with 422.
  await page.setViewportSize({ width: 1200, height: 860 });
  await page.click("#clear");
  check(
    (await page.locator("#results > li").count()) === 0 &&
      (await page.evaluate(() => document.activeElement.id)) === "files",
    "Clear results empties the list and gives the focus back to the file input",
  );
  const side = 8 * Math.max(model.input.height, model.input.width);
  const large = grayPng(side);
  const dropping = [
    [basename(anomalous), (await readFile(anomalous)).toString("base64")],
    [`large-${side}.png`, large.toString("base64")],
  ];
  await page.evaluate(
    (files) => {
      const dt = new DataTransfer();
      for (const [name, b64] of files) {
        const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        dt.items.add(new File([raw], name, { type: "image/png" }));
      }
      const drop = document.getElementById("drop");
      drop.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true }));
      drop.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
    },
    dropping,
  );
  await settled(page, 2);
  const dropped = await card(page, basename(anomalous));
  check(
    dropped.state === "anomalous" && dropped.heatmap !== null,
    `a dropped ${basename(anomalous)} is scored: ${dropped.verdict}`,
    JSON.stringify(dropped),
  );
  const tooLarge = await card(page, `large-${side}.png`);
  const refusal = await apiScore(base, `large-${side}.png`, large);
  check(
    refusal.status === 422 &&
      tooLarge.verdict === "Rejected (422)" &&
      tooLarge.error === refusal.body.error,
    `a dropped ${side}x${side} image shows the server's 422: ${tooLarge.error}`,
    JSON.stringify({ tooLarge, refusal }),
  );

  if (plain) {
    await page.goto(plain);
    await page.waitForSelector("#model dl");
    const notice = page.locator("#no-threshold");
    check(await notice.isVisible(), "a run without a threshold says so");
    check(
      (await notice.innerText()).includes("No threshold fitted"),
      `the notice reads: ${(await notice.innerText()).split("\n")[0]}`,
    );
    await page.setInputFiles("#files", [normal]);
    await settled(page, 1);
    const shown = await card(page, basename(normal));
    check(
      shown.state === "scored" &&
        shown.verdict === "No verdict" &&
        shown.threshold === "none fitted" &&
        Number(shown.score) > 0 &&
        shown.heatmap !== null,
      "without a threshold an image gets its score and heatmap, no verdict",
      JSON.stringify(shown),
    );
  }
  check(problems.length === 0, "no script errors, console errors or outside requests", problems.join("; "));
  console.log(`# ${checks} checks passed`);
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
