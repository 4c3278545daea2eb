// Live progress of a send: polls the JSON endpoint and updates the page until the send ends.
(function () {
  "use strict";
  var root = document.getElementById("send-progress");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  var started = null;
  // The page's words for states and units, in the editor's language (set by the template).
  var statusLabels = JSON.parse(root.getAttribute("data-status-labels") || "{}");
  var stalledLabel = root.getAttribute("data-stalled-label") || "Stalled:";
  var secondsLabel = root.getAttribute("data-seconds-label") || "{s} s";
  var minutesLabel = root.getAttribute("data-minutes-label") || "{m} min";

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function put(name, value) { var el = field(name); if (el) { el.textContent = value; } }
  function eta(seconds) {
    if (seconds === null) { return "—"; }
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return (m ? minutesLabel.replace("{m}", m) + " " : "") + secondsLabel.replace("{s}", s);
  }

  function show(p) {
    put("status", statusLabels[p.status] || p.status);
    put("status_reason", p.status_reason);
    ["sent", "deferred", "failed", "skipped"].forEach(function (k) { put(k, p.counts[k]); });
    put("remaining", p.remaining);
    put("total", p.total);
    put("rate", Math.round(p.rate));
    put("eta", eta(p.eta_seconds));
    put("possible_duplicates", p.possible_duplicates);
    var stalled = field("stalled");
    if (stalled) {
      stalled.hidden = !p.stalled.length;
      stalled.textContent = p.stalled.length ? stalledLabel + " " + p.stalled.join("; ") : "";
    }
    var bar = field("bar");
    if (bar) { bar.max = Math.max(p.total, 1); bar.value = p.total - p.remaining; }
    if (started !== null && p.status !== started) {
      window.location.reload();  // the buttons depend on the state: let the server redraw them
    }
    started = started === null ? p.status : started;
    return !p.done && p.status !== "paused";
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (p) { if (show(p)) { setTimeout(poll, 1500); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
