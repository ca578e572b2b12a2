/* The waiting page, kept live: a websocket to /ws/orders/<number>/ and, as the
 * fallback, the "Check payment status" button.
 *
 * The server decides what to show: each message carries the view `state`
 * (which panel) and the payment method's `details` (VA number, codes, amount,
 * expiry), and every word is already in the page, in the customer's language
 * (the panels' data-label, the root's data-msg-* attributes). This script
 * only swaps them in; it has no status mapping and no text of its own.
 *
 * - Shows only changes newer than the version on screen (data-version).
 * - Reconnects with exponential backoff and full jitter; every (re)connect
 *   starts with the server's snapshot, so nothing missed while away is lost.
 * - Closes the socket while the tab is hidden; resyncs when it is shown again
 *   and when the page comes back from the back/forward cache.
 * - Offers the button when the order is still pending PAYMENT_FALLBACK_SECONDS
 *   after load (a deadline checked against Date.now(), since timers in
 *   background tabs are throttled) or when the socket cannot connect.
 * - Keeps the socket alive itself: a ping every 20-40 s (random, so thousands
 *   of pages never beat together) carrying the version on screen, which the
 *   server answers with the current status when the page is behind (a lost
 *   broadcast); a new socket when no answer comes in 10 s (a half-open
 *   connection after a network change). Daphne's own pings
 *   (--ping-interval 60) then only reach silent clients; they go out in
 *   batches every 2 s, which showed in the push latency's tail.
 * - Falls back to Server-Sent Events (data-events-url) when websockets cannot
 *   connect: no window.WebSocket, or WS_FAILURES_BEFORE_EVENTS attempts in a
 *   row that never opened (a proxy that blocks the upgrade). Same version rule
 *   and rendering; the server resyncs the stream itself, and EventSource
 *   reconnects with Last-Event-ID.
 * Without JavaScript the button is a plain form that posts and comes back.
 */
(function () {
  "use strict";

  var root = document.getElementById("order-live");
  var box = document.getElementById("payment-status");
  var form = document.getElementById("refresh-form");
  var button = document.getElementById("refresh-button");
  if (!root || !box || !form || !button) return;
  var label = box.querySelector(".status-label");
  var note = document.getElementById("status-note");
  var panels = root.querySelectorAll(".state-panel");
  var payDetails = document.getElementById("pay-details");
  var expiry = document.getElementById("expiry");
  var countdownWrap = document.getElementById("countdown-wrap");
  var countdown = document.getElementById("countdown");
  var expiredNote = document.getElementById("expired-note");
  var copyNote = document.getElementById("copy-note");

  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_CAP_MS = 15000;
  var TICK_MS = 1000;
  var WS_FAILURES_BEFORE_EVENTS = 3;
  var heartbeatSeconds = parseFloat(root.getAttribute("data-heartbeat-seconds"));
  var HEARTBEAT_MS = (isFinite(heartbeatSeconds) && heartbeatSeconds > 0 ? heartbeatSeconds : 30) * 1000;
  var PONG_TIMEOUT_MS = Math.min(10000, HEARTBEAT_MS / 3);
  var fallbackSeconds = parseFloat(root.getAttribute("data-fallback-seconds"));
  var deadline = Date.now() + (isFinite(fallbackSeconds) ? fallbackSeconds : 30) * 1000;

  var socket = null;       // the current WebSocket, if any
  var stream = null;       // the current EventSource, if any
  var useEvents = false;   // websockets never got through on this page: use the event stream from now on
  var socketOpened = false; // a websocket opened at least once, so the transport itself works
  var attempts = 0;        // failed connects since the last snapshot
  var retryTimer = null;
  var heartbeatTimer = null;
  var pongTimer = null;
  var trouble = false;     // the socket closed or could not open, and is not back yet
  var forbidden = false;   // the server refused this page's token: do not retry
  var paused = false;      // tab hidden: no socket
  var refreshing = false;
  var refreshBlockedUntil = 0;

  function shownVersion() {
    return parseInt(box.getAttribute("data-version"), 10) || 0;
  }

  function message(name) {
    return root.getAttribute("data-msg-" + name) || "";
  }

  /* Show a status if it is newer than the one on screen; return whether it was. */
  function apply(data) {
    if (!data || typeof data.version !== "number" || data.version <= shownVersion()) return false;
    if (typeof data.payment_status !== "string" || typeof data.order_status !== "string") return false;
    box.setAttribute("data-payment-status", data.payment_status);
    box.setAttribute("data-order-status", data.order_status);
    box.setAttribute("data-version", String(data.version));
    if (typeof data.state === "string") showState(data.state);
    if (data.details && typeof data.details === "object") showDetails(data.details);
    updateButton();
    return true;
  }

  /* The panel the server named, with its label in the status box. */
  function showState(state) {
    var known = false;
    for (var i = 0; i < panels.length; i++) known = known || panels[i].getAttribute("data-state") === state;
    if (!known) return;
    box.setAttribute("data-state", state);
    for (var j = 0; j < panels.length; j++) {
      var panel = panels[j];
      var current = panel.getAttribute("data-state") === state;
      panel.hidden = !current;
      if (current && label) label.textContent = panel.getAttribute("data-label") || "";
    }
  }

  /* The method's block (the stylesheet shows the one named by data-method) and its values. */
  function showDetails(details) {
    if (!payDetails) return;
    payDetails.setAttribute("data-method", typeof details.method === "string" ? details.method : "");
    var fields = payDetails.querySelectorAll("[data-field]");
    for (var i = 0; i < fields.length; i++) {
      var value = details[fields[i].getAttribute("data-field")];
      if (typeof value === "string") fields[i].textContent = value;
    }
    if (expiry && typeof details.expires_at === "string" && details.expires_at) {
      expiry.setAttribute("data-expires-at", details.expires_at);
      tickCountdown();
    }
  }

  function say(text) {
    if (note) note.textContent = text || "";
  }

  // --- the countdown to the payment's expiry ---------------------------------------
  var expiredSaid = false;

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  /* H:MM:SS left, from the device's clock; once it reaches zero the page says the time is up
   * at once, before the server's expiry (cleanup, reconcile) reaches it. */
  function tickCountdown() {
    if (!expiry || !countdown) return;
    var end = Date.parse(expiry.getAttribute("data-expires-at"));
    if (!isFinite(end)) return;
    var open = box.getAttribute("data-order-status") === "pending";
    var left = Math.max(0, Math.floor((end - Date.now()) / 1000));
    countdown.textContent = Math.floor(left / 3600) + ":" + pad(Math.floor(left / 60) % 60) + ":" + pad(left % 60);
    if (countdownWrap) countdownWrap.hidden = left <= 0;
    var passed = left <= 0 && open;
    root.setAttribute("data-expired", passed ? "true" : "false");
    if (expiredNote) {
      expiredNote.hidden = !passed;
      if (passed) expiredNote.textContent = message("expired");
    }
    if (passed && !expiredSaid) {
      expiredSaid = true;
      say(message("expired"));
    }
  }

  // --- the copy buttons -------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }

  root.addEventListener("click", function (event) {
    var target = event.target;
    var button = target && target.closest ? target.closest("button[data-copy]") : null;
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    copyText(source.textContent.trim()).then(
      function () {
        button.setAttribute("data-copied", "true");
        if (copyNote) copyNote.textContent = message("copied");
        setTimeout(function () { button.removeAttribute("data-copied"); }, 2000);
      },
      function () {
        if (copyNote) copyNote.textContent = message("copy-failed");
      }
    );
  });

  function setLive(value) {
    root.setAttribute("data-live", value ? "true" : "false");
  }

  /* The button is for an order that can still change: pending past the deadline, or no live updates. */
  function updateButton() {
    var open = box.getAttribute("data-order-status") === "pending";
    button.hidden = !(open && (Date.now() >= deadline || trouble || forbidden));
    button.disabled = refreshing || Date.now() < refreshBlockedUntil;
  }

  // --- the websocket --------------------------------------------------------------
  function socketUrl() {
    var url = new URL(root.getAttribute("data-ws-url"), window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (paused || forbidden || socket || stream) return;
    if (useEvents || !window.WebSocket || (!socketOpened && attempts >= WS_FAILURES_BEFORE_EVENTS)) {
      openStream();
      return;
    }
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (err) {
      trouble = true;
      updateButton();
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      socketOpened = true;
      trouble = false;
      setLive(true);
      updateButton();
      startHeartbeat(ws, Math.random() * HEARTBEAT_MS);
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      clearTimeout(pongTimer); // any message proves the connection is alive
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (!data || data.type !== "payment.status") return;
      if (data.source === "snapshot") attempts = 0; // a healthy connection: start backoff afresh
      apply(data);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return; // closed on purpose (hidden, replaced)
      stopHeartbeat();
      socket = null;
      setLive(false);
      trouble = true;
      // 4403 (wrong token) and 4429 (too many sockets on this order) will not
      // change by retrying; anything else, 1013 (server busy) included, retries with backoff.
      if (event.code === 4403 || event.code === 4429) forbidden = true;
      updateButton();
      if (!forbidden) scheduleReconnect();
    };
  }

  function startHeartbeat(ws, delay) {
    heartbeatTimer = setTimeout(function () {
      if (socket !== ws) return;
      ping(ws);
      startHeartbeat(ws, HEARTBEAT_MS * (2 / 3 + Math.random() * 2 / 3));
    }, delay);
  }

  /* The ping carries the version on screen: the server answers a stale one with
   * the current status, so a broadcast lost on the way still arrives. */
  function ping(ws) {
    clearTimeout(pongTimer);
    ws.send(JSON.stringify({ type: "ping", version: shownVersion() }));
    pongTimer = setTimeout(function () { dropDeadSocket(ws); }, PONG_TIMEOUT_MS);
  }

  function stopHeartbeat() {
    clearTimeout(heartbeatTimer);
    clearTimeout(pongTimer);
    heartbeatTimer = pongTimer = null;
  }

  /* No answer to a ping: the close handshake may never complete, so act now. */
  function dropDeadSocket(ws) {
    if (socket !== ws) return;
    stopHeartbeat();
    socket = null;
    ws.close();
    setLive(false);
    trouble = true;
    updateButton();
    scheduleReconnect();
  }

  /* Full jitter: a uniform wait in [0, min(cap, base * 2^attempts)). */
  function scheduleReconnect() {
    if (paused || forbidden || retryTimer) return;
    var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempts));
    attempts += 1;
    retryTimer = setTimeout(connect, Math.random() * ceiling);
  }

  // --- the event stream: the fallback when websockets cannot connect --------------
  function openStream() {
    useEvents = true;
    var url = root.getAttribute("data-events-url");
    if (!url || !window.EventSource) {
      trouble = true; // the button (and the resync when the tab is shown) is what is left
      updateButton();
      return;
    }
    var es = new EventSource(url);
    stream = es;
    es.onopen = function () {
      if (stream !== es) return;
      attempts = 0;
      trouble = false;
      setLive(true);
      updateButton();
    };
    es.addEventListener("payment.status", function (event) {
      if (stream !== es) return;
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (data && data.type === "payment.status") apply(data);
    });
    es.onerror = function () {
      if (stream !== es) return;
      setLive(false);
      trouble = true;
      updateButton();
      // CONNECTING: the browser reconnects by itself (after the server's retry:)
      // with Last-Event-ID. CLOSED: an HTTP error made it give up; back off, open anew.
      if (es.readyState === EventSource.CLOSED) {
        stream = null;
        scheduleReconnect();
      }
    };
  }

  function closeStream() {
    var es = stream;
    stream = null;
    if (es) es.close();
  }

  function disconnect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    stopHeartbeat();
    closeStream();
    var ws = socket;
    socket = null;
    setLive(false);
    if (ws) ws.close(1000, "page hidden");
  }

  // --- resync over HTTP (works even when the socket cannot) -----------------------
  function resync() {
    fetch(root.getAttribute("data-status-url"), {
      headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin",
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(apply)
      .catch(function () { /* the socket's snapshot or the button covers it */ });
  }

  function pause() {
    paused = true;
    disconnect();
  }

  /* Back in view (tab shown, page restored from the back/forward cache): a
   * mobile browser may have killed the socket silently meanwhile, so resync now
   * and either probe the socket at once or open a new one without backoff. */
  function resume() {
    resync();
    if (!paused && (socket || stream)) {
      if (socket && socket.readyState === WebSocket.OPEN) ping(socket);
      return;
    }
    paused = false;
    attempts = 0;
    updateButton();
    connect();
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") pause();
    else resume();
  });
  window.addEventListener("pagehide", pause);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) resume();
  });
  window.addEventListener("online", function () {
    if (!paused && !socket && !stream) {
      attempts = 0;
      connect();
    }
  });

  // --- the manual refresh ----------------------------------------------------------
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (refreshing) return;
    refreshing = true;
    updateButton();
    say(message("checking"));
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
    })
      .then(function (response) {
        var retry = parseInt(response.headers.get("Retry-After"), 10);
        if (retry > 0) refreshBlockedUntil = Date.now() + retry * 1000;
        return response.json().then(
          function (data) { return { status: response.status, data: data || {} }; },
          function () { return { status: response.status, data: {} }; }
        );
      })
      .then(function (result) {
        apply(result.data);
        var text = result.data.error || result.data.message;
        say(text || message(result.status === 200 ? "checked" : "check-failed"));
      })
      .catch(function () {
        say(message("offline"));
      })
      .then(function () {
        refreshing = false;
        updateButton();
        if (refreshBlockedUntil > Date.now()) setTimeout(updateButton, refreshBlockedUntil - Date.now() + 50);
      });
  });

  // --- start ------------------------------------------------------------------------
  updateButton(); // hidden until the fallback applies (visible without JavaScript)
  tickCountdown();
  window.setInterval(function () {
    updateButton();
    tickCountdown();
  }, TICK_MS);
  if (document.visibilityState === "hidden") paused = true;
  else connect();
})();
