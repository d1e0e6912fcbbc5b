/* Run page: apply pushes in place; on a seq gap or a reconnect, refetch the
   state from /api/runs/<id>/state?since=<seq> and carry on (docs/portal.md#seq). */
(function () {
  "use strict";
  var meta = document.getElementById("run-meta");
  if (!meta) return;
  var L = window.PipelensLive;
  var runId = meta.dataset.runId;
  var seq = Number(meta.dataset.seq);
  var syncing = false, queued = [];

  function urlFor(template, artifactId) {
    return template.replace("/artifacts/0/", "/artifacts/" + artifactId + "/");
  }

  function signature(a) {
    return a.etag + "|" + a.renditions.map(function (r) { return r.id + ":" + r.status; }).join(",");
  }

  function field(root, name) { return root.querySelector('[data-f="' + name + '"]'); }

  function setStatus(el, status) {
    el.textContent = status;
    el.className = "status status-" + status;
  }

  function updateRun(run) {
    setStatus(field(meta, "status"), run.status);
    field(meta, "artifact_count").textContent = run.artifact_count;
    var last = field(meta, "last_event_at");
    last.setAttribute("datetime", run.last_event_at);
    last.textContent = L.formatTime(run.last_event_at, true);
  }

  // Steps and rows that arrive live are clones of the server's own markup
  // (<template>s in run_detail.html), filled in here: one source for both.
  function fromTemplate(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  function stepList(a) {
    var section = document.getElementById("step-" + a.step_id);
    if (!section) {
      var empty = document.getElementById("no-steps");
      if (empty) empty.remove();
      section = fromTemplate("step-template");
      section.id = "step-" + a.step_id;
      section.dataset.stepId = a.step_id;
      section.setAttribute("aria-labelledby", section.id + "-h");
      var h = field(section, "name");
      h.id = section.id + "-h";
      h.textContent = a.step;
      document.getElementById("steps").appendChild(section);
    }
    return section.querySelector("ul.artifacts");
  }

  // The template is the row of artifact 0: its links point at /artifacts/0/.
  function newRow(a) {
    var li = fromTemplate("artifact-row-template");
    li.id = "artifact-" + a.id;
    li.dataset.artifactId = a.id;
    li.dataset.key = a.key;
    li.dataset.sig = "";
    li.querySelectorAll("a[href]").forEach(function (link) {
      link.setAttribute("href", urlFor(link.getAttribute("href"), a.id));
    });
    // Arrived while the page is watched: its preview loads now (refreshPreview), not on scroll.
    delete li.querySelector("[data-preview]").dataset.lazy;
    return li;
  }

  function insertSorted(list, li, key) {
    var rows = list.children;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].dataset.key > key) { list.insertBefore(li, rows[i]); return; }
    }
    list.appendChild(li);
  }

  function loadPreview(li, sig) {
    var slot = li.querySelector("[data-preview]");
    delete slot.dataset.lazy;
    fetch(urlFor(meta.dataset.previewUrl, li.dataset.artifactId), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && li.dataset.sig === sig) slot.innerHTML = html;
      })
      .catch(function () { li.dataset.sig = ""; });  // next push or resync tries again
  }

  // Previews past the first few load when they scroll into view.
  var lazy = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (!e.isIntersecting) return;
      lazy.unobserve(e.target);
      var li = e.target.closest("li.artifact");
      if (li && e.target.dataset.lazy !== undefined) loadPreview(li, li.dataset.sig);
    });
  }, {rootMargin: "400px"}) : null;

  function watchLazy(slot) {
    if (lazy) lazy.observe(slot); else loadPreview(slot.closest("li.artifact"), slot.closest("li.artifact").dataset.sig);
  }

  function refreshPreview(li, a) {
    var sig = signature(a);
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;
    var slot = li.querySelector("[data-preview]");
    if (slot.dataset.lazy !== undefined) return;  // loads, current, when shown
    loadPreview(li, sig);
  }

  function applyArtifact(a) {
    var li = document.getElementById("artifact-" + a.id);
    if (a.deleted) { if (li) li.remove(); return; }
    if (!li) {
      li = newRow(a);
      insertSorted(stepList(a), li, a.key);
    } else if (li.closest("section").dataset.stepId !== String(a.step_id)) {
      insertSorted(stepList(a), li, a.key);
    }
    // Each artifact's state carries its step's current status.
    if (a.step_status) setStatus(field(li.closest("section"), "status"), a.step_status);
    field(li, "name").textContent = a.name;
    field(li, "kind").textContent = a.kind;
    field(li, "size").textContent = L.formatSize(a.size);
    var t = field(li, "event_time");
    t.setAttribute("datetime", a.event_time);
    t.textContent = L.formatTime(a.event_time, false);
    field(li, "rstatus").textContent = a.renditions.length ? a.renditions[0].status : "new";
    refreshPreview(li, a);
  }

  function applyState(state) {
    updateRun(state.run);
    if (!state.changed) return;
    var keep = {};
    state.steps.forEach(function (step) {
      var section = document.getElementById("step-" + step.id);
      if (section) setStatus(field(section, "status"), step.status);
      step.artifacts.forEach(function (a) { keep[a.id] = true; applyArtifact(a); });
    });
    document.querySelectorAll("li.artifact").forEach(function (li) {
      if (!keep[li.dataset.artifactId]) li.remove();
    });
  }

  function onRunChanged(msg) {
    if (msg.seq < seq) return;                 // older than what we show
    if (msg.seq > seq + 1) { resync(); return; } // missed at least one push
    // A push from a large batch carries no artifacts: fetch the state (seq
    // advances when that answer arrives), at most every 2 s while it lasts.
    if (msg.partial) { updateRun(msg.run); resyncSoon(); return; }
    // A push without artifacts is a status change (runs/services/lifecycle.py):
    // the steps' statuses come with the state, so fetch it.
    if (msg.seq === seq + 1 && !msg.artifacts.length) { updateRun(msg.run); resync(); return; }
    seq = msg.seq;
    meta.dataset.seq = seq;
    updateRun(msg.run);
    msg.artifacts.forEach(applyArtifact);
  }

  var resyncTimer = null, lastPartialSync = 0;
  function resyncSoon() {
    if (resyncTimer) return;
    var wait = Math.max(0, lastPartialSync + 2000 - Date.now());
    resyncTimer = setTimeout(function () {
      resyncTimer = null;
      lastPartialSync = Date.now();
      resync();
    }, wait);
  }

  function resync() {
    if (syncing) return;
    syncing = true;
    fetch(meta.dataset.stateUrl + "?since=" + seq, {credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 401) { location.reload(); throw new Error("logged out"); }
        if (!r.ok) throw new Error("state " + r.status);
        return r.json();
      })
      .then(function (state) {
        applyState(state);
        seq = Math.max(seq, state.seq);
        meta.dataset.seq = seq;
      })
      .catch(function (e) { console.warn("pipelens resync:", e); })
      .then(function () {
        syncing = false;
        var pending = queued;
        queued = [];
        pending.forEach(onMessage);
      });
  }

  function onMessage(msg) {
    if (syncing) { queued.push(msg); return; }
    if (msg.type === "hello") { if (msg.seq !== null && msg.seq > seq) resync(); return; }
    if (msg.type === "run.changed" && String(msg.run_id) === runId) onRunChanged(msg);
  }

  document.querySelectorAll("[data-preview][data-lazy]").forEach(watchLazy);

  L.connect("/ws/runs/" + runId + "/", {
    onMessage: onMessage,
    // A reconnect may have missed anything: ask the server what changed.
    onOpen: function (again) { if (again) resync(); }
  });
})();
