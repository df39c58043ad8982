// Staffer web chat: sign-in, sessions and sending. A thin client for the gateway's HTTP API
// (docs/http-api.md); plain ES modules, no build step, no dependencies.
//
//   api.js         fetch with the token, errors, the SSE reader
//   render.js      DOM builders (text only, never innerHTML with model output)
//   transcript.js  stored history and the live, streaming run
//   subruns.js     the runs of other agents a delegation call started, nested in its card
//   app.js         this file: page state and wiring

import { Api, ApiError, readEventStream, sessionPath } from "./api.js";
import { el, formatWhen, notice, renderRichText, richText, userBubble } from "./render.js";
import { SubRuns } from "./subruns.js";
import { LiveTurn, Transcript, activeRun } from "./transcript.js";

// The token lives in sessionStorage, not localStorage: it grants full control of the agent
// (which can run tools on this machine), so it should not outlive the tab or be shared with
// every other tab on the origin. A reload keeps working; a new tab signs in again from the
// link `staffer start` prints.
const TOKEN_KEY = "staffer.token";
const TOKEN_FIX = "Open the link printed by `staffer start`, or paste the token from `$STAFFER_HOME/token`.";
// How long to wait for a followed run's first event before deciding this gateway has none
// (say it restarted mid-run); the buffered events of a live run arrive at once.
const FOLLOW_GRACE_MS = 4000;
// A gateway that went away in the middle of a run (a restart, say) is tried again this long;
// reconnecting this many times in a row without a single event in between gives up.
const RECONNECT_FOR_MS = 120_000;
const RECONNECT_TRIES = 5;
const DEFAULT_MODEL_HELP =
  "Connect a model with `staffer init`, or set one in your Staffer config, then restart the gateway.";

const $ = (id) => document.getElementById(id);

const ui = {
  signin: $("signin"),
  signinForm: $("signin-form"),
  signinToken: $("signin-token"),
  signinError: $("signin-error"),
  app: $("app"),
  signOut: $("sign-out"),
  modelName: $("model-name"),
  sidebarToggle: $("sidebar-toggle"),
  sidebar: $("sidebar"),
  newSession: $("new-session"),
  sessionList: $("session-list"),
  banner: $("model-banner"),
  modelHelp: $("model-help"),
  recheck: $("recheck-status"),
  transcript: $("transcript"),
  composer: $("composer"),
  composerError: $("composer-error"),
  input: $("composer-input"),
  send: $("send"),
  cancel: $("cancel"),
};

const api = new Api();
const subruns = new SubRuns(api, { onSession: noteSession });
const transcript = new Transcript(ui.transcript, { subruns });

const state = {
  modelConfigured: false,
  /** the agent of a new web session (GET /api/agents); other agents' sessions are marked */
  defaultAgent: "main",
  sessions: [],
  /** sessionId -> the session whose run delegated to it, or null; looked up once each */
  parents: new Map(),
  sessionId: null,
  /** sessionId -> LiveTurn, for runs this tab is streaming right now */
  streams: new Map(),
  /** sessionId -> reconnects in a row without an event (see waitForGateway) */
  reconnects: new Map(),
  /** bumped on every session switch so a slow history load cannot overwrite a newer one */
  loadTicket: 0,
  refreshing: null,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// Errors and composer state

function showComposerError(err) {
  if (err instanceof ApiError && err.status === 401) return signOut(tokenRejectedMessage(err));
  const message = err instanceof ApiError ? err.message : `Something went wrong: ${err.message || err}`;
  const fix = err instanceof ApiError ? err.fix : null;
  ui.composerError.replaceChildren(
    richText(el("span", { className: "error-message" }), message),
    fix ? richText(el("span", { className: "error-fix" }), fix) : null,
  );
  ui.composerError.hidden = false;
}

function clearComposerError() {
  ui.composerError.hidden = true;
  ui.composerError.replaceChildren();
}

function updateComposer() {
  const streaming = state.sessionId !== null && state.streams.has(state.sessionId);
  ui.send.disabled = !state.modelConfigured || streaming;
  ui.send.textContent = streaming ? "Sending…" : "Send";
  // Stop is offered while this tab follows a run of the open session.
  ui.cancel.hidden = !streaming;
  ui.cancel.disabled = false;
  ui.composer.setAttribute("aria-busy", streaming ? "true" : "false");
}

function applyStatus(status) {
  const model = status.model || {};
  state.modelConfigured = Boolean(model.configured);
  ui.banner.hidden = state.modelConfigured;
  renderRichText(ui.modelHelp, model.help || DEFAULT_MODEL_HELP);
  ui.modelName.hidden = !model.name;
  ui.modelName.textContent = model.name ? `Model: ${model.name}` : "";
  updateComposer();
}

// ---------------------------------------------------------------------------------------
// Sessions

function sessionButton(s) {
  const current = s.id === state.sessionId;
  const delegated = Boolean(state.parents.get(s.id));
  // A sub-agent's session says whose it is; so does one of an agent other than the default.
  const agent = delegated || (s.agent && s.agent !== state.defaultAgent) ? s.agent || "main" : null;
  const tag = agent && el("span", { className: "session-agent", testid: "session-agent" },
    delegated ? el("span", { "aria-hidden": "true", text: "↳ " }) : null,
    delegated ? el("span", { className: "visually-hidden", text: "Sub-agent " }) : null,
    agent);
  // Under its parent, "main → researcher: the task" says no more than the task.
  const title = (delegated ? (s.title || "").replace(/^\S+ → \S+: /, "") : s.title) || "Untitled session";
  const button = el("button", {
    type: "button", className: "session-item", testid: "session-item",
    "data-session-id": s.id, "aria-current": current ? "page" : null, title: s.title || null,
  },
  el("span", { className: "session-label" },
    tag,
    el("span", { className: "session-title", text: title })),
  el("time", { className: "session-time", datetime: new Date(s.updated_at * 1000).toISOString(),
    text: formatWhen(s.updated_at) }));
  button.addEventListener("click", () => openSession(s.id, { closeSidebar: true }));
  return button;
}

/** The sessions, most recent first, each sub-agent's session in a list under its parent's. */
function renderSessionList() {
  const listed = new Set(state.sessions.map((s) => s.id));
  const parentOf = (s) => {
    const parent = state.parents.get(s.id);
    return parent && parent !== s.id && listed.has(parent) ? parent : null;
  };
  const children = new Map();
  for (const s of state.sessions) {
    const parent = parentOf(s);
    if (parent) children.set(parent, [...(children.get(parent) || []), s]);
  }
  const drawn = new Set();
  const item = (s) => {
    drawn.add(s.id);
    const li = el("li", {}, sessionButton(s));
    const under = (children.get(s.id) || []).filter((c) => !drawn.has(c.id));
    if (under.length) li.append(el("ul", { className: "session-children" }, ...under.map(item)));
    return li;
  };
  const items = state.sessions.filter((s) => !parentOf(s)).map(item);
  // Only a loop of parents (which the gateway never makes) would leave any undrawn.
  items.push(...state.sessions.filter((s) => !drawn.has(s.id)).map(item));
  if (!items.length) items.push(el("li", { className: "muted session-empty", text: "No sessions yet." }));
  ui.sessionList.replaceChildren(...items);
}

/**
 * Find out which listed sessions a delegation started (a run of theirs has a parent run)
 * and where that parent ran, so the list can nest them. Only sessions of agents other than
 * the default are asked about, each once.
 */
async function resolveParents() {
  const todo = state.sessions.filter(
    (s) => s.agent && s.agent !== state.defaultAgent && !state.parents.has(s.id));
  if (!todo.length) return;
  for (const s of todo) state.parents.set(s.id, null);
  const found = await Promise.all(todo.map(async (s) => {
    try {
      const detail = await api.json(sessionPath(s.id));
      const parentRun = (detail.runs || []).find((r) => r.parent_run_id)?.parent_run_id;
      if (!parentRun) return false;
      const run = await api.json(`/api/runs/${encodeURIComponent(parentRun)}`);
      state.parents.set(s.id, run.session_id || null);
      return Boolean(run.session_id);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 0) state.parents.delete(s.id); // ask again later
      return false;
    }
  }));
  if (found.some(Boolean)) renderSessionList();
}

/** A nested sub-run named a session: list it, if the list does not have it yet. */
function noteSession(id) {
  if (!api.token || state.refreshing || state.sessions.some((s) => s.id === id)) return;
  state.refreshing = refreshSessions()
    .catch(() => {})
    .finally(() => { state.refreshing = null; });
}

function setHashSession(id) {
  const hash = id ? `#session=${encodeURIComponent(id)}` : "";
  history.replaceState(null, "", location.pathname + location.search + hash);
}

async function refreshSessions() {
  const { sessions } = await api.json("/api/sessions");
  state.sessions = sessions || [];
  renderSessionList();
  resolveParents().catch(() => {});
}

async function openSession(id, { closeSidebar = false } = {}) {
  state.sessionId = id;
  setHashSession(id);
  renderSessionList();
  clearComposerError();
  updateComposer();
  if (closeSidebar) setSidebarOpen(false);
  const ticket = ++state.loadTicket;
  ui.transcript.setAttribute("aria-busy", "true");
  try {
    // Compactions only add markers: a gateway without the route still shows the history.
    const [detail, compactions] = await Promise.all([
      api.json(sessionPath(id)),
      api.json(`${sessionPath(id)}/compactions`).then((r) => r.compactions || [], () => []),
    ]);
    if (ticket !== state.loadTicket) return; // the user picked another session meanwhile
    let live = state.streams.get(id);
    const running = activeRun(detail);
    if (live?.supersede) {
      // A run this tab follows (it did not send it): follow it afresh under the new history.
      live.supersede();
      live = null;
    }
    if (live) {
      // Back to a session this tab is streaming: put its live turn back under the history.
      transcript.showHistory(detail, { liveRun: live.runId || running?.id, compactions });
      transcript.append(live.container);
      subruns.watch(live.container);
    } else if (running) {
      const continued = transcript.showHistory(detail, { liveRun: running.id, compactions });
      followRun(id, running, continued);
    } else {
      transcript.showHistory(detail, { compactions });
    }
  } catch (err) {
    if (ticket !== state.loadTicket) return;
    if (err instanceof ApiError && err.status === 404) {
      transcript.empty("That session no longer exists. Pick another one or start a new session.");
      state.sessionId = null;
      setHashSession(null);
      updateComposer();
      return;
    }
    transcript.empty("Could not load this session.");
    showComposerError(err);
  } finally {
    if (ticket === state.loadTicket) ui.transcript.setAttribute("aria-busy", "false");
  }
}

async function createSession() {
  const session = await api.json("/api/sessions", { method: "POST", body: {} });
  state.sessions = [session, ...state.sessions.filter((s) => s.id !== session.id)];
  return session;
}

async function newSession() {
  clearComposerError();
  try {
    const session = await createSession();
    await openSession(session.id, { closeSidebar: true });
    ui.input.focus();
  } catch (err) {
    showComposerError(err);
  }
}

// ---------------------------------------------------------------------------------------
// Sending

async function send() {
  const text = ui.input.value;
  if (!text.trim() || ui.send.disabled) return;
  clearComposerError();

  let sessionId = state.sessionId;
  if (!sessionId) {
    try {
      sessionId = (await createSession()).id;
      await openSession(sessionId);
    } catch (err) {
      showComposerError(err);
      return;
    }
  }

  const turn = new LiveTurn(transcript, sessionId);
  const bubble = userBubble(text);
  state.streams.set(sessionId, turn);
  updateComposer();
  transcript.append(bubble, turn.container);
  transcript.scrollToEnd();
  ui.input.value = "";
  autosize();

  let started = false;
  let lost = false;
  try {
    const res = await api.request(`${sessionPath(sessionId)}/messages?stream=true`, {
      method: "POST",
      body: { text },
    });
    started = true;
    refreshSessions().catch(() => {}); // the gateway may title the session from this message
    await readEventStream(res, (ev) => {
      state.reconnects.delete(sessionId);
      turn.handle(ev);
    });
    lost = !turn.finished; // the stream ended early: the gateway went away
  } catch (err) {
    if (!started) {
      // Nothing was accepted: take the optimistic bubble back and give the text back to the user.
      bubble.remove();
      turn.container.remove();
      if (!ui.input.value) ui.input.value = text;
      autosize();
      if (state.sessionId === sessionId || err.status === 401) showComposerError(err);
    } else {
      lost = !turn.finished; // the connection broke
    }
  } finally {
    const back = lost && await waitForGateway(sessionId, turn);
    state.streams.delete(sessionId);
    updateComposer();
    if (api.token) {
      refreshSessions().catch(() => {}); // titles and ordering may have changed
      // Switched away and back mid-stream (the live elements are gone), or back in touch after
      // the stream broke: re-read the history, which follows the run if it is still going.
      if (state.sessionId === sessionId && started && (back || !turn.shown)) openSession(sessionId);
    }
  }
}

/**
 * Watch a run this tab did not start (another tab, a channel, the scheduler, a restart
 * that resumed it) as it streams. `continued` is what `showHistory` drew of a run a restart
 * cut off; the turn goes on from there.
 */
async function followRun(sessionId, run, continued = null) {
  const turn = new LiveTurn(transcript, sessionId);
  turn.runId = run.id;
  if (continued) turn.continueFrom(run, continued);
  const controller = new AbortController();
  let superseded = false;
  turn.supersede = () => {
    superseded = true;
    controller.abort();
  };
  state.streams.set(sessionId, turn);
  updateComposer();
  transcript.append(turn.container);
  let seen = false;
  let lost = false;
  const giveUp = setTimeout(() => seen || controller.abort(), FOLLOW_GRACE_MS);
  try {
    const res = await api.request(`${sessionPath(sessionId)}/events?after=0`, { signal: controller.signal });
    await readEventStream(res, (ev) => {
      if (ev.run_id !== run.id) return;
      seen = true;
      state.reconnects.delete(sessionId);
      turn.handle(ev);
      if (turn.finished) controller.abort(); // this stream stays open for later runs
    });
    lost = !turn.finished; // the gateway ended the stream: it went away
  } catch (err) {
    lost = err.name !== "AbortError" && !turn.finished;
  } finally {
    clearTimeout(giveUp);
    let reopen = turn.finished && !turn.shown;
    if (!superseded && lost) {
      reopen = await waitForGateway(sessionId, turn);
    } else if (!superseded && !turn.finished) {
      // No event within the grace period: the run may have ended just before we listened.
      const still = await api.json(sessionPath(sessionId))
        .then((detail) => activeRun(detail)?.id === run.id, () => true);
      if (still) {
        turn.container.replaceWith(notice("A run is in progress in this session, but its live events are not available here. Reload later to see its answer."));
      }
      reopen = !still;
    }
    if (state.streams.get(sessionId) === turn) state.streams.delete(sessionId);
    updateComposer();
    if (api.token && !superseded) {
      refreshSessions().catch(() => {});
      if (state.sessionId === sessionId && reopen) openSession(sessionId);
    }
  }
}

/**
 * The event stream of a run broke before its run_finished. Say so and wait until the
 * gateway answers again: true when it does (the caller redraws the session from its
 * history, and follows the run if it is still going: a restarted gateway resumes it),
 * false when this tab gives up or moved on.
 */
async function waitForGateway(sessionId, turn) {
  const tries = (state.reconnects.get(sessionId) || 0) + 1;
  state.reconnects.set(sessionId, tries);
  if (tries > RECONNECT_TRIES) {
    turn.fail("the connection to the gateway keeps breaking. Reload the page to see what was saved.");
    return false;
  }
  turn.connectionLost();
  const deadline = Date.now() + RECONNECT_FOR_MS;
  for (let delay = 500; api.token && state.streams.get(sessionId) === turn; delay = Math.min(delay * 2, 3000)) {
    await sleep(delay);
    try {
      await api.json("/api/status");
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        signOut(tokenRejectedMessage(err));
        return false;
      }
      if (Date.now() > deadline) {
        turn.fail("lost the connection to the gateway. Reload the page to see what was saved.");
        return false;
      }
    }
  }
  return false;
}

/** Ask the gateway to stop the open session's run; its run_finished ends the live turn. */
async function cancelRun() {
  const sessionId = state.sessionId;
  if (!sessionId || ui.cancel.disabled) return;
  ui.cancel.disabled = true;
  try {
    await api.json(`${sessionPath(sessionId)}/cancel`, { method: "POST" });
  } catch (err) {
    ui.cancel.disabled = false;
    showComposerError(err);
  }
}

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${ui.input.scrollHeight + 2}px`;
}

// ---------------------------------------------------------------------------------------
// Sign-in and boot

function tokenRejectedMessage(err) {
  const code = err && err.code ? ` (${err.code})` : "";
  return `That access token was not accepted${code}. ${TOKEN_FIX}`;
}

function showSignIn(error = null) {
  ui.app.hidden = true;
  ui.signOut.hidden = true;
  ui.sidebarToggle.hidden = true;
  ui.modelName.hidden = true;
  ui.signin.hidden = false;
  ui.signinError.hidden = !error;
  renderRichText(ui.signinError, error || "");
  ui.signinToken.setAttribute("aria-invalid", error ? "true" : "false");
  ui.signinToken.focus();
}

function signOut(error = null) {
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = null;
  state.sessionId = null;
  state.sessions = [];
  state.parents.clear();
  transcript.clear();
  ui.sessionList.replaceChildren();
  setHashSession(null);
  showSignIn(error);
}

async function signIn(token, { wantedSession = null } = {}) {
  api.token = token;
  let status;
  try {
    status = await api.json("/api/status");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(tokenRejectedMessage(err));
    } else {
      // Keep a stored token: the gateway may just be restarting.
      api.token = null;
      showSignIn(`${err.message} ${err.fix || ""}`.trim());
    }
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  ui.signin.hidden = true;
  ui.signinError.hidden = true;
  ui.signinToken.value = "";
  ui.app.hidden = false;
  ui.signOut.hidden = false;
  ui.sidebarToggle.hidden = false;
  applyStatus(status);
  try {
    // Which agent new web sessions get; a gateway without GET /api/agents has only "main".
    const agents = await api.json("/api/agents").catch(() => ({}));
    state.defaultAgent = agents.default || "main";
    await refreshSessions();
  } catch (err) {
    showComposerError(err);
    return;
  }
  const wanted = wantedSession || state.sessionId;
  const target = state.sessions.find((s) => s.id === wanted) || state.sessions[0];
  if (target) await openSession(target.id);
  else transcript.empty("Start a conversation: type a message below.");
  ui.input.focus();
}

/** Take `token` (and `session`) from the URL fragment and drop the token from the address bar. */
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  const session = params.get("session");
  if (token !== null) {
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }
  return { token, session };
}

function setSidebarOpen(open) {
  ui.app.classList.toggle("sidebar-open", open);
  ui.sidebarToggle.setAttribute("aria-expanded", open ? "true" : "false");
}

function wire() {
  ui.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = ui.signinToken.value.trim();
    if (!token) {
      showSignIn(`Enter the access token. ${TOKEN_FIX}`);
      return;
    }
    signIn(token);
  });
  ui.signOut.addEventListener("click", () => signOut());
  ui.newSession.addEventListener("click", newSession);
  ui.cancel.addEventListener("click", cancelRun);
  ui.recheck.addEventListener("click", async () => {
    try {
      applyStatus(await api.json("/api/status"));
    } catch (err) {
      showComposerError(err);
    }
  });
  ui.sidebarToggle.addEventListener("click", () => setSidebarOpen(!ui.app.classList.contains("sidebar-open")));
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey
        && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  ui.input.addEventListener("input", autosize);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && ui.app.classList.contains("sidebar-open")) {
      setSidebarOpen(false);
      ui.sidebarToggle.focus();
    }
  });
  // Pasting a fresh `staffer start` link into this tab signs in again.
  window.addEventListener("hashchange", () => {
    const { token, session } = readFragment();
    if (token) signIn(token, { wantedSession: session });
    else if (session && api.token && session !== state.sessionId) openSession(session);
  });
}

function boot() {
  wire();
  const { session } = readFragment();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token, { wantedSession: session });
  else showSignIn();
}

boot();
