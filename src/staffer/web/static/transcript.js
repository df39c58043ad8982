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
  resumedNotice,
  runFooter,
  setResumed,
  toolCard,
  userBubble,
} from "./render.js";

const ACTIVE_RUN = new Set(["queued", "running", "waiting"]);

/** The run in `detail` (a session with history) that is still going, if any. */
export function activeRun(detail) {
  return (detail.runs || []).find((r) => ACTIVE_RUN.has(r.status)) || null;
}

/** True for an active run that a restart cut off: it resumes (or was resumed) from its
 * journal, and this process's event stream only has what it did since. */
function wasCutOff(run) {
  const attempt = Number(run.attempt) || 0;
  return ACTIVE_RUN.has(run.status) && (attempt > 1 || (run.status === "queued" && attempt > 0));
}

/** The scrolling log of messages, tool cards and run footers. */
export class Transcript {
  /** `subruns` (a SubRuns) nests the sub-runs of delegation calls into their cards. */
  constructor(node, { subruns = null } = {}) {
    this.node = node;
    this.subruns = subruns;
  }

  /** A tool card for a call of run `runId`. */
  card(name, args, runId) {
    const card = toolCard(name, args);
    this.subruns?.attach(card, { name, args, parentRunId: runId });
    return card;
  }

  finishCard(card, outcome) {
    finishToolCard(card, outcome);
    this.subruns?.finish(card, outcome);
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
   * Of the `liveRun` (one a LiveTurn will replay from the event stream) only the question is
   * drawn, unless a restart cut it off: then the event stream only has its new attempt, so
   * what it stored before is drawn too, and handed back (`cards` by call id, the stored
   * final `answer`) for the LiveTurn to continue from (`LiveTurn.continueFrom`).
   * Each of `compactions` (`GET /api/sessions/{id}/compactions`) is marked after the last
   * message it summarized.
   */
  showHistory(detail, { liveRun = null, compactions = [] } = {}) {
    const runs = new Map((detail.runs || []).map((r) => [r.id, r]));
    const live = liveRun ? runs.get(liveRun) : null;
    const keepLive = Boolean(live && wasCutOff(live));
    const messages = [...(detail.messages || [])]
      .filter((m) => !liveRun || keepLive || m.run_id !== liveRun || m.role === "user")
      .sort((a, b) => a.seq - b.seq);
    const calls = new Map((detail.tool_calls || []).map((c) => [c.call_id, c]));
    const continued = { cards: new Map(), answer: null };
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
          const card = this.card(call.name, call.arguments, m.run_id);
          const record = calls.get(call.id);
          if (record) {
            this.finishCard(card, { result: record.result, error: record.error, durationMs: record.duration_ms });
          }
          cards.set(call.id, card);
          if (m.run_id === liveRun) continued.cards.set(call.id, card);
          out.push(card);
        }
        if (m.run_id === liveRun && m.content && !(m.tool_calls || []).length) continued.answer = m.content;
      } else if (m.role === "tool" && !calls.has(m.tool_call_id)) {
        // No ToolCall record (an older or interrupted run): the tool message still has the outcome.
        let card = cards.get(m.tool_call_id);
        if (!card) {
          card = this.card(m.name || "tool", "", m.run_id);
          out.push(card);
        }
        this.finishCard(card, m.is_error ? { error: m.content || "" } : { result: m.content || "" });
      }
      if (m.run_id && m.run_id !== liveRun && lastIndex.get(m.run_id) === i && runs.has(m.run_id)) {
        const run = runs.get(m.run_id);
        if (Number(run.attempt) > 1) out.push(resumedNotice(run.attempt));
        const footer = runFooter(null);
        footers.push([footer, runs.get(m.run_id)]);
        out.push(footer);
      }
    });
    markUpTo(Infinity);
    const anyActive = [...runs.values()].some((r) => ACTIVE_RUN.has(r.status));
    for (const card of cards.values()) {
      if (card.dataset.state === "running" && !anyActive) this.finishCard(card, { unfinished: true });
    }

    if (!out.length) {
      this.empty("No messages yet. Say hello below.");
      return continued;
    }
    this.node.replaceChildren(...out);
    // Outcomes go in once the footers are in the page: a failed run adds its error after the footer.
    for (const [footer, run] of footers) {
      footer.parts.model.textContent = run.model || "";
      footer.parts.usage.textContent = formatUsage(run.usage);
      applyRunOutcome(footer, run.status, run.error);
    }
    this.scrollToEnd();
    return continued;
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
    this.attempt = null; // of the run, from its run_started
    this.minAttempt = 0; // events of earlier attempts are skipped (see continueFrom)
    this.storedAnswer = null;
    this.resumed = null;
  }

  /**
   * Go on from a run drawn from the history as far as it was stored (a restart cut it off):
   * the cards drawn there get their results in place, and of the event stream only the
   * attempt after the history counts (earlier attempts' steps are in the history).
   */
  continueFrom(run, { cards = new Map(), answer = null } = {}) {
    this.runId = run.id;
    for (const [id, card] of cards) this.cards.set(id, card);
    this.storedAnswer = answer;
    const attempt = Number(run.attempt) || 0;
    this.minAttempt = run.status === "queued" ? attempt + 1 : attempt;
    if (run.status !== "queued" && attempt > 1) this.showResumed(attempt);
  }

  showResumed(attempt, stepsDone = null) {
    if (this.resumed) {
      setResumed(this.resumed, attempt, stepsDone);
      return;
    }
    const note = resumedNotice(attempt, stepsDone);
    this.insert(note);
    this.resumed = note;
  }

  /** The stream broke before the run ended: say so while the page gets back in touch. */
  connectionLost() {
    this.closeBubble();
    const note = notice("Lost the connection to the gateway. Reconnecting…");
    note.dataset.testid = "reconnecting";
    note.setAttribute("role", "status");
    this.insert(note);
  }

  /** False once the user switched to another session and the transcript was redrawn. */
  get shown() {
    return this.container.isConnected;
  }

  change(update) {
    if (this.shown) this.transcript.follow(update);
    else update();
  }

  /** Add `node` to the run's content: before its footer (and its "resumed" note, which,
   * as in a stored history, stays with the footer). */
  insert(node) {
    this.change(() => (this.resumed || this.footer).before(node));
  }

  closeBubble() {
    if (this.bubble) renderRichText(this.bubble.body, this.text);
    this.bubble = null;
    this.text = "";
  }

  dropBubble() {
    const bubble = this.bubble;
    if (bubble) this.change(() => bubble.remove());
    this.bubble = null;
    this.text = "";
    this.sawText = false;
  }

  handle(ev) {
    if (ev.run_id) this.runId = ev.run_id;
    if (ev.type === "run_started") this.attempt = Number(ev.attempt) || 1;
    if (this.attempt !== null && this.attempt < this.minAttempt) return;
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
        if (ev.resumed) {
          this.closeBubble();
          this.showResumed(ev.attempt, ev.steps_done);
        }
        break;
      case "steered":
        this.closeBubble();
        this.insert(notice(`Added to the running task: ${ev.text || ""}`));
        break;
      case "text_delta":
        if (ev.text) this.appendText(ev.text);
        break;
      case "tool_call_started": {
        if (this.cards.has(ev.call_id)) {
          // Drawn from the history already, and so was the text streamed before it.
          this.dropBubble();
          break;
        }
        this.closeBubble();
        const card = this.transcript.card(ev.name, ev.arguments, this.runId);
        this.cards.set(ev.call_id, card);
        this.insert(card);
        break;
      }
      case "tool_call_finished": {
        let card = this.cards.get(ev.call_id);
        if (!card) {
          card = this.transcript.card(ev.name, "", this.runId);
          this.cards.set(ev.call_id, card);
          this.insert(card);
        }
        this.transcript.finishCard(card, { result: ev.result, error: ev.error, durationMs: ev.duration_ms });
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
      if (!this.sawText && ev.text && ev.text !== this.storedAnswer) {
        (this.resumed || this.footer).before(assistantBubble(ev.text));
      }
      for (const card of this.cards.values()) {
        if (card.dataset.state === "running") this.transcript.finishCard(card, { unfinished: true });
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
