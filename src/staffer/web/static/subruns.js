// Work handed to other agents. A `delegate`, `send_to_agent` or `delegation_result` call
// starts (or waits for) a sub-run: an ordinary run of another agent in a session of its
// own. Its tool card holds a nested block that names the agent, follows the sub-run's
// status, shows its answer or error and links to its session. The sub-run's events go to
// its own session, not to this one's stream, so the block polls the run while it is active.

import { el, renderRichText } from "./render.js";

/** Tools whose calls start, or wait for, a run of another agent. */
export const DELEGATION_TOOLS = new Set(["delegate", "send_to_agent", "delegation_result"]);

const ENDED = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 1000;
const STATUS_TEXT = {
  starting: "starting…",
  queued: "queued",
  running: "working…",
  waiting: "waiting…",
  started: "started",
  sent: "sent",
  done: "done",
  failed: "failed",
  cancelled: "cancelled",
};

const runPath = (id) => `/api/runs/${encodeURIComponent(id)}`;
const text = (value) => (typeof value === "string" ? value : null);

function parseObject(value) {
  if (value && typeof value === "object") return value;
  if (typeof value !== "string") return null;
  try {
    const parsed = JSON.parse(value);
    return parsed && typeof parsed === "object" ? parsed : null;
  } catch {
    return null;
  }
}

/** The answer a finished run gave: its last assistant message without tool calls. */
async function answerOf(api, run) {
  const detail = await api.json(`/api/sessions/${encodeURIComponent(run.session_id)}`);
  const mine = (detail.messages || []).filter(
    (m) => m.run_id === run.id && m.role === "assistant" && !(m.tool_calls || []).length,
  );
  return mine.length ? mine[mine.length - 1].content || "" : "";
}

/** One nested block: what is known about one sub-run, drawn into its tool card. */
class SubRunBlock {
  constructor(owner, card, { name, args, parentRunId }) {
    const a = parseObject(args) || {};
    this.owner = owner;
    this.card = card;
    this.parentRunId = parentRunId || null;
    this.agent = text(a.agent);
    this.runId = null;
    this.sessionId = null;
    this.status = "starting";
    this.answer = null;
    this.error = null;
    this.hint = null;
    this.dropped = false;

    this.parts = {
      agent: el("span", { className: "subrun-agent", testid: "subrun-agent" }),
      status: el("span", { className: "subrun-status", testid: "subrun-status" }),
      link: el("a", { className: "subrun-link", testid: "subrun-link", hidden: true }),
      answer: el("div", { className: "subrun-answer", testid: "subrun-answer", hidden: true }),
      error: el("p", { className: "subrun-error", testid: "subrun-error", hidden: true }),
    };
    const p = this.parts;
    this.node = el("section", { className: "subrun", testid: "subrun" },
      el("header", { className: "subrun-head" },
        el("span", { className: "subrun-icon", "aria-hidden": "true", text: "↳" }),
        p.agent, p.status, p.link),
      p.answer, p.error);
    this.node.block = this;
    if (name === "delegation_result" && text(a.run_id)) this.setRun(a.run_id);
    this.render();
  }

  /** Nothing more to learn: an ended run whose answer (if any) and session are known. */
  get settled() {
    if (this.dropped) return true;
    if (!this.runId) return ENDED.has(this.status); // failed before any run was started
    return ENDED.has(this.status) && this.sessionId !== null
      && (this.status !== "done" || this.answer !== null);
  }

  setRun(runId) {
    this.runId = runId;
    this.owner.claim(runId, this);
  }

  /** The tool call ended: its result is the JSON the delegation tools answer with. */
  finish({ result = null, error = null, unfinished = false }) {
    const r = parseObject(result);
    if (!r) {
      // The tool refused the call (a bad argument), or never answered: no sub-run to show
      // unless one was already found.
      if (!this.runId) return this.drop();
      if (!unfinished && error) this.error = error;
      return this.render();
    }
    this.agent = text(r.agent) || this.agent;
    if (text(r.run_id) && r.run_id !== this.runId) this.setRun(r.run_id);
    this.sessionId = text(r.session_id) || this.sessionId;
    if (r.status === "done") {
      this.status = "done";
      this.answer = text(r.answer) ?? "";
    } else if (r.status === "failed") {
      this.status = "failed";
      this.error = text(r.error);
      this.hint = text(r.hint);
    } else if (!ENDED.has(this.status) && STATUS_TEXT[r.status]) {
      this.status = r.status; // started, sent, running: the next poll says more
    }
    this.render();
    this.owner.watchBlock(this);
  }

  /** Apply a run record from GET /api/runs/{id} (or a parent's children). */
  applyRun(run) {
    this.agent = text(run.agent) || this.agent;
    if (text(run.session_id) && run.session_id !== this.sessionId) {
      this.sessionId = run.session_id;
      this.owner.onSession(run.session_id);
    }
    if (STATUS_TEXT[run.status]) this.status = run.status;
    if (run.status !== "done" && run.error) this.error = run.error;
  }

  /** Bring the block up to date; `siblings` are the runs its parent run started (or null). */
  async poll(api, siblings) {
    if (!this.runId && siblings) this.discover(siblings);
    if (!this.runId) return;
    const run = (siblings || []).find((r) => r.id === this.runId) || await api.json(runPath(this.runId));
    this.applyRun(run);
    if (run.status === "done" && this.answer === null && run.session_id) {
      this.answer = await answerOf(api, run);
    }
    this.render();
  }

  /** While the call is still going its result (with the run id) is not there yet: the
   * sub-run is the parent run's first child for this agent that no other card shows. */
  discover(siblings) {
    if (this.card.dataset.state !== "running") return;
    const mine = siblings.find(
      (r) => (!this.agent || r.agent === this.agent) && this.owner.isFree(r.id, this),
    );
    if (mine) this.setRun(mine.id);
  }

  drop() {
    this.dropped = true;
    this.node.remove();
  }

  render() {
    const p = this.parts;
    const agent = this.agent || "another agent";
    this.node.dataset.status = this.status;
    this.node.setAttribute("aria-label", `Work handed to ${agent}`);
    p.agent.textContent = agent;
    p.status.textContent = STATUS_TEXT[this.status] || this.status;
    if (this.sessionId) {
      p.link.href = `#session=${encodeURIComponent(this.sessionId)}`;
      p.link.textContent = `Open ${agent}'s session`;
      p.link.hidden = false;
    }
    const answer = this.status === "done" && this.answer ? this.answer : null;
    p.answer.hidden = !answer;
    if (answer !== null && p.answer.dataset.text !== answer) {
      renderRichText(p.answer, answer);
      p.answer.dataset.text = answer;
    }
    const failed = this.status !== "done" && this.error;
    p.error.hidden = !failed;
    p.error.textContent = failed ? [this.error, this.hint].filter(Boolean).join(" · Hint: ") : "";
  }
}

/** The nested blocks of the page and the one timer that keeps the active ones current. */
export class SubRuns {
  /** `onSession(id)` hears of each sub-run session a block learns about. */
  constructor(api, { onSession = () => {} } = {}) {
    this.api = api;
    this.onSession = onSession;
    this.active = new Set();
    this.owners = new Map(); // run id -> the block showing it
    this.timer = null;
    this.ticking = false;
  }

  /** Give `card` (a tool card) its nested block if `name` is a delegation tool. */
  attach(card, { name, args, parentRunId = null }) {
    if (!DELEGATION_TOOLS.has(name)) return;
    const block = new SubRunBlock(this, card, { name, args, parentRunId });
    card.subrun = block;
    card.parts.head.after(block.node);
    // The block says what the raw JSON result says; keep that one folded.
    card.parts.result.open = false;
    this.watchBlock(block);
  }

  finish(card, outcome) {
    card.subrun?.finish(outcome);
  }

  /** Poll the blocks under `root` again (a live turn put back into the page). */
  watch(root) {
    root.querySelectorAll(".subrun").forEach((node) => node.block && this.watchBlock(node.block));
  }

  watchBlock(block) {
    if (block.settled) return;
    this.active.add(block);
    this.schedule(0);
  }

  claim(runId, block) {
    this.owners.set(runId, block);
  }

  /** A run another block shows on the page is taken; one of a discarded view is not. */
  isFree(runId, block) {
    const owner = this.owners.get(runId);
    return !owner || owner === block || owner.dropped || !owner.node.isConnected;
  }

  schedule(ms = POLL_MS) {
    if (this.timer === null && !this.ticking && this.active.size) {
      this.timer = setTimeout(() => this.tick(), ms);
    }
  }

  async tick() {
    this.timer = null;
    this.ticking = true;
    try {
      // A block off the page (another session is shown) stops; `watch` brings it back.
      for (const block of this.active) {
        if (block.settled || !block.node.isConnected) this.active.delete(block);
      }
      for (const [runId, block] of this.owners) {
        if (!block.node.isConnected) this.owners.delete(runId);
      }
      // One request per parent run covers all the sub-runs it started.
      const children = new Map();
      for (const block of this.active) {
        const parent = block.parentRunId;
        if (!parent || children.has(parent)) continue;
        children.set(parent, await this.api.json(`${runPath(parent)}/children`)
          .then((r) => r.runs || [], () => null));
      }
      for (const block of [...this.active]) {
        try {
          await block.poll(this.api, children.get(block.parentRunId) || null);
        } catch (err) {
          if (err && err.status === 404) this.active.delete(block); // no such run (any more)
          // anything else (the gateway restarting, say): try again on the next tick
        }
        if (block.settled) this.active.delete(block);
      }
    } finally {
      this.ticking = false;
      this.schedule();
    }
  }
}
