// The bucket page's probe table (docs/operations.md#probe): while a probe waits for its
// event, fetch the table again (the server settles the probe) until none is pending.
(function () {
  "use strict";
  var INTERVAL_MS = 250;
  function poll() {
    var box = document.getElementById("bucket-probes");
    if (!box || box.dataset.pending !== "yes") return;
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#bucket-probes");
        if (fresh) box.replaceWith(fresh);
        setTimeout(poll, INTERVAL_MS);
      })
      .catch(function () { setTimeout(poll, INTERVAL_MS * 4); });
  }
  document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, INTERVAL_MS); });
})();
