// The in-app inbox: a client of the gateway's WebSocket protocol (PROTOCOL.md), no build step.
//
// Open /inbox#token=<JWT> (optionally &token_url=<url> to refresh the token in band), or paste a
// token and press "Log in". The page connects to /ws on its own host, lists the user's
// notifications newest first, sends `seen` for the ones it shows and `read` for the ones the user
// marks, applies `state` frames from the user's other devices and shows who of the organisation is
// online. It stores the last position (epoch, offset) per user in localStorage and resumes from it
// (`since`) after any reconnect; what to do after a close follows the protocol's close-code table.
"use strict";

(() => {
  const REFRESH_EARLY_S = 30; // fetch a new token this long before the current one expires
  const CONNECTED_TIMEOUT_MS = 15000; // no `connected` frame by then: drop and reconnect
  const STABLE_MS = 10000; // a connection live this long resets the backoff
  const MAX_IDS = 500; // ids per seen/read frame (PROTOCOL.md)
  const NOTE_RELOADED = "some notifications may be missing; reloaded";
  const REASONS = {
    4001: "bad token", 4002: "protocol error", 4003: "session expired", 4100: "overloaded",
    4101: "draining", 4108: "slow", 4200: "restart", 1001: "going away", 1006: "connection lost",
  };

  const el = (id) => document.querySelector(`[data-testid="${id}"]`);
  const ui = {
    status: el("status"), user: el("user"), form: el("login-form"), input: el("token-input"),
    note: el("note"), error: el("error"), presence: el("presence"), list: el("notifications"),
    empty: el("empty"),
  };

  const st = {
    token: null, tokenUrl: null, user: null, ws: null, live: false, attempt: 0,
    items: new Map(), // id -> {li, button, seen, read}
    online: new Set(),
    names: new Map(), // user -> display name (the token's name claim), as the gateway says
    name: "", // this user's display name
    seenQueue: new Set(), seenSent: new Set(), readQueue: new Set(), readPending: new Set(),
    refreshRetried: false,
    timers: {},
  };

  // ---- small helpers ------------------------------------------------------------------------
  function clearTimer(name) {
    clearTimeout(st.timers[name]);
    clearInterval(st.timers[name]);
    delete st.timers[name];
  }

  function setStatus(kind, text) {
    ui.status.dataset.state = kind;
    ui.status.textContent = text;
  }

  function show(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function fragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return { token: params.get("token") || null, tokenUrl: params.get("token_url") || null };
  }

  function subject(token) {
    // The token's `sub`, unverified: only to pick the stored position before `connected` says.
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const sub = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4))).sub;
      return typeof sub === "string" && sub ? sub : null;
    } catch (_) {
      return null;
    }
  }

  const positionKey = (user) => `wedsync.inbox.position.${user}`;

  function loadPosition(user) {
    if (!user) return null;
    try {
      const pos = JSON.parse(localStorage.getItem(positionKey(user)));
      if (pos && typeof pos.epoch === "string" && Number.isInteger(pos.offset)) {
        return { epoch: pos.epoch, offset: pos.offset };
      }
    } catch (_) { /* unavailable or corrupt: start without a position */ }
    return null;
  }

  function savePosition(user, epoch, offset) {
    if (!user || typeof epoch !== "string" || !Number.isInteger(offset)) return;
    try {
      localStorage.setItem(positionKey(user), JSON.stringify({ epoch, offset }));
    } catch (_) { /* storage full or disabled: the next connect replays the history */ }
  }

  function send(obj) {
    if (st.ws && st.live && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  // ---- notifications ------------------------------------------------------------------------
  function safeLink(link) {
    if (typeof link !== "string" || !link) return null;
    try {
      const url = new URL(link, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function render(f) {
    const li = document.createElement("li");
    li.dataset.testid = "notification";
    li.dataset.id = f.id;
    const href = safeLink(f.link);
    const title = document.createElement(href ? "a" : "span");
    if (href) title.href = href;
    title.className = "title";
    title.dataset.testid = "title";
    title.textContent = f.title || "";
    const body = document.createElement("div");
    body.className = "body";
    body.dataset.testid = "body";
    body.textContent = f.body || "";
    const time = document.createElement("time");
    const at = new Date(Number(f.routed_at_ms) || 0);
    time.dateTime = at.toISOString();
    time.dataset.testid = "time";
    time.textContent = at.toLocaleString();
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = "mark-read";
    button.addEventListener("click", () => markRead(f.id));
    li.append(title, button, body, time);
    return { li, button, seen: false, read: false };
  }

  function paint(item) {
    item.li.dataset.seen = String(item.seen);
    item.li.dataset.read = String(item.read);
    const pending = st.readPending.has(item.li.dataset.id) || st.readQueue.has(item.li.dataset.id);
    item.button.disabled = item.read || pending;
    item.button.textContent = item.read ? "Read" : pending ? "Marking\u2026" : "Mark read";
  }

  function onNotification(f) {
    if (typeof f.id !== "string") return;
    savePosition(st.user, f.epoch, f.offset);
    const known = st.items.get(f.id);
    if (known) return applyState(f.id, f.seen, f.read); // shown once, whatever comes again
    const item = render(f);
    item.seen = Boolean(f.seen || f.read);
    item.read = Boolean(f.read);
    st.items.set(f.id, item);
    ui.list.prepend(item.li); // frames come in stream order: the last one is the newest
    ui.empty.hidden = true;
    paint(item);
    if (!item.seen) queueSeen(f.id);
  }

  function applyState(id, seen, read) {
    const item = st.items.get(id);
    if (!item) return;
    item.seen = item.seen || Boolean(seen) || Boolean(read);
    item.read = item.read || Boolean(read);
    if (item.read) st.readPending.delete(id);
    paint(item);
  }

  function clearList() {
    st.items.clear();
    ui.list.replaceChildren();
    ui.empty.hidden = false;
  }

  // ---- seen / read --------------------------------------------------------------------------
  function queueSeen(id) {
    if (st.seenSent.has(id)) return;
    st.seenQueue.add(id);
    if (!st.timers.seen) st.timers.seen = setTimeout(flushMarks, 50);
  }

  function markRead(id) {
    const item = st.items.get(id);
    if (!item || item.read) return;
    st.readQueue.add(id);
    paint(item);
    flushMarks();
  }

  function flushKind(kind, queue, after) {
    while (queue.size) {
      const ids = [...queue].slice(0, MAX_IDS);
      if (!send({ type: kind, ids })) return;
      for (const id of ids) {
        queue.delete(id);
        after.add(id);
      }
    }
  }

  function flushMarks() {
    clearTimer("seen");
    flushKind("read", st.readQueue, st.readPending);
    if (!document.hidden) flushKind("seen", st.seenQueue, st.seenSent); // shown means visible
  }

  // ---- presence -----------------------------------------------------------------------------
  function shownName(user) { // a person by name, never by their user id
    return st.names.get(user) || (user === st.user && st.name) || "A colleague (no name given)";
  }

  function renderPresence() {
    const items = [...st.online].sort().map((user) => {
      const li = document.createElement("li");
      li.dataset.testid = "presence-user";
      li.dataset.user = user;
      li.textContent = user === st.user ? `${shownName(user)} (you)` : shownName(user);
      return li;
    });
    ui.presence.replaceChildren(...items);
  }

  // ---- token refresh (only with #token_url=...) ----------------------------------------------
  function scheduleRefresh(expiresIn) {
    clearTimer("refresh");
    if (!st.tokenUrl || typeof expiresIn !== "number") return;
    const delay = Math.max(expiresIn - REFRESH_EARLY_S, 2);
    st.timers.refresh = setTimeout(refresh, delay * 1000);
  }

  async function fetchToken() {
    const response = await fetch(st.tokenUrl, { method: "GET", cache: "no-store" });
    if (!response.ok) throw new Error(`token_url answered ${response.status}`);
    const token = (await response.text()).trim();
    if (!token) throw new Error("token_url answered an empty body");
    return token;
  }

  function keepToken(token) {
    st.token = token;
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (params.get("token")) { // so a reload uses the fresh token (no hashchange event)
      params.set("token", token);
      history.replaceState(null, "", `#${params.toString()}`);
    }
  }

  async function refresh() {
    clearTimer("refresh");
    try {
      const token = await fetchToken();
      keepToken(token);
      send({ type: "refresh", token });
    } catch (err) {
      show(ui.error, `token refresh failed: ${err.message}`);
      if (st.live) st.timers.refresh = setTimeout(refresh, 5000);
    }
  }

  // ---- the connection -----------------------------------------------------------------------
  function wsUrl() {
    return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
  }

  function connect() {
    clearTimer("reconnect");
    clearTimer("countdown");
    setStatus("connecting", "connecting");
    const ws = new WebSocket(wsUrl());
    st.ws = ws;
    st.live = false;
    ws.onopen = () => {
      if (ws !== st.ws) return;
      const hello = { type: "connect", token: st.token };
      const since = loadPosition(st.user);
      if (since) hello.since = since;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      if (ws !== st.ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (ws === st.ws) onClose(ev.code, ev.reason);
    };
    st.timers.watchdog = setTimeout(() => {
      if (ws !== st.ws || st.live) return;
      abandon();
      onClose(1006, "no answer from the gateway");
    }, CONNECTED_TIMEOUT_MS);
  }

  function abandon() {
    // Close the current socket on purpose: none of its events count any more.
    const ws = st.ws;
    st.ws = null;
    st.live = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(1000, "closed by the page");
      } catch (_) { /* already closed */ }
    }
  }

  function onFrame(f) {
    switch (f.type) {
      case "connected": return onConnected(f);
      case "notification": return onNotification(f);
      case "state": return applyState(f.id, f.seen, f.read);
      case "presence":
        if (f.event === "join") {
          st.online.add(f.user);
          if (typeof f.name === "string" && f.name) st.names.set(f.user, f.name);
        } else if (f.event === "leave") {
          st.online.delete(f.user);
          st.names.delete(f.user);
        }
        return renderPresence();
      case "refreshed": return scheduleRefresh(f.expires_in);
      case "error":
        show(ui.error, `gateway: ${f.reason}`);
        for (const id of st.readPending) { // let the user try again
          st.readPending.delete(id);
          const item = st.items.get(id);
          if (item) paint(item);
        }
        return undefined;
      default: return undefined; // pong and anything newer
    }
  }

  function onConnected(f) {
    clearTimer("watchdog");
    st.live = true;
    st.refreshRetried = false;
    if (typeof f.user === "string" && f.user) st.user = f.user;
    st.name = typeof f.name === "string" ? f.name : "";
    ui.user.textContent = st.name || "";
    setStatus("live", "live");
    if (f.recovered === false) {
      clearList(); // what follows is the retained history
      show(ui.note, NOTE_RELOADED);
    }
    st.online = new Set(Array.isArray(f.presence) ? f.presence : []);
    st.names = new Map(f.names && typeof f.names === "object" ? Object.entries(f.names) : []);
    ui.presence.dataset.stale = "false";
    renderPresence();
    scheduleRefresh(f.expires_in);
    st.timers.stable = setTimeout(() => { st.attempt = 0; }, STABLE_MS);
    for (const id of st.readPending) st.readQueue.add(id); // not confirmed: send again
    st.readPending.clear();
    flushMarks();
  }

  function backoff(base, cap) {
    // Exponential with "equal jitter": between half and all of min(cap, base * 2^(attempt+1)).
    const ceiling = Math.min(cap, base * 2 ** (st.attempt + 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function onClose(code, reason) {
    for (const name of ["watchdog", "stable", "refresh", "seen"]) clearTimer(name);
    st.ws = null;
    st.live = false;
    ui.presence.dataset.stale = "true";
    const why = reason || REASONS[code] || `code ${code}`;
    if (code === 4001 || code === 4002) { // this token (or this client) will not do: stop
      setStatus("closed", `closed: ${why}`);
      ui.form.hidden = false;
      return;
    }
    if (code === 4003) { // get a new token, then reconnect with `since`
      setStatus("closed", "closed: session expired");
      ui.form.hidden = false;
      if (st.tokenUrl && !st.refreshRetried) {
        st.refreshRetried = true;
        fetchToken().then((token) => { keepToken(token); ui.form.hidden = true; connect(); },
                          (err) => show(ui.error, `token refresh failed: ${err.message}`));
      }
      return;
    }
    let delay;
    if (code === 4200) delay = Math.random(); // the gateway restarts: reconnect now
    else if (code >= 4100 && code < 4200) delay = backoff(1, 30);
    else delay = backoff(0.5, 30); // 1001, 1006 and anything unexpected
    st.attempt += 1;
    scheduleReconnect(delay);
  }

  function scheduleReconnect(delayS) {
    const at = Date.now() + delayS * 1000;
    const tick = () => {
      const left = Math.max(1, Math.ceil((at - Date.now()) / 1000));
      setStatus("reconnecting", `reconnecting in ${left} s`);
    };
    tick();
    st.timers.countdown = setInterval(tick, 250);
    st.timers.reconnect = setTimeout(connect, delayS * 1000);
  }

  // ---- logging in -----------------------------------------------------------------------------
  function login(token, tokenUrl) {
    abandon();
    for (const name of Object.keys(st.timers)) clearTimer(name);
    st.attempt = 0;
    st.refreshRetried = false;
    show(ui.error, "");
    if (!token) {
      setStatus("idle", "not logged in");
      ui.form.hidden = false;
      return;
    }
    const user = subject(token);
    if (user !== st.user) { // someone else: nothing of the previous user stays on screen
      clearList();
      st.online.clear();
      st.names.clear();
      renderPresence();
      st.seenQueue.clear();
      st.seenSent.clear();
      st.readQueue.clear();
      st.readPending.clear();
      show(ui.note, "");
      ui.user.textContent = "";
    }
    st.user = user;
    st.token = token;
    st.tokenUrl = tokenUrl;
    ui.form.hidden = true;
    connect();
  }

  ui.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = ui.input.value.trim();
    ui.input.value = "";
    login(token, fragment().tokenUrl);
  });

  window.addEventListener("hashchange", () => {
    const { token, tokenUrl } = fragment();
    if (token && token !== st.token) login(token, tokenUrl);
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) flushMarks();
  });

  const start = fragment();
  login(start.token, start.tokenUrl);
})();
