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

  function connect(path, handlers) {
    var attempt = 0, opened = false, ping = null;
    function open() {
      var proto = location.protocol === "https:" ? "wss:" : "ws:";
      var ws = new WebSocket(proto + "//" + location.host + path);
      setStatus("connecting", attempt ? "reconnecting…" : "connecting…");
      ws.onopen = function () {
        var again = opened;
        opened = true;
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
      ws.onclose = function () {
        clearInterval(ping);
        setStatus("off", "disconnected");
        var delay = Math.min(MAX_DELAY_MS, 250 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2);
        attempt += 1;
        setTimeout(open, delay);
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
