// Building the chat's DOM. Model output only ever reaches the page as text nodes
// (textContent / createTextNode), never as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "testid") node.dataset.testid = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const formatNumber = (n) => Number(n || 0).toLocaleString("en");

function formatDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
}

export function formatUsage(usage) {
  if (!usage) return "";
  let text = `in ${formatNumber(usage.input_tokens)} · out ${formatNumber(usage.output_tokens)} tokens`;
  if (usage.cached_input_tokens) text += ` · ${formatNumber(usage.cached_input_tokens)} cached`;
  return text;
}

export function formatWhen(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}

function prettyArguments(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** `renderRichText` that hands the node back, for building trees inline. */
export function richText(node, text) {
  renderRichText(node, text);
  return node;
}

/** Minimal markdown — fenced code, `inline code`, **bold** — built from DOM nodes, never HTML. */
export function renderRichText(node, text) {
  node.replaceChildren();
  const fence = /```[^\n`]*\n([\s\S]*?)(?:```|$)/g;
  let last = 0;
  for (const m of text.matchAll(fence)) {
    appendInline(node, text.slice(last, m.index));
    node.append(el("pre", { className: "code-block" }, el("code", { text: m[1].replace(/\n$/, "") })));
    last = m.index + m[0].length;
  }
  appendInline(node, text.slice(last));
}

function appendInline(node, text) {
  if (!text) return;
  for (const part of text.split(/(`[^`\n]+`|\*\*[^*\n]+\*\*)/)) {
    if (!part) continue;
    if (part.length > 2 && part.startsWith("`") && part.endsWith("`")) {
      node.append(el("code", { text: part.slice(1, -1) }));
    } else if (part.length > 4 && part.startsWith("**") && part.endsWith("**")) {
      node.append(el("strong", { text: part.slice(2, -2) }));
    } else {
      node.append(document.createTextNode(part));
    }
  }
}

export function userBubble(text) {
  return el("div", { className: "message user", testid: "user-message" },
    el("span", { className: "visually-hidden", text: "You said:" }),
    el("div", { className: "bubble", text }));
}

export function assistantBubble(text = "") {
  const body = el("div", { className: "bubble" });
  if (text) renderRichText(body, text);
  const node = el("div", { className: "message assistant", testid: "assistant-message" },
    el("span", { className: "visually-hidden", text: "Staffer said:" }), body);
  node.body = body;
  return node;
}

export function notice(text) {
  return el("p", { className: "notice", text });
}

/** A run that a restart cut off and that went on by itself; `stepsDone` when known. */
export function resumedNotice(attempt, stepsDone = null) {
  const node = el("p", { className: "notice resumed", testid: "resumed", role: "note" });
  setResumed(node, attempt, stepsDone);
  return node;
}

export function setResumed(node, attempt, stepsDone = null) {
  const n = Number(stepsDone) || 0;
  const done = n ? `, ${n} step${n === 1 ? "" : "s"} already done` : "";
  node.textContent = `Resumed after a restart (attempt ${Number(attempt) || 2}${done})`;
}

/** Where the model's context starts from a summary: `count` older messages were compacted. */
export function compactionMarker(count) {
  const n = Number(count) || 0;
  const text = `Earlier messages were summarized (${n} message${n === 1 ? "" : "s"})`;
  return el("p", { className: "compaction-marker", testid: "compaction-marker", role: "note", text });
}

export function toolCard(name, args) {
  const status = el("span", { className: "tool-card-status", testid: "tool-card-status", text: "running…" });
  const duration = el("span", { className: "tool-duration" });
  const resultLabel = el("summary", { text: "Result" });
  const resultBody = el("pre", { className: "tool-result" });
  const result = el("details", { className: "tool-section", open: true, hidden: true }, resultLabel, resultBody);
  const head = el("header", { className: "tool-card-head" },
    el("span", { className: "tool-icon", "aria-hidden": "true", text: "⚙" }),
    el("code", { className: "tool-name", text: name }),
    status,
    duration);
  const card = el("article", {
    className: "tool-card", testid: "tool-card", "data-state": "running", "aria-label": `Tool call: ${name}`,
  },
  head,
  el("details", { className: "tool-section", open: true },
    el("summary", { text: "Arguments" }),
    el("pre", { className: "tool-args", text: prettyArguments(args) })),
  result);
  card.parts = { head, status, duration, result, resultLabel, resultBody };
  return card;
}

export function finishToolCard(card, { result = null, error = null, durationMs = null, unfinished = false }) {
  const p = card.parts;
  if (unfinished) {
    card.dataset.state = "unfinished";
    p.status.textContent = "no result";
    return;
  }
  const failed = error !== null && error !== undefined;
  card.dataset.state = failed ? "error" : "done";
  p.status.textContent = failed ? "error" : "done";
  p.duration.textContent = formatDuration(durationMs);
  p.resultLabel.textContent = failed ? "Error" : "Result";
  p.resultBody.textContent = failed ? error : (result ?? "");
  p.result.hidden = false;
}

export function runFooter(run) {
  const model = el("span", { className: "run-model", text: run?.model || "" });
  const usage = el("span", { className: "usage", testid: "usage", text: formatUsage(run?.usage) });
  const status = el("span", { className: "run-status" });
  const footer = el("div", { className: "run-meta" }, model, usage, status);
  footer.parts = { model, usage, status };
  if (run) applyRunOutcome(footer, run.status, run.error);
  return footer;
}

export function applyRunOutcome(footer, status, error) {
  if (status === "failed") {
    footer.after(el("p", { className: "run-error", testid: "error", text: `The run failed: ${error || "no reason given."}` }));
  }
  const labels = { cancelled: "cancelled", running: "running…", queued: "queued…", waiting: "waiting…" };
  footer.parts.status.textContent = labels[status] || "";
}
