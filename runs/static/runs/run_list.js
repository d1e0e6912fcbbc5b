/* Runs list: counts and "last event" update in place; new runs appear at the
   top of the first page of the default view; elsewhere a notice offers them. */
(function () {
  "use strict";
  var table = document.getElementById("runs");
  if (!table) return;
  var L = window.PipelensLive;
  var liveInserts = table.dataset.liveInserts === "1";

  function field(root, name) { return root.querySelector('[data-f="' + name + '"]'); }

  function fill(tr, run) {
    field(tr, "name").textContent = run.name;
    field(tr, "pipeline").textContent = run.pipeline;
    field(tr, "bucket").textContent = run.bucket;
    field(tr, "namespace").textContent = run.namespace;
    var status = field(tr, "status");
    status.textContent = run.status;
    status.className = "status status-" + run.status;
    field(tr, "artifact_count").textContent = run.artifact_count;
    fillProgress(field(tr, "progress"), run.progress);
    tr.querySelectorAll("td.metric").forEach(function (td) {
      var value = (run.metrics || {})[td.dataset.metric];
      td.textContent = value === undefined ? "" : value;
    });
    var t = field(tr, "last_event_at");
    t.setAttribute("datetime", run.last_event_at);
    t.textContent = L.formatTime(run.last_event_at, true);
  }

  function fillProgress(td, progress) {
    if (!td) return;
    td.textContent = "";
    if (!progress) return;
    var pct = Math.round(progress.percent || 0);
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = pct;
    bar.setAttribute("aria-label", pct + "%");
    var text = document.createElement("span");
    text.className = "progress-text";
    text.textContent = pct + "%" + (progress.message ? " · " + progress.message : "");
    td.appendChild(bar);
    td.appendChild(document.createTextNode(" "));
    td.appendChild(text);
  }

  function newRow(run) {
    var tr = document.createElement("tr");
    tr.id = "run-" + run.id;
    tr.dataset.runId = run.id;
    var th = document.createElement("th");
    th.scope = "row";
    var a = document.createElement("a");
    a.href = table.dataset.runUrl.replace("/0/", "/" + run.id + "/");
    a.dataset.f = "name";
    th.appendChild(a);
    tr.appendChild(th);
    ["pipeline", "bucket", "namespace", "status", "progress", "artifact_count", "last_event_at"].forEach(function (f) {
      var td = document.createElement("td");
      if (f === "progress") { td.dataset.f = f; tr.appendChild(td); return; }
      var el = document.createElement(f === "status" ? "span" : f === "last_event_at" ? "time" : "span");
      el.dataset.f = f;
      td.appendChild(el);
      tr.appendChild(td);
    });
    table.querySelectorAll("thead th.metric").forEach(function (th) {
      var td = document.createElement("td");
      td.className = "metric";
      td.dataset.metric = th.dataset.metric;
      tr.appendChild(td);
    });
    return tr;
  }

  function onMessage(msg) {
    if (msg.type !== "runs.changed") return;
    var body = document.getElementById("run-rows");
    var tr = document.getElementById("run-" + msg.run.id);
    if (!tr && !liveInserts) { document.getElementById("new-runs").hidden = false; return; }
    if (!tr) {
      tr = newRow(msg.run);
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
    }
    fill(tr, msg.run);
    if (liveInserts && body.firstElementChild !== tr) body.insertBefore(tr, body.firstElementChild);
  }

  function reloadRows() {
    var url = new URL(location.href);
    url.searchParams.set("fragment", "rows");
    fetch(url, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var holder = document.createElement("table");
        holder.innerHTML = html;
        document.getElementById("run-rows").replaceWith(holder.querySelector("tbody"));
      });
  }

  L.connect("/ws/runs/", {onMessage: onMessage, onOpen: function (again) { if (again) reloadRows(); }});
})();
