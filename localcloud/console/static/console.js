// The console page: polls the JSON under /_localcloud/ and redraws. Plain DOM; every value from the
// pipeline (file names, contact names, log lines) is set as text, never as HTML.
"use strict";

const BASE = location.pathname.replace(/[^/]*$/, "");  // .../_localcloud/
const ACTION = { "X-Localcloud-Console": "1" };
const COUNTERS = ["rows", "sent", "invalid", "duplicate", "bounced", "retried", "exhausted", "unknown"];
let selectedJob = null;
let maxUploadBytes = 50 * 1024 * 1024;

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function getJson(path) {
  const response = await fetch(BASE + path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function postJson(path, body, headers = {}) {
  const response = await fetch(BASE + path, { method: "POST", body, headers: { ...ACTION, ...headers } });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function problem(error) {
  $("problem").hidden = !error;
  $("problem").textContent = error ? String(error.message || error) : "";
}

// -- jobs ---------------------------------------------------------------------------------------
function progressBar(job) {
  const share = job.rows ? Math.min(1, job.settled / job.rows) : (job.status === "SUCCEEDED" ? 1 : 0);
  const bar = el("div", { className: "bar" + (job.status === "SUCCEEDED" ? " done" : job.status === "FAILED" ? " failed" : ""),
                          title: `${job.settled} of ${job.rows} rows settled` });
  const fill = el("span");
  fill.style.width = (share * 100).toFixed(1) + "%";
  bar.append(fill);
  return el("td", { className: "bar-cell" }, bar, el("span", { className: "dim settled" }, `${job.settled} / ${job.rows}`));
}

async function refreshJobs() {
  const { jobs } = await getJson("jobs");
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren(...jobs.map((job) => {
    const row = el("tr", { className: job.job_id === selectedJob ? "selected" : "" },
      el("td", {}, job.key.replace(/^incoming\//, "")),
      el("td", { className: "status " + job.status }, job.status),
      progressBar(job),
      ...COUNTERS.map((name) => el("td", { className: "num" }, job[name])));
    row.dataset.job = job.job_id;
    row.dataset.key = job.key;
    row.dataset.status = job.status;
    row.addEventListener("click", () => { selectedJob = job.job_id; showJob(job.job_id); });
    return row;
  }));
  $("no-jobs").hidden = jobs.length > 0;
  if (selectedJob) await showJob(selectedJob);
}

async function showJob(jobId) {
  const box = $("job-detail");
  let job;
  try { job = await getJson("jobs/" + encodeURIComponent(jobId)); } catch { box.hidden = true; return; }
  const reasons = Object.entries(job.invalid_reasons || {}).sort((a, b) => b[1] - a[1]);
  box.replaceChildren(
    el("h3", {}, job.key, " ", el("span", { className: "dim" }, `job ${job.job_id}`)),
    el("p", {}, "Read as: ", job.read_as || "(not parsed yet)"),
    job.failure_reason ? el("p", { className: "error" }, "Failed: ", job.failure_reason) : "",
    job.needs_mapping ? el("p", { className: "error" }, "Held, nothing sent: ", job.needs_mapping.reason,
      ` Columns: ${job.needs_mapping.columns.join(", ")}. Choose the file again to say which column is which.`) : "",
    ...Object.entries(job.notes || {}).map(([note, count]) => el("p", { className: "dim" }, `${count} ${note}`)),
    el("p", {}, `Started ${job.started_at || "–"}, parsed ${job.parsed_at || "–"}; `,
       `${job.settled} of ${job.rows} rows settled, ${job.enqueued} enqueued, ${job.complained} complaints.`),
    reasons.length
      ? el("table", { className: "reasons" }, el("thead", {}, el("tr", {}, el("th", {}, "invalid-row reason"), el("th", { className: "num" }, "rows"))),
           el("tbody", {}, ...reasons.map(([reason, count]) => el("tr", {}, el("td", {}, reason), el("td", { className: "num" }, count)))))
      : el("p", { className: "dim" }, "No invalid rows."),
    job.rejects_key
      ? el("p", {}, "Rejected rows: ", el("a", { href: job.rejects_url, download: "" }, job.rejects_s3))
      : "");
  box.hidden = false;
}

// -- preview, then upload ---------------------------------------------------------------------------
// A chosen file is first previewed (how it will be read, its first emails as they will be sent); it is uploaded
// only when Upload is pressed, with the columns said, if any, as the object's metadata.
let chosen = null;

function mappingQuery() {
  const email = $("preview-email-column").value.trim(), names = $("preview-name-columns").value.trim();
  return (email ? "&email_column=" + encodeURIComponent(email) : "") +
         (names ? "&name_columns=" + encodeURIComponent(names) : "");
}

function tooLarge(file) {
  if (file.size <= maxUploadBytes) return false;
  const result = $("upload-result");
  result.className = "error";
  result.textContent = `${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MB; the console takes files up to ` +
    `${maxUploadBytes / 2 ** 20} MB (upload larger ones with aws s3 cp). Nothing was uploaded.`;
  return true;
}

async function showPreview(file) {
  chosen = file;
  const result = $("upload-result"), box = $("preview");
  result.className = ""; result.textContent = "";
  if (tooLarge(file)) { box.hidden = true; return; }
  let seen;
  try {
    seen = await postJson("preview?name=" + encodeURIComponent(file.name) + mappingQuery(), file,
                          { "Content-Type": "application/octet-stream" });
  } catch (error) {
    box.hidden = true; result.className = "error"; result.textContent = error.message + " Nothing was uploaded.";
    return;
  }
  if (seen.failure) {
    box.hidden = true; result.className = "error";
    result.textContent = `${file.name} is not a CSV file it can read: ${seen.failure}. Nothing was uploaded.`;
    return;
  }
  $("preview-read-as").textContent = `${file.name}, read as: ${seen.read_as}`;
  const held = seen.needs_mapping;
  $("preview-held").hidden = !held;
  $("preview-held").textContent = held ? `It would be held, nothing sent: ${held.reason} Say which column is which below.` : "";
  const rows = held
    ? held.first_rows.map((cells) => el("tr", {}, el("td", {}, ""), el("td", {}, ""), el("td", {}, cells.join(" | ")), el("td", {}, "")))
    : seen.rows.map((row) => el("tr", { className: row.verdict },
        el("td", {}, row.line), el("td", { className: row.verdict === "sent" ? "ok" : "error" }, row.verdict),
        el("td", {}, row.address), el("td", {}, row.greeting || row.reason)));
  $("preview-rows").querySelector("tbody").replaceChildren(...rows);
  $("preview-upload").disabled = Boolean(held);
  box.hidden = false;
}

async function upload() {
  const file = chosen, result = $("upload-result");
  if (!file || tooLarge(file)) return;
  result.className = "";
  result.textContent = `uploading ${file.name}…`;
  try {
    const answer = await postJson("upload?name=" + encodeURIComponent(file.name) + mappingQuery(), file,
                                  { "Content-Type": "application/octet-stream" });
    result.className = "ok";
    result.textContent = `Uploaded ${answer.s3} (job ${answer.job_id})`;
    $("preview").hidden = true;
    selectedJob = answer.job_id;
    await refreshJobs();
  } catch (error) {
    result.className = "error";
    result.textContent = error.message + " Nothing was uploaded.";
  }
}

function setUpDrop() {
  const drop = $("drop");
  const input = $("file-input");
  input.addEventListener("change", () => input.files[0] && showPreview(input.files[0]));
  $("preview-upload").addEventListener("click", upload);
  $("preview-cancel").addEventListener("click", () => { $("preview").hidden = true; chosen = null; input.value = ""; });
  $("preview-mapping").addEventListener("submit", (e) => { e.preventDefault(); if (chosen) showPreview(chosen); });
  drop.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && input.click());
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) showPreview(e.dataTransfer.files[0]); });
}

// -- contact lookup -----------------------------------------------------------------------------
async function lookUp(event) {
  event.preventDefault();
  const box = $("contact-result");
  try {
    const c = await getJson("contacts/" + encodeURIComponent($("contact-email").value.trim()));
    if (!c.found) { box.replaceChildren(el("p", {}, `${c.email}: ${c.why}.`)); return; }
    const fields = [["state", c.state], ["name", c.name], ["attempt", c.attempt], ["provider message id", c.provider_message_id],
                    ["file", c.file], ["row", c.row], ["job", c.job], ["detail", c.detail]];
    box.replaceChildren(
      el("table", { id: "contact-ledger" }, el("tbody", {}, ...fields.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))),
      el("h3", {}, `Provider attempts (${c.attempts.length})`),
      el("table", { id: "contact-attempts" },
         el("thead", {}, el("tr", {}, ...["attempt", "outcome", "received", "provider message id"].map((h) => el("th", {}, h)))),
         el("tbody", {}, ...c.attempts.map((a) => el("tr", {}, el("td", {}, a.attempt), el("td", {}, a.outcome),
                                                       el("td", {}, a.received_at), el("td", {}, a.provider_message_id))))));
  } catch (error) {
    box.replaceChildren(el("p", { className: "error" }, error.message));
  }
}

// -- dead letters -------------------------------------------------------------------------------
async function refreshDlq() {
  const dlq = await getJson("dlq");
  $("dlq-total").textContent = `(${dlq.total})`;
  $("dlq-empty").hidden = dlq.total > 0;
  $("dlq").querySelector("tbody").replaceChildren(...dlq.reasons.map((r) => {
    const button = el("button", { type: "button", disabled: !r.redrivable,
                                  title: r.redrivable ? "send these letters back (same rules as localcloud dlq redrive)"
                                                      : "never redriven: permanent, or a person must check with the provider first" },
                      "Redrive");
    button.addEventListener("click", () => redrive(r.reason));
    const row = el("tr", {}, el("td", {}, r.reason), el("td", { className: "num" }, r.count), el("td", {}, button));
    row.dataset.reason = r.reason;
    return row;
  }));
}

async function redrive(reason) {
  const result = $("redrive-result");
  try {
    const answer = await postJson("dlq/redrive", JSON.stringify({ reason }), { "Content-Type": "application/json" });
    result.className = "ok";
    result.textContent = `${answer.handled} ${reason} letter(s) handled: ` +
      Object.entries(answer.outcomes).map(([why, n]) => `${n} × ${why}`).join("; ");
  } catch (error) {
    result.className = "error";
    result.textContent = error.message;
  }
  await refreshDlq();
}

// -- chart --------------------------------------------------------------------------------------
let lastDeadLetters = null;

async function refreshMetrics() {
  const metrics = await getJson("metrics");
  // Reading the dead letters means receiving them all: only when their number changed.
  if (metrics.depths["dead letters"] !== lastDeadLetters) {
    lastDeadLetters = metrics.depths["dead letters"];
    await refreshDlq();
  }
  $("depths").textContent = "Messages in queues now: " +
    Object.entries(metrics.depths).map(([name, n]) => `${name} ${n}`).join(" · ");
  drawChart($("chart"), metrics.sends, metrics.depth_history);
}

function drawChart(canvas, sends, depths) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 640, height = canvas.clientHeight || 180;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const left = 44, bottom = height - 18, top = 8, right = width - 8;
  const now = Date.now() / 1000, span = 600;
  const x = (at) => left + (right - left) * (1 - (now - at) / span);
  const series = [
    { points: sends.map((s) => [s.at, s.per_second]), color: "#0969da", label: "sends/s" },
    { points: depths.map((d) => [d.at, d.contacts || 0]), color: "#9a6700", label: "contacts queue" },
    { points: depths.map((d) => [d.at, d.retries || 0]), color: "#8250df", label: "retry queue" },
  ];
  const peak = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const y = (v) => bottom - (bottom - top) * (v / peak);
  g.strokeStyle = "#d0d7de"; g.fillStyle = "#656d76"; g.font = "11px system-ui";
  g.beginPath(); g.moveTo(left, top); g.lineTo(left, bottom); g.lineTo(right, bottom); g.stroke();
  g.fillText(peak.toFixed(peak < 10 ? 1 : 0), 4, top + 8); g.fillText("0", 30, bottom);
  g.fillText("−10 min", left, height - 4); g.fillText("now", right - 22, height - 4);
  series.forEach((s, i) => {
    g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();
    s.points.filter((p) => now - p[0] <= span).forEach((p, j) => (j ? g.lineTo(x(p[0]), y(p[1])) : g.moveTo(x(p[0]), y(p[1]))));
    g.stroke();
    g.fillStyle = s.color; g.fillText(s.label, left + 8 + i * 110, top + 10);
  });
}

// -- logs ---------------------------------------------------------------------------------------
async function refreshLogs() {
  const fn = $("log-function").value;
  if (!fn) return;
  const query = new URLSearchParams({ level: $("log-level").value, job: $("log-job").value.trim() });
  const { lines } = await getJson(`logs/${encodeURIComponent(fn)}?${query}`);
  const box = $("logs");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.textContent = lines.map((l) => new Date(l.timestamp).toISOString().slice(11, 19) + " " + l.message).join("\n")
    || "(no lines in the last 15 minutes)";
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// -- wiring -------------------------------------------------------------------------------------
async function start() {
  try {
    const info = await getJson("functions");
    maxUploadBytes = info.max_upload_bytes;
    $("where").textContent = `stack ${info.stack} at ${info.endpoint} · bucket ${info.bucket}`;
    for (const node of document.querySelectorAll(".bucket")) node.textContent = info.bucket;
    $("log-function").replaceChildren(...info.functions.map((f) => el("option", { value: f, selected: f === "SendEmailFunction" }, f)));
    problem(null);
  } catch (error) {
    problem(error);
    setTimeout(start, 3000);
    return;
  }
  setUpDrop();
  $("contact-form").addEventListener("submit", lookUp);
  $("log-filter").addEventListener("change", () => refreshLogs().catch(problem));
  $("log-filter").addEventListener("submit", (e) => { e.preventDefault(); refreshLogs().catch(problem); });
  const every = (ms, refresh) => {
    const tick = () => refresh().then(() => problem(null), problem).finally(() => setTimeout(tick, ms));
    tick();
  };
  every(1000, refreshJobs);
  every(2000, refreshMetrics);
  every(3000, refreshLogs);
}

start();
