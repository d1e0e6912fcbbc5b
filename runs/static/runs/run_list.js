/* Runs list: status, counts and "last event" update in place; new runs appear at the
   top of the first page of the default view; elsewhere a notice offers them. */
(function () {
  "use strict";
  var table = document.getElementById("runs");
  if (!table) return;
  var L = window.PipelensLive;
  var liveInserts = table.dataset.liveInserts === "1";

  // A run that arrives live gets a clone of the server's own row (<template> in
  // run_list.html, from runs/_run_row.html), filled in by its data-f fields.
  var rowTemplate = document.getElementById("run-row-template").content;
  var progressTemplate = rowTemplate.querySelector('[data-f="progress"]');

  function field(root, name) { return root.querySelector('[data-f="' + name + '"]'); }

  // The markup decides which cells keep their whole text in a title (the layout may cut them).
  function setText(el, text) {
    el.textContent = text;
    if (el.hasAttribute("title")) el.title = text;
  }

  function fill(tr, run) {
    setText(field(tr, "name"), run.name);
    setText(field(tr, "pipeline"), run.pipeline);
    setText(field(tr, "bucket"), run.bucket);
    setText(field(tr, "namespace"), run.namespace);
    setStatus(field(tr, "status"), run.status);
    field(tr, "artifact_count").textContent = run.artifact_count;
    fillProgress(field(tr, "progress"), run.progress);
    tr.querySelectorAll("td.metric").forEach(function (td) {
      var value = (run.metrics || {})[td.dataset.metric];
      setText(td, value === undefined ? "" : value);
    });
    var t = field(tr, "last_event_at");
    t.setAttribute("datetime", run.last_event_at);
    t.textContent = L.formatTime(run.last_event_at, true);
  }

  function setStatus(el, status) {
    el.textContent = status;
    el.className = "status status-" + status;
  }

  function fillProgress(td, progress) {
    td.textContent = "";
    if (!progress) return;
    progressTemplate.childNodes.forEach(function (node) { td.appendChild(node.cloneNode(true)); });
    var pct = Math.round(progress.percent || 0);
    var bar = td.querySelector("progress");
    bar.value = progress.percent || 0;
    bar.textContent = pct + "%";
    bar.setAttribute("aria-label", pct + "%");
    setText(td.querySelector(".progress-text"), pct + "%" + (progress.message ? " · " + progress.message : ""));
  }

  // The template is the row of run 0: its link points at /runs/0/.
  function newRow(run) {
    var tr = rowTemplate.firstElementChild.cloneNode(true);
    tr.id = "run-" + run.id;
    var link = field(tr, "name");
    link.setAttribute("href", link.getAttribute("href").replace(/\/0\/$/, "/" + run.id + "/"));
    field(tr, "pick").value = String(run.id);
    field(tr, "pick").setAttribute("aria-label", "Compare " + run.name);
    return tr;
  }

  function onMessage(msg) {
    if (msg.type !== "runs.changed") return;
    var body = document.getElementById("run-rows");
    var tr = document.getElementById("run-" + msg.run.id);
    if (!tr && !liveInserts) { document.getElementById("new-runs").hidden = false; return; }
    // A run moves up when it has new activity, not when only its status changed
    // (a run turning idle keeps its place).
    var moved = !tr || Date.parse(field(tr, "last_event_at").getAttribute("datetime")) !==
      Date.parse(msg.run.last_event_at);
    if (!tr) {
      tr = newRow(msg.run);
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
    }
    fill(tr, msg.run);
    if (liveInserts && moved && body.firstElementChild !== tr) body.insertBefore(tr, body.firstElementChild);
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

  // Compare: count the ticked runs (their checkboxes submit the compare form themselves).
  function countPicked() {
    var n = document.querySelectorAll("input.compare-pick:checked").length;
    var out = document.getElementById("compare-count");
    if (!out) return;
    out.textContent = n === 0 ? "Tick 2 to 50 runs to compare them." :
      n + " run" + (n === 1 ? "" : "s") + " ticked" + (n < 2 ? ": tick at least 2." : n > 50 ? ": at most 50." : ".");
    document.getElementById("compare-button").disabled = n < 2 || n > 50;
  }
  table.addEventListener("change", function (e) { if (e.target.classList.contains("compare-pick")) countPicked(); });
  countPicked();

  L.connect("/ws/runs/", {onMessage: onMessage, onOpen: function (again) { if (again) reloadRows(); }});
})();
