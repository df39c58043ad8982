// The conversation pane: a stored history rendered in one go, and a live run rendered
// event by event as the gateway streams it.

import {
  applyRunOutcome,
  assistantBubble,
  compactionMarker,
  el,
  finishToolCard,
  formatUsage,
  notice,
  renderRichText,
  runFooter,
  toolCard,
  userBubble,
} from "./render.js";

const ACTIVE_RUN = new Set(["queued", "running", "waiting"]);

/** The run in `detail` (a session with history) that is still going, if any. */
export function activeRun(detail) {
  return (detail.runs || []).find((r) => ACTIVE_RUN.has(r.status)) || null;
}

/** The scrolling log of messages, tool cards and run footers. */
export class Transcript {
  constructor(node) {
    this.node = node;
  }

  nearBottom() {
    const t = this.node;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  }

  scrollToEnd() {
    this.node.scrollTop = this.node.scrollHeight;
  }

  /** Run `change`, then keep following the conversation if the reader was at the bottom. */
  follow(change) {
    const atBottom = this.nearBottom();
    change();
    if (atBottom) this.scrollToEnd();
  }

  append(...nodes) {
    this.follow(() => {
      this.node.querySelector(".empty-state")?.remove();
      this.node.append(...nodes);
    });
  }

  clear() {
    this.node.replaceChildren();
  }

  empty(text) {
    this.node.replaceChildren(el("div", { className: "empty-state" }, el("p", { text })));
  }

  /**
   * Render `GET /api/sessions/{id}`: bubbles, tool cards where they happened, a footer per run.
   * Of the `liveRun` (one a LiveTurn will replay from the event stream) only the question is drawn.
   * Each of `compactions` (`GET /api/sessions/{id}/compactions`) is marked after the last
   * message it summarized.
   */
  showHistory(detail, { liveRun = null, compactions = [] } = {}) {
    const messages = [...(detail.messages || [])]
      .filter((m) => !liveRun || m.run_id !== liveRun || m.role === "user")
      .sort((a, b) => a.seq - b.seq);
    const calls = new Map((detail.tool_calls || []).map((c) => [c.call_id, c]));
    const runs = new Map((detail.runs || []).map((r) => [r.id, r]));
    const lastIndex = new Map();
    messages.forEach((m, i) => m.run_id && lastIndex.set(m.run_id, i));

    const cards = new Map();
    const out = [];
    const footers = [];
    const markers = [...compactions].sort((a, b) => a.upto_seq - b.upto_seq);
    const markUpTo = (seq) => {
      while (markers.length && markers[0].upto_seq < seq) out.push(compactionMarker(markers.shift().messages));
    };
    messages.forEach((m, i) => {
      markUpTo(m.seq);
      if (m.role === "user") {
        out.push(userBubble(m.content || ""));
      } else if (m.role === "assistant") {
        if (m.content) out.push(assistantBubble(m.content));
        for (const call of m.tool_calls || []) {
          const card = toolCard(call.name, call.arguments);
          const record = calls.get(call.id);
          if (record) {
            finishToolCard(card, { result: record.result, error: record.error, durationMs: record.duration_ms });
          }
          cards.set(call.id, card);
          out.push(card);
        }
      } else if (m.role === "tool" && !calls.has(m.tool_call_id)) {
        // No ToolCall record (an older or interrupted run): the tool message still has the outcome.
        let card = cards.get(m.tool_call_id);
        if (!card) {
          card = toolCard(m.name || "tool", "");
          out.push(card);
        }
        finishToolCard(card, m.is_error ? { error: m.content || "" } : { result: m.content || "" });
      }
      if (m.run_id && m.run_id !== liveRun && lastIndex.get(m.run_id) === i && runs.has(m.run_id)) {
        const footer = runFooter(null);
        footers.push([footer, runs.get(m.run_id)]);
        out.push(footer);
      }
    });
    markUpTo(Infinity);
    const anyActive = [...runs.values()].some((r) => ACTIVE_RUN.has(r.status));
    for (const card of cards.values()) {
      if (card.dataset.state === "running" && !anyActive) finishToolCard(card, { unfinished: true });
    }

    if (!out.length) {
      this.empty("No messages yet. Say hello below.");
      return;
    }
    this.node.replaceChildren(...out);
    // Outcomes go in once the footers are in the page: a failed run adds its error after the footer.
    for (const [footer, run] of footers) {
      footer.parts.model.textContent = run.model || "";
      footer.parts.usage.textContent = formatUsage(run.usage);
      applyRunOutcome(footer, run.status, run.error);
    }
    this.scrollToEnd();
  }
}

/** The part of the transcript one streaming run writes into, driven by its events. */
export class LiveTurn {
  constructor(transcript, sessionId) {
    this.transcript = transcript;
    this.sessionId = sessionId;
    this.runId = null;
    this.queued = null;
    // aria-busy holds screen-reader announcements of the live log until the answer is whole.
    this.container = el("div", { className: "turn", "aria-busy": "true" });
    this.footer = runFooter(null);
    this.footer.parts.status.textContent = "running…";
    this.container.append(this.footer);
    this.bubble = null;
    this.text = "";
    this.sawText = false;
    this.cards = new Map();
    this.finished = false;
  }

  /** False once the user switched to another session and the transcript was redrawn. */
  get shown() {
    return this.container.isConnected;
  }

  change(update) {
    if (this.shown) this.transcript.follow(update);
    else update();
  }

  insert(node) {
    this.change(() => this.footer.before(node));
  }

  closeBubble() {
    if (this.bubble) renderRichText(this.bubble.body, this.text);
    this.bubble = null;
    this.text = "";
  }

  handle(ev) {
    if (ev.run_id) this.runId = ev.run_id;
    switch (ev.type) {
      case "run_queued":
        this.queued = notice(`Queued: this message runs after the active one (position ${ev.position || 1}).`);
        this.queued.dataset.testid = "queued";
        this.insert(this.queued);
        break;
      case "run_started":
        if (this.queued) {
          this.queued.remove();
          this.queued = null;
        }
        this.footer.parts.model.textContent = ev.model || "";
        break;
      case "steered":
        this.closeBubble();
        this.insert(notice(`Added to the running task: ${ev.text || ""}`));
        break;
      case "text_delta":
        if (ev.text) this.appendText(ev.text);
        break;
      case "tool_call_started": {
        this.closeBubble();
        const card = toolCard(ev.name, ev.arguments);
        this.cards.set(ev.call_id, card);
        this.insert(card);
        break;
      }
      case "tool_call_finished": {
        let card = this.cards.get(ev.call_id);
        if (!card) {
          card = toolCard(ev.name, "");
          this.insert(card);
        }
        finishToolCard(card, { result: ev.result, error: ev.error, durationMs: ev.duration_ms });
        break;
      }
      case "notice":
        this.closeBubble();
        this.insert(notice(ev.text || ""));
        break;
      case "compacted":
        this.closeBubble();
        this.insert(compactionMarker(ev.messages));
        break;
      case "usage":
        this.footer.parts.usage.textContent = formatUsage(ev);
        break;
      case "run_finished":
        this.finish(ev);
        break;
      default:
        break; // event types this page does not know yet
    }
  }

  appendText(text) {
    if (!this.bubble) {
      this.bubble = assistantBubble();
      this.bubble.classList.add("streaming");
      this.textNode = document.createTextNode("");
      this.bubble.body.append(this.textNode);
      this.insert(this.bubble);
    }
    this.text += text;
    this.sawText = true;
    // Plain text while streaming (cheap, one node); markdown once the bubble is complete.
    this.change(() => this.textNode.appendData(text));
  }

  finish(ev) {
    if (this.finished) return;
    this.finished = true;
    this.change(() => {
      this.closeBubble();
      if (!this.sawText && ev.text) this.footer.before(assistantBubble(ev.text));
      for (const card of this.cards.values()) {
        if (card.dataset.state === "running") finishToolCard(card, { unfinished: true });
      }
      if (ev.usage) this.footer.parts.usage.textContent = formatUsage(ev.usage);
      applyRunOutcome(this.footer, ev.status, ev.error);
      this.container.querySelectorAll(".streaming").forEach((n) => n.classList.remove("streaming"));
    });
    this.container.setAttribute("aria-busy", "false");
  }

  /** The stream broke before `run_finished`: say so where the answer would have been. */
  fail(message) {
    this.finish({ type: "run_finished", status: "failed", error: message, text: "" });
  }
}
