// Staffer web chat: sign-in, sessions and sending. A thin client for the gateway's HTTP API
// (docs/http-api.md); plain ES modules, no build step, no dependencies.
//
//   api.js         fetch with the token, errors, the SSE reader
//   render.js      DOM builders (text only, never innerHTML with model output)
//   transcript.js  stored history and the live, streaming run
//   app.js         this file: page state and wiring

import { Api, ApiError, readEventStream, sessionPath } from "./api.js";
import { el, formatWhen, notice, renderRichText, richText, userBubble } from "./render.js";
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
const transcript = new Transcript(ui.transcript);

const state = {
  modelConfigured: false,
  sessions: [],
  sessionId: null,
  /** sessionId -> LiveTurn, for runs this tab is streaming right now */
  streams: new Map(),
  /** bumped on every session switch so a slow history load cannot overwrite a newer one */
  loadTicket: 0,
};

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

function renderSessionList() {
  const items = state.sessions.map((s) => {
    const current = s.id === state.sessionId;
    const button = el("button", {
      type: "button", className: "session-item", testid: "session-item",
      "data-session-id": s.id, "aria-current": current ? "page" : null,
    },
    el("span", { className: "session-title", text: s.title || "Untitled session" }),
    el("time", { className: "session-time", datetime: new Date(s.updated_at * 1000).toISOString(),
      text: formatWhen(s.updated_at) }));
    button.addEventListener("click", () => openSession(s.id, { closeSidebar: true }));
    return el("li", {}, button);
  });
  if (!items.length) items.push(el("li", { className: "muted session-empty", text: "No sessions yet." }));
  ui.sessionList.replaceChildren(...items);
}

function setHashSession(id) {
  const hash = id ? `#session=${encodeURIComponent(id)}` : "";
  history.replaceState(null, "", location.pathname + location.search + hash);
}

async function refreshSessions() {
  const { sessions } = await api.json("/api/sessions");
  state.sessions = sessions || [];
  renderSessionList();
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
    const live = state.streams.get(id);
    const running = activeRun(detail);
    if (live) {
      // Back to a session this tab is streaming: put its live turn back under the history.
      transcript.showHistory(detail, { liveRun: live.runId || running?.id, compactions });
      transcript.append(live.container);
    } else if (running) {
      transcript.showHistory(detail, { liveRun: running.id, compactions });
      followRun(id, running.id);
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
  try {
    const res = await api.request(`${sessionPath(sessionId)}/messages?stream=true`, {
      method: "POST",
      body: { text },
    });
    started = true;
    refreshSessions().catch(() => {}); // the gateway may title the session from this message
    await readEventStream(res, (ev) => turn.handle(ev));
    if (!turn.finished) turn.fail("the event stream ended early. Reload the page to see what was saved.");
  } catch (err) {
    if (!started) {
      // Nothing was accepted: take the optimistic bubble back and give the text back to the user.
      bubble.remove();
      turn.container.remove();
      if (!ui.input.value) ui.input.value = text;
      autosize();
      if (state.sessionId === sessionId || err.status === 401) showComposerError(err);
    } else {
      turn.fail(err.message || String(err));
    }
  } finally {
    state.streams.delete(sessionId);
    updateComposer();
    if (api.token) {
      refreshSessions().catch(() => {}); // titles and ordering may have changed
      // Switched away and back mid-stream: the live elements are gone, so re-read the history.
      if (state.sessionId === sessionId && started && !turn.shown) openSession(sessionId);
    }
  }
}

/** Watch a run this tab did not start (another tab, a channel, the scheduler) as it streams. */
async function followRun(sessionId, runId) {
  const turn = new LiveTurn(transcript, sessionId);
  turn.runId = runId;
  state.streams.set(sessionId, turn);
  updateComposer();
  transcript.append(turn.container);
  const controller = new AbortController();
  let seen = false;
  const giveUp = setTimeout(() => seen || controller.abort(), FOLLOW_GRACE_MS);
  try {
    const res = await api.request(`${sessionPath(sessionId)}/events?after=0`, { signal: controller.signal });
    await readEventStream(res, (ev) => {
      if (ev.run_id !== runId) return;
      seen = true;
      turn.handle(ev);
      if (turn.finished) controller.abort(); // this stream stays open for later runs
    });
  } catch (err) {
    if (err.name !== "AbortError" && !turn.finished) turn.fail(err.message || String(err));
  } finally {
    clearTimeout(giveUp);
    state.streams.delete(sessionId);
    updateComposer();
    if (!turn.finished) {
      turn.container.replaceWith(notice("A run is in progress in this session, but its live events are not available here. Reload later to see its answer."));
    }
    if (api.token) {
      refreshSessions().catch(() => {});
      if (state.sessionId === sessionId && turn.finished && !turn.shown) openSession(sessionId);
    }
  }
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
