/* Viewers: wire up the partials of runs/templates/runs/viewers/ wherever they
   appear, including previews the run page swaps in later (MutationObserver).
   Charts are drawn here from the renditions' JSON payloads with the vendored
   uPlot (static/VENDORED.md). docs/viewers.md */
(function () {
  "use strict";
  if (window.PipelensViewers) return;

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, status: r.status, body: body}; }); });
  }

  function initTable(root) {
    var url = root.dataset.rowsUrl, pageRows = Number(root.dataset.pageRows) || 50;
    var count = root.dataset.rowCount === "" ? null : Number(root.dataset.rowCount);
    var start = 0, sort = null, desc = false, attempt = 0, timer = null, seq = 0;
    var tbody = root.querySelector("tbody"), msg = root.querySelector(".pager-msg");
    var range = root.querySelector(".row-range");
    function show(page) {
      tbody.textContent = "";
      page.rows.forEach(function (row) {
        var tr = document.createElement("tr");
        row.forEach(function (cell) { var td = document.createElement("td"); td.textContent = cell; tr.appendChild(td); });
        tbody.appendChild(tr);
      });
      start = page.start;
      range.textContent = page.rows.length ? "Rows " + (start + 1) + "–" + (start + page.rows.length) : "No rows";
      msg.textContent = (page.notices || []).join(" ");
    }
    /* 202 {pending}: the worker is building the sorted copy; 503 {retry}: the server is busy.
       Both ask again with a growing pause; a newer click supersedes the request. */
    function load(to, retrying) {
      if (!root.dataset.indexed) { msg.textContent = "Still counting rows; paging starts when that is done."; return; }
      if (count !== null) to = Math.min(to, Math.max(0, count - pageRows));
      to = Math.max(0, to);
      clearTimeout(timer);
      if (!retrying) attempt = 0;
      var mine = ++seq;
      var q = url + (url.indexOf("?") >= 0 ? "&" : "?") + "start=" + to + "&count=" + pageRows + (sort === null ? "" : "&sort=" + sort + (desc ? "&desc=1" : ""));
      if (!retrying) msg.textContent = "Loading…";
      getJSON(q).then(function (res) {
        if (mine !== seq) return;
        if (res.status === 202 || (res.status === 503 && res.body.retry)) {
          attempt += 1;
          if (attempt > 90) { msg.textContent = "Still not ready; try again later."; return; }
          msg.textContent = res.body.message || res.body.error || "Working…";
          timer = setTimeout(function () { load(to, true); }, Math.min(2000, 200 * attempt));
          return;
        }
        if (!res.ok) { msg.textContent = res.body.error || "Could not load rows."; return; }
        show(res.body);
      }).catch(function () { if (mine === seq) msg.textContent = "Could not load rows."; });
    }
    root.querySelector(".pager").addEventListener("click", function (e) {
      var which = e.target.dataset && e.target.dataset.page;
      if (!which) return;
      if (which === "first") load(0);
      if (which === "prev") load(start - pageRows);
      if (which === "next") load(start + pageRows);
      if (which === "last") load(count === null ? start : count - pageRows);
    });
    if (root.dataset.sortable) {
      root.querySelector("thead").addEventListener("click", function (e) {
        var th = e.target.closest("th");
        if (!th || th.dataset.col === undefined) return;  // the compare page's run column
        var col = Number(th.dataset.col);
        desc = sort === col ? !desc : false;
        sort = col;
        load(0);
      });
    }
  }

  function initConfusion(root) {
    var box = root.querySelector(".cm-normalise");
    box.addEventListener("change", function () { root.classList.toggle("normalised", box.checked); });
  }

  function initRoc(root) {
    var el = root.querySelector(".roc-chart");
    var data = JSON.parse(document.getElementById(el.dataset.json).textContent);
    if (!window.uPlot) { el.textContent = "Chart library missing."; return; }
    var width = Math.max(260, Math.min(560, el.clientWidth || 480));
    var thresholds = data.thresholds;
    new window.uPlot({
      width: width, height: 300, scales: {x: {time: false, range: [0, 1]}, y: {range: [0, 1]}},
      axes: [{label: "False positive rate"}, {label: "True positive rate"}],
      series: [
        {label: "FPR", value: function (u, v) { return v == null ? "—" : v.toFixed(3); }},
        {label: "TPR", stroke: "#2563eb", width: 2, value: function (u, v) { return v == null ? "—" : v.toFixed(3); }},
        {label: "threshold", stroke: "transparent", points: {show: false},
         value: function (u, v, si, idx) { var t = idx == null ? null : thresholds[idx]; return t == null ? "—" : Number(t).toPrecision(4); }},
        {label: "chance", stroke: "#999", dash: [4, 4], width: 1, value: function () { return ""; }}
      ]
    }, [data.fpr, data.tpr, data.tpr.map(function () { return null; }), data.fpr.slice()], el);
  }

  function initText(root) {
    var pre = root.querySelector("pre.log");
    pre.scrollTop = pre.scrollHeight;
    var btn = root.querySelector(".load-earlier");
    if (!btn) return;
    btn.addEventListener("click", function () {
      var start = Number(root.dataset.start);
      btn.disabled = true;
      getJSON(root.dataset.earlierUrl + "?before=" + start).then(function (res) {
        btn.disabled = false;
        if (!res.ok) { btn.textContent = res.body.error || "Could not load"; return; }
        pre.textContent = res.body.text + pre.textContent;
        root.dataset.start = res.body.start;
        if (!res.body.truncated) btn.remove();
      });
    });
  }

  function initWebApp(root) {
    root.querySelector(".webapp-reload").addEventListener("click", function () {
      getJSON(root.dataset.url).then(function (res) { if (res.ok) root.querySelector("iframe").src = res.body.url; });
    });
  }

  var INIT = {".table-viewer": initTable, ".cm-viewer": initConfusion, ".roc-viewer": initRoc,
              ".text-viewer": initText, ".webapp-viewer": initWebApp};

  function scan(node) {
    if (!node.querySelectorAll) return;
    Object.keys(INIT).forEach(function (sel) {
      var found = Array.prototype.slice.call(node.querySelectorAll(sel));
      if (node.matches && node.matches(sel)) found.push(node);
      found.forEach(function (el) {
        if (el.dataset.wired) return;
        el.dataset.wired = "1";
        try { INIT[sel](el); } catch (e) { if (window.console) console.error("viewer", sel, e); }
      });
    });
  }

  window.PipelensViewers = {scan: scan};
  function start() {
    scan(document.body);
    new MutationObserver(function (records) {
      records.forEach(function (r) { r.addedNodes.forEach(scan); });
    }).observe(document.body, {childList: true, subtree: true});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
