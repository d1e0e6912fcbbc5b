/* Pipelens live socket: connect, show live/disconnected, reconnect with back-off.
   docs/portal.md#live. Pages give a path and handlers:
   PipelensLive.connect("/ws/runs/1/", {onMessage(msg), onOpen(isReconnect)}). */
(function () {
  "use strict";
  var PING_MS = 25000;      // keeps idle proxies from closing the socket
  var MAX_DELAY_MS = 5000;  // a restarted server is found again within seconds

  function setStatus(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  // Close codes the server sends (streaming/live/sockets.py).
  var CLOSE_MAX_AGE = 4000, CLOSE_LOGGED_OUT = 4401, CLOSE_REVOKED = 4403, CLOSE_NOT_VISIBLE = 4404;

  function showNotice(text, link) {
    var el = document.getElementById("live-notice");
    if (!el) {
      el = document.createElement("div");
      el.id = "live-notice";
      el.className = "error live-notice";
      el.setAttribute("role", "alert");
      var main = document.querySelector("main") || document.body;
      main.insertBefore(el, main.firstChild);
    }
    el.textContent = text + " ";
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      el.appendChild(a);
    }
  }

  // Why the socket may not come back: this page's own answer says it (a redirect
  // to the login page, a 404), also for a refusal during the handshake, which
  // browsers report only as code 1006. Resolves "ok", "login", "gone" or "down".
  function pageVerdict() {
    return fetch(location.href, {credentials: "same-origin", redirect: "manual", cache: "no-store"})
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401) return "login";
        if (r.status === 404 || r.status === 403) return "gone";
        return r.ok ? "ok" : "down";
      }, function () { return "down"; });
  }

  function connect(path, handlers) {
    var attempt = 0, opened = false, ping = null, stopped = false;

    function stop(text, link) {
      stopped = true;
      setStatus("off", "not live");
      showNotice(text, link);
    }

    function retryLater() {
      var delay = Math.min(MAX_DELAY_MS, 250 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2);
      attempt += 1;
      setTimeout(open, delay);
    }

    function open() {
      if (stopped) return;
      var proto = location.protocol === "https:" ? "wss:" : "ws:";
      var ws = new WebSocket(proto + "//" + location.host + path);
      var accepted = false;
      setStatus("connecting", attempt ? "reconnecting…" : "connecting…");
      ws.onopen = function () {
        var again = opened;
        opened = accepted = true;
        attempt = 0;
        setStatus("live", "live");
        ping = setInterval(function () { ws.send('{"type":"ping"}'); }, PING_MS);
        if (handlers.onOpen) handlers.onOpen(again);
      };
      ws.onmessage = function (event) {
        var msg;
        try { msg = JSON.parse(event.data); } catch (e) { return; }
        if (msg.type === "pong") return;
        if (msg.type === "error") { console.warn("pipelens socket:", msg.error); return; }
        handlers.onMessage(msg);
      };
      ws.onclose = function (event) {
        clearInterval(ping);
        setStatus("off", "disconnected");
        if (event.code === CLOSE_MAX_AGE) { attempt = 0; open(); return; }
        var refused = [CLOSE_LOGGED_OUT, CLOSE_REVOKED, CLOSE_NOT_VISIBLE].indexOf(event.code) >= 0;
        if (!refused && accepted) { retryLater(); return; }
        // Refused, or the handshake failed: ask the page itself before trying again.
        pageVerdict().then(function (verdict) {
          if (verdict === "login") {
            stop("Your session has ended, so this page is no longer live.",
                 {href: "/accounts/login/?next=" + encodeURIComponent(location.pathname + location.search),
                  text: "Log in again"});
          } else if (verdict === "gone" || event.code === CLOSE_REVOKED || event.code === CLOSE_NOT_VISIBLE) {
            stop("You no longer have access to this page, so it is no longer live.",
                 {href: "/", text: "Back to the runs"});
          } else {
            retryLater();  // "ok" (a password change rotated the session) or "down" (server away)
          }
        });
      };
    }
    open();
  }

  // The one size format of the page scripts; the same as Python's human_bytes
  // (runs/rendering/base.py): "1 byte", "512 bytes", "1.5 KB" (1,024-based,
  // halves rounded up, no-break space), "" for no size.
  function formatSize(bytes) {
    if (bytes === null || bytes === undefined || bytes === "") return "";
    var n = Number(bytes), units = ["KB", "MB", "GB", "TB"], i = -1;
    if (Math.abs(n) < 1024) return n === 1 ? "1\u00a0byte" : n.toFixed(0) + "\u00a0bytes";
    do { n /= 1024; i += 1; } while (Math.abs(n) >= 1024 && i < units.length - 1);
    return n.toFixed(1) + "\u00a0" + units[i];
  }

  function formatTime(iso, withDate) {
    if (!iso) return "";
    var s = iso.replace("T", " ").slice(0, 19);
    return withDate ? s : s.slice(11);
  }

  window.PipelensLive = {connect: connect, formatSize: formatSize, formatTime: formatTime};
})();
