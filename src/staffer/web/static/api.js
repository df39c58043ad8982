// The gateway's HTTP API (docs/http-api.md): JSON calls and the server-sent event stream.

/** An error answer from the gateway (or no answer: status 0), with its `code` and `fix`. */
export class ApiError extends Error {
  constructor(status, code, message, fix = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.fix = fix;
  }
}

async function errorFrom(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy page, say); fall back to the status line
  }
  const e = (body && body.error) || {};
  return new ApiError(
    res.status,
    e.code || `http_${res.status}`,
    e.message || `The gateway answered ${res.status} ${res.statusText}.`.replace(" .", "."),
    e.fix || null,
  );
}

/** Calls the gateway with the bearer token; rejects with ApiError on any non-2xx answer. */
export class Api {
  constructor() {
    this.token = null;
  }

  async request(path, { method = "GET", body, signal } = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "Could not reach the Staffer gateway.",
        "Check that `staffer start` is still running, then try again.");
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  async json(path, options) {
    return (await this.request(path, options)).json();
  }
}

export const sessionPath = (id) => `/api/sessions/${encodeURIComponent(id)}`;

/** Read a text/event-stream body incrementally and call onEvent with each event's JSON. */
// EventSource cannot send an Authorization header, so the stream is read from fetch().
export async function readEventStream(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  let eventType = "";

  const dispatch = () => {
    if (data.length) {
      let payload;
      try {
        payload = JSON.parse(data.join("\n"));
      } catch {
        payload = null; // a malformed event should not kill the whole stream
      }
      if (payload && typeof payload === "object") {
        if (!payload.type) payload.type = eventType || "message";
        onEvent(payload);
      }
    }
    data = [];
    eventType = "";
  };

  const line = (text) => {
    if (text === "") return dispatch();
    if (text.startsWith(":")) return; // keep-alive comment
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") eventType = value;
  };

  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buffer);
      if (!m) break;
      // a lone trailing \r may be the first half of \r\n split across chunks
      if (m[0] === "\r" && m.index === buffer.length - 1 && !done) break;
      const text = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      line(text);
    }
    if (done) {
      if (buffer) line(buffer);
      dispatch();
      return;
    }
  }
}
