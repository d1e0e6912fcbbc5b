/* Compare page (docs/compare.md): ROC overlay, confusion-matrix difference, only-differences,
   image-series sliders, and the live refresh.

   Live: one socket, /ws/compare/?runs=…, subscribed to every compared run. Each push carries
   its run's seq; a push newer than what the page shows (or a reconnect, or a hello whose seqs
   differ) refetches the sections (?fragment=sections) and swaps in only those whose data-sig
   changed, so the others keep their state. The refetch is the recovery, like the run page's
   state refetch: a lost push is noticed by the next one, a reconnect, or the hello. */
(function () {
  "use strict";
  var meta = document.getElementById("compare-meta");
  if (!meta) return;
  var L = window.PipelensLive;
  var onlyDifferences = false;
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
                "#9333ea", "#ea580c", "#0d9488", "#4f46e5", "#be123c", "#15803d", "#a16207", "#475569"];

  function jsonOf(id, root) {
    var el = (root || document).querySelector("#" + id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // --- ROC: every run's curve in one uPlot chart ---------------------------------------
  // Curves have their own fpr values; uPlot wants one x array, so the points of all curves
  // are laid out on one sorted x axis with each series null where it has no point
  // (spanGaps joins its own points). Hover picks each series' nearest point of its own.
  function initRoc(root) {
    var el = root.querySelector(".roc-overlay");
    var chart = jsonOf(root.dataset.json, root);
    if (!el || !chart || !window.uPlot) return;
    var all = [];
    chart.curves.forEach(function (c, si) {
      for (var i = 0; i < c.fpr.length; i++) all.push([c.fpr[i], si, c.tpr[i], c.thresholds[i]]);
    });
    all.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    var n = all.length, xs = new Array(n), ys = chart.curves.map(function () { return new Array(n).fill(null); });
    var th = chart.curves.map(function () { return new Array(n).fill(null); });
    for (var i = 0; i < n; i++) { xs[i] = all[i][0]; ys[all[i][1]][i] = all[i][2]; th[all[i][1]][i] = all[i][3]; }
    function fmt(v) { return v == null ? "—" : v.toFixed(3); }
    var series = [{label: "FPR", value: function (u, v) { return fmt(v); }}];
    chart.curves.forEach(function (c, si) {
      series.push({
        label: c.label + " · AUC " + c.auc, stroke: COLORS[si % COLORS.length], width: 1.5, spanGaps: true,
        points: {show: false},
        value: function (u, v, s, idx) {
          if (v == null) return "—";
          var t = idx == null ? null : th[si][idx];
          return v.toFixed(3) + (t == null ? "" : " @ " + Number(t).toPrecision(3));
        }
      });
    });
    series.push({label: "chance", stroke: "#999", dash: [4, 4], width: 1, spanGaps: true, value: function () { return ""; }});
    var chance = new Array(n).fill(null);  // the diagonal: y = x at both ends, joined
    if (n) { chance[0] = xs[0]; chance[n - 1] = xs[n - 1]; }
    var data = [xs].concat(ys).concat([chance]);
    var width = Math.max(320, Math.min(900, el.clientWidth || 720));
    var t0 = performance.now();
    new window.uPlot({
      width: width, height: 380, scales: {x: {time: false, range: [0, 1]}, y: {range: [0, 1]}},
      axes: [{label: "False positive rate"}, {label: "True positive rate"}],
      legend: {live: true},
      cursor: {
        dataIdx: function (u, si, hovered) {
          // the nearest index where this series has a point of its own
          var col = u.data[si];
          if (col[hovered] != null) return hovered;
          for (var d = 1; d < 400; d++) {
            if (hovered - d >= 0 && col[hovered - d] != null) return hovered - d;
            if (hovered + d < col.length && col[hovered + d] != null) return hovered + d;
          }
          return hovered;
        }
      },
      series: series,
      hooks: {draw: [function () {
        // Read by bench/compare.py: the chart's own time, and its first paint since navigation.
        if (!el.dataset.paintMs) {
          el.dataset.paintMs = String(Math.round(performance.now() - t0));
          el.dataset.paintAt = String(Math.round(performance.now()));
        }
      }]}
    }, data, el);
  }

  // --- confusion matrices: B − A over the union of labels -----------------------------
  function initConfusionDiff(root) {
    var data = jsonOf(root.dataset.json, root);
    if (!data || data.length < 2) return;
    var selA = root.querySelector(".cm-a"), selB = root.querySelector(".cm-b");
    var box = root.querySelector(".cm-diff-normalise"), table = root.querySelector(".cm-diff-table");
    var note = root.querySelector(".cm-diff-note");
    data.forEach(function (d, i) {
      [selA, selB].forEach(function (sel) {
        var o = document.createElement("option"); o.value = String(i); o.textContent = d.label; sel.appendChild(o);
      });
    });
    selA.value = "0"; selB.value = "1";
    function cellOf(d, t, p, normalised) {
      var ti = d.labels.indexOf(t), pi = d.labels.indexOf(p);
      if (ti < 0 || pi < 0) return null;
      var v = d.counts[ti][pi];
      if (!normalised) return v;
      var total = d.counts[ti].reduce(function (s, x) { return s + x; }, 0);
      return total ? 100 * v / total : 0;
    }
    function draw() {
      var a = data[Number(selA.value)], b = data[Number(selB.value)], normalised = box.checked;
      var labels = a.labels.slice();
      b.labels.forEach(function (l) { if (labels.indexOf(l) < 0) labels.push(l); });
      var onlyA = a.labels.filter(function (l) { return b.labels.indexOf(l) < 0; });
      var onlyB = b.labels.filter(function (l) { return a.labels.indexOf(l) < 0; });
      note.textContent = (onlyA.length || onlyB.length)
        ? "Labels differ: " + (onlyA.length ? "only in A: " + onlyA.join(", ") + ". " : "") +
          (onlyB.length ? "only in B: " + onlyB.join(", ") + ". " : "") + "Cells a run lacks are blank."
        : (normalised ? "Cells: B − A of each row's percentage." : "Cells: B − A of the counts.");
      table.textContent = "";
      var head = table.createTHead().insertRow();
      var corner = document.createElement("th"); corner.textContent = "target ↓ / predicted →"; head.appendChild(corner);
      labels.forEach(function (l) { var th = document.createElement("th"); th.textContent = l; head.appendChild(th); });
      var body = table.createTBody(), max = 0, cells = [];
      labels.forEach(function (t) {
        var row = [];
        labels.forEach(function (p) {
          var va = cellOf(a, t, p, normalised), vb = cellOf(b, t, p, normalised);
          var d = (va === null || vb === null) ? null : vb - va;
          if (d !== null) max = Math.max(max, Math.abs(d));
          row.push(d);
        });
        cells.push(row);
      });
      labels.forEach(function (t, ti) {
        var tr = body.insertRow(), th = document.createElement("th");
        th.scope = "row"; th.textContent = t; tr.appendChild(th);
        cells[ti].forEach(function (d) {
          var td = tr.insertCell();
          if (d === null) { td.textContent = ""; td.className = "cm-blank"; return; }
          var shown = normalised ? d.toFixed(1) : (Math.round(d * 1000) / 1000);
          td.textContent = (d > 0 ? "+" : "") + shown;
          var w = max ? Math.round(10 * Math.abs(d) / max) : 0;
          td.className = d === 0 ? "cmd-0" : (d > 0 ? "cmd-p" : "cmd-n") + w;
        });
      });
      root.dataset.drawn = selB.value + "-" + selA.value + (normalised ? "n" : "c");
    }
    [selA, selB, box].forEach(function (el) { el.addEventListener("change", draw); });
    draw();
  }

  // --- metrics: only differences ----------------------------------------------------------
  function applyOnlyDifferences(root) {
    var box = root.querySelector(".only-differences");
    if (!box) return;
    box.checked = onlyDifferences;
    var rows = root.querySelectorAll("tr.metric-row"), shown = 0;
    rows.forEach(function (tr) {
      tr.hidden = onlyDifferences && tr.dataset.same === "1";
      if (!tr.hidden) shown += 1;
    });
    var empty = root.querySelector(".only-diff-empty");
    if (empty) empty.hidden = !(onlyDifferences && shown === 0);
  }
  function initMetrics(root) {
    var box = root.querySelector(".only-differences");
    if (!box) return;
    box.addEventListener("change", function () { onlyDifferences = box.checked; applyOnlyDifferences(root); });
    applyOnlyDifferences(root);
  }

  // --- images: one slider per series moves every run's frame --------------------------
  function initImages(root) {
    root.querySelectorAll(".series-slider").forEach(function (slider) {
      var steps = slider.dataset.steps.split(","), out = slider.parentNode.querySelector(".series-step");
      slider.addEventListener("input", function () {
        var i = slider.value;
        out.textContent = steps[i];
        root.querySelectorAll('.series-cell[data-series="' + slider.dataset.series + '"] .series-frame').forEach(function (f) {
          f.hidden = f.dataset.step !== i;
        });
      });
    });
  }

  // --- re-pair form: its choices are the matching table's cells (one copy of the names) ---
  function initMatching(root) {
    var select = root.querySelector("#repair-artifact"), keys = root.querySelector("#match-keys");
    if (!select) return;
    var heads = Array.prototype.map.call(root.querySelectorAll("table.matching thead th[data-run]"), function (th) {
      return {run: th.dataset.run, label: th.textContent.trim()};
    });
    heads.forEach(function (head) {
      var group = document.createElement("optgroup");
      group.label = head.label;
      root.querySelectorAll('table.matching td[data-pair^="' + head.run + ':"]').forEach(function (td) {
        var o = document.createElement("option");
        o.value = td.dataset.pair;
        o.textContent = td.textContent + " → " + td.dataset.key;
        group.appendChild(o);
      });
      select.appendChild(group);
    });
    var seen = {};
    root.querySelectorAll("table.matching td[data-key]").forEach(function (td) {
      if (seen[td.dataset.key]) return;
      seen[td.dataset.key] = true;
      var o = document.createElement("option"); o.value = td.dataset.key; keys.appendChild(o);
    });
  }

  function wire(root) {
    var section = root.dataset.section;
    try {
      if (section === "matching") initMatching(root);
      if (section === "roc") root.querySelectorAll(".roc-compare").forEach(initRoc);
      if (section === "confusion_matrix") root.querySelectorAll(".cm-diff").forEach(initConfusionDiff);
      if (section === "metrics") initMetrics(root);
      if (section === "image") initImages(root);
    } catch (e) { if (window.console) console.error("compare", section, e); }
  }

  document.querySelectorAll("#compare-sections [data-section]").forEach(wire);

  // --- live --------------------------------------------------------------------------------
  var seqs = jsonOf("compare-seqs") || {};
  var fetching = false, again = false, timer = null;

  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(meta.dataset.fragmentUrl, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
        var fresh = jsonOf("compare-seqs", doc);
        if (fresh) Object.keys(fresh).forEach(function (k) { seqs[k] = Math.max(seqs[k] || 0, fresh[k]); });
        doc.querySelectorAll("[data-section]").forEach(function (next) {
          var current = document.querySelector('#compare-sections [data-section="' + next.dataset.section + '"]');
          if (!current || current.dataset.sig === next.dataset.sig) return;
          var node = document.importNode(next, true);
          current.replaceWith(node);
          wire(node);  // viewers.js wires the viewer partials inside (MutationObserver)
        });
        meta.dataset.refreshed = String(Number(meta.dataset.refreshed || 0) + 1);
      })
      .catch(function (e) { if (window.console) console.warn("compare refresh", e); again = true; })
      .then(function () {
        fetching = false;
        if (again) { again = false; schedule(1000); }
      });
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);  // several runs' pushes in a burst: one refetch
  }

  L.connect("/ws/compare/?runs=" + encodeURIComponent(meta.dataset.runs), {
    onOpen: function (isReconnect) { if (isReconnect) schedule(0); },
    onMessage: function (msg) {
      if (msg.type === "hello") {
        var stale = Object.keys(msg.seqs || {}).some(function (k) { return msg.seqs[k] !== seqs[k]; });
        if (stale) schedule(0);
        return;
      }
      if (msg.type === "run.changed") {
        var k = String(msg.run_id);
        if (msg.seq > (seqs[k] || 0)) { seqs[k] = msg.seq; schedule(250); }
      }
    }
  });
})();
