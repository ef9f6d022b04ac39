// metricgate operator console. Plain JavaScript, no build step, nothing loaded from elsewhere.
// Every string from the gateway (component ids, metric names, label values sent by clients,
// error messages) goes into the page as text (textContent), never as markup.
"use strict";

const GRAPH_EVERY_MS = 2000;
const CARDINALITY_EVERY_MS = 10000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.includes("-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function rate(value) {
  if (!value) return "0/s";
  if (value >= 1e6) return (value / 1e6).toFixed(2) + "M/s";
  if (value >= 1e3) return (value / 1e3).toFixed(1) + "k/s";
  return (value >= 10 ? value.toFixed(0) : value.toFixed(1)) + "/s";
}

function ago(unixSeconds) {
  const seconds = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (seconds < 60) return Math.round(seconds) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

async function getJson(url, options) {
  const response = await fetch(url, Object.assign({cache: "no-store"}, options || {}));
  let body = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) body = await response.json();
  else body = {error: (await response.text()).trim()};
  return {status: response.status, ok: response.ok, body: body};
}

function lastError(error) {
  if (!error) return null;
  const text = error.level + " " + ago(error.time) + (error.count > 1 ? " (" + error.count + " in all)" : "") +
    ": " + error.message;
  return el("div", {class: "err", title: error.message, text: text});
}

// --- pipelines -----------------------------------------------------------------------------

function nodeBox(node, extra) {
  const stats = [];
  if (node.kind === "receiver" && node.refused_per_second) stats.push("refused " + rate(node.refused_per_second));
  if (node.kind === "processor" && node.dropped_per_second) stats.push("dropped " + rate(node.dropped_per_second));
  return el("div", {class: "node " + node.kind, "data-node": node.kind + ":" + node.id},
    el("div", {class: "kind", text: node.kind + (node.type !== node.id ? " · " + node.type : "")}),
    el("div", {class: "id", text: node.id}),
    stats.length ? el("div", {class: "stat", text: stats.join(", ")}) : null,
    extra || null,
    lastError(node.last_error));
}

function edgeBox(pipeline, from, to, value) {
  return el("div", {class: "edge" + (value > 0 ? " live" : ""), "data-pipeline": pipeline,
                    "data-from": from, "data-to": to, "data-rate": value},
    el("span", {class: "rate", text: rate(value)}),
    el("span", {class: "arrow", text: "→", "aria-hidden": "true"}));
}

function renderPipeline(pipeline, exporters) {
  const flow = el("div", {class: "flow"});
  const receivers = el("div", {class: "column"});
  const incoming = el("div", {class: "edges-in"});
  const first = pipeline.processors.length ? "processor:" + pipeline.processors[0].id : "exporters";
  for (const receiver of pipeline.receivers) {
    receivers.append(nodeBox(receiver));
    incoming.append(edgeBox(pipeline.id, "receiver:" + receiver.id, first, receiver.points_per_second));
  }
  flow.append(receivers, incoming);
  pipeline.processors.forEach((processor, index) => {
    flow.append(nodeBox(processor));
    const next = pipeline.processors[index + 1];
    flow.append(edgeBox(pipeline.id, "processor:" + processor.id,
                        next ? "processor:" + next.id : "exporters", processor.points_per_second));
  });
  const column = el("div", {class: "column"});
  for (const id of pipeline.exporters) {
    const exporter = exporters[id] || {id: id, kind: "exporter", type: id};
    const health = exporter.health
      ? el("div", {class: "stat"}, el("span", {class: "health " + exporter.health, text: exporter.health}),
           " sent " + rate(exporter.sent_per_second))
      : null;
    column.append(nodeBox(exporter, health));
  }
  flow.append(column);
  return el("div", {class: "pipeline", "data-pipeline": pipeline.id},
    el("h3", {text: pipeline.id}), flow);
}

function renderExporters(exporters) {
  const rows = document.getElementById("exporter-rows");
  rows.replaceChildren();
  for (const exporter of Object.values(exporters)) {
    const queue = exporter.queue;
    rows.append(el("tr", {"data-exporter": exporter.id},
      el("td", {class: "mono", text: exporter.id}),
      el("td", {}, el("span", {class: "health " + exporter.health, text: exporter.health})),
      el("td", {class: "num", text: rate(exporter.sent_per_second)}),
      el("td", {class: "num", text: rate(exporter.trouble_per_second)}),
      el("td", {class: "num"},
         el("meter", {min: 0, max: queue.capacity || 1, value: queue.size,
                      title: Math.round(queue.fill * 100) + "% full"}),
         " " + queue.size + " / " + queue.capacity),
      el("td", {}, lastError(exporter.last_error) || el("span", {class: "muted", text: "none"}))));
  }
}

async function refreshGraph() {
  const status = document.getElementById("graph-status");
  try {
    const answer = await getJson("/api/console/graph");
    if (!answer.ok) throw new Error(answer.status + " " + (answer.body.error || ""));
    const graph = answer.body;
    const target = document.getElementById("graph");
    target.replaceChildren(...graph.pipelines.map((p) => renderPipeline(p, graph.exporters)));
    if (!graph.pipelines.length) target.append(el("p", {class: "muted", text: "No pipelines."}));
    renderExporters(graph.exporters);
    status.textContent = "rates over " + graph.window_seconds.toFixed(0) + " s, updated " +
      new Date().toLocaleTimeString();
  } catch (error) {
    status.textContent = "cannot reach the gateway: " + error.message;
  }
}

// --- cardinality ---------------------------------------------------------------------------

function renderLimiter(limiter) {
  const limits = limiter.limits;
  const caps = ["max_series " + (limits.max_series || "none"),
                "per metric " + (limits.max_series_per_metric || "none")]
    .concat(limits.per_label.map((p) => "per " + p.label + " " + (p.max_series || "none")));
  const rows = limiter.metrics.map((metric) => el("tr", {"data-metric": metric.metric},
    el("td", {class: "mono", text: metric.metric}),
    el("td", {class: "num", text: metric.series}),
    el("td", {class: "num", text: metric.refused_series}),
    el("td", {}, ...metric.labels.map((label) => el("div", {class: "mono small",
      text: label.label + "=" + (label.saturated ? "≥" : "") + label.distinct_values +
            (label.top_values.length ? "  (" + label.top_values.map((v) => v.value + ": " + v.series).join(", ") + ")" : "")
    })))));
  const perLabel = limits.per_label.map((p) => el("div", {class: "small", text:
    "top " + p.label + " values: " + (p.top_values.map((v) => v.value + "=" + v.series).join(", ") || "-")}));
  return el("div", {class: "limiter", "data-limiter": limiter.processor},
    el("h3", {text: limiter.processor + (limiter.tenant ? " · tenant " + limiter.tenant : "") + ": " +
      limiter.active_series + " active series, " + limiter.refused_series + " refused"}),
    el("div", {class: "small muted", text: limiter.window_type + " window " + limiter.window_seconds +
      " s, on_limit " + limiter.on_limit + "; limits: " + caps.join(", ")}),
    ...perLabel,
    el("div", {class: "scroll"}, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {text: "metric"}), el("th", {text: "series"}),
        el("th", {text: "refused"}), el("th", {text: "labels by distinct values"}))),
      el("tbody", {}, ...rows))));
}

async function refreshCardinality() {
  const body = document.getElementById("cardinality-body");
  const params = new URLSearchParams({limit: document.getElementById("cardinality-limit").value || "20"});
  const tenant = document.getElementById("cardinality-tenant").value;
  if (tenant) params.set("tenant", tenant);
  try {
    const answer = await getJson("/api/console/cardinality?" + params);
    if (answer.status === 404) {
      body.replaceChildren(el("p", {class: "muted",
        text: "No cardinality_limit processor in this gateway."}));
      return;
    }
    if (!answer.ok) {
      body.replaceChildren(el("p", {class: "problem", text: answer.body.error || String(answer.status)}));
      return;
    }
    const select = document.getElementById("cardinality-tenant");
    const known = new Set(Array.from(select.options).map((o) => o.value));
    for (const name of answer.body.tenants) {
      if (!known.has(name)) select.append(el("option", {value: name, text: name}));
    }
    document.getElementById("cardinality-tenant-label").hidden = answer.body.tenants.length === 0;
    const limiters = answer.body.limiters;
    body.replaceChildren(...(limiters.length ? limiters.map(renderLimiter)
      : [el("p", {class: "muted", text: "No limiter reports."})]));
  } catch (error) {
    body.replaceChildren(el("p", {class: "problem", text: "cannot reach the gateway: " + error.message}));
  }
}

// --- relabel playground --------------------------------------------------------------------

let relabelProcessors = [];
let pastedRules = null;

async function loadRelabel() {
  const answer = await getJson("/api/console/relabel");
  const select = document.getElementById("relabel-source");
  if (!answer.ok) {
    document.getElementById("relabel-run").disabled = true;
    document.getElementById("relabel-results").replaceChildren(el("p", {class: "problem",
      text: "The relabel playground is not available here: " + (answer.body.error || answer.status)}));
    return;
  }
  relabelProcessors = answer.body.processors;
  for (const processor of relabelProcessors) {
    select.append(el("option", {value: processor.id, text: processor.id}));
  }
}

function onRelabelSource() {
  const id = document.getElementById("relabel-source").value;
  const rules = document.getElementById("relabel-rules");
  if (id) {
    if (pastedRules === null) pastedRules = rules.value;
    const found = relabelProcessors.find((p) => p.id === id);
    rules.value = found ? found.rules : "";
    rules.readOnly = true;
  } else {
    if (pastedRules !== null) rules.value = pastedRules;
    pastedRules = null;
    rules.readOnly = false;
  }
}

function renderTrace(result) {
  const steps = result.steps.map((step) => {
    const kind = step.outcome === "applied" ? (step.changed ? "changed" : "unchanged") : step.outcome;
    return el("li", {class: kind, "data-outcome": kind},
      el("span", {class: "mono", text: step.description}),
      el("span", {class: "outcome", text: kind}),
      step.outcome === "applied" && step.changed ? el("span", {class: "labels mono", text: "→ " + step.labels}) : null);
  });
  const verdict = result.dropped
    ? el("div", {class: "verdict dropped", text: "dropped (" + result.dropped.reason + "): " + result.dropped.detail})
    : el("div", {class: "verdict mono", text: "→ " + result.result});
  return el("div", {class: "trace", "data-input": result.input},
    el("div", {class: "mono", text: result.input}),
    steps.length ? el("ol", {}, ...steps) : el("div", {class: "muted small", text: "no rules"}),
    verdict);
}

async function runRelabel() {
  const button = document.getElementById("relabel-run");
  const out = document.getElementById("relabel-results");
  const source = document.getElementById("relabel-source").value;
  const request = {series: document.getElementById("relabel-series").value};
  if (source) request.processor = source;
  else request.rules = document.getElementById("relabel-rules").value;
  button.disabled = true;
  try {
    const answer = await getJson("/api/console/relabel", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(request)});
    if (!answer.ok) {
      out.replaceChildren(el("p", {class: "problem",
        text: (answer.body.problems || [answer.body.error || String(answer.status)]).join("\n")}));
      return;
    }
    out.replaceChildren(...answer.body.results.map(renderTrace));
  } catch (error) {
    out.replaceChildren(el("p", {class: "problem", text: "cannot reach the gateway: " + error.message}));
  } finally {
    button.disabled = false;
  }
}

// --- config and reload ---------------------------------------------------------------------

async function refreshConfig() {
  const target = document.getElementById("config-text");
  try {
    const response = await fetch("/api/console/config?format=yaml", {cache: "no-store"});
    target.textContent = await response.text();
  } catch (error) {
    target.textContent = "cannot reach the gateway: " + error.message;
  }
}

async function reload() {
  const button = document.getElementById("reload");
  const out = document.getElementById("reload-result");
  button.disabled = true;
  out.className = "";
  out.textContent = "reloading…";
  try {
    const answer = await getJson("/-/reload", {method: "POST"});
    const problems = Array.isArray(answer.body.problems) ? answer.body.problems : [];
    const message = [answer.body.message || answer.body.error || "", ...problems]
      .filter((part) => part).join("; ");
    if (answer.ok) {
      out.className = "ok";
      out.textContent = message || "reloaded";
      refreshConfig();
    } else if (answer.status === 404 || answer.status === 501) {
      out.className = "error";
      out.textContent = message.startsWith("reload not available") ? message
        : "reload not available (" + answer.status + ")" + (message ? ": " + message : "");
    } else {
      out.className = "error";
      out.textContent = "reload failed (" + answer.status + ")" + (message ? ": " + message : "");
    }
  } catch (error) {
    out.className = "error";
    out.textContent = "cannot reach the gateway: " + error.message;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("reload").addEventListener("click", reload);
  document.getElementById("relabel-run").addEventListener("click", runRelabel);
  document.getElementById("relabel-source").addEventListener("change", onRelabelSource);
  document.getElementById("config-refresh").addEventListener("click", refreshConfig);
  document.getElementById("cardinality-refresh").addEventListener("click", refreshCardinality);
  document.getElementById("cardinality-tenant").addEventListener("change", refreshCardinality);
  refreshGraph();
  refreshCardinality();
  refreshConfig();
  loadRelabel();
  setInterval(refreshGraph, GRAPH_EVERY_MS);
  setInterval(refreshCardinality, CARDINALITY_EVERY_MS);
});
