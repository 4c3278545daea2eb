// Live progress of a send: polls the JSON endpoint and updates the page until the send ends,
// buttons included, without reloading it.
(function () {
  "use strict";
  var root = document.getElementById("send-progress");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  // The page's words for states and units, in the editor's language (set by the template).
  var statusLabels = JSON.parse(root.getAttribute("data-status-labels") || "{}");
  var stalledLabel = root.getAttribute("data-stalled-label") || "Stalled:";
  var secondsLabel = root.getAttribute("data-seconds-label") || "{s} s";
  var minutesLabel = root.getAttribute("data-minutes-label") || "{m} min";
  var shown = root.getAttribute("data-status");  // the state the buttons were drawn for

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function put(name, value) { var el = field(name); if (el) { el.textContent = value; } }
  function eta(seconds) {
    if (seconds === null) { return "—"; }
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return (m ? minutesLabel.replace("{m}", m) + " " : "") + secondsLabel.replace("{s}", s);
  }
  // A slow send is still a send: 0.4 a second is not "0 per second".
  function rate(r) { return r < 10 ? (Math.round(r * 10) / 10).toString() : Math.round(r).toString(); }

  // The buttons depend on the state: take them from the server's own page, drawn afresh.
  function redrawControls() {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var controls = fresh.getElementById("send-controls");
        var here = document.getElementById("send-controls");
        if (controls && here) { here.replaceWith(document.importNode(controls, true)); }
      });
  }

  function show(p) {
    put("status", statusLabels[p.status] || p.status);
    put("status_reason", p.status_reason);
    ["sent", "deferred", "failed", "skipped"].forEach(function (k) { put(k, p.counts[k]); });
    put("remaining", p.remaining);
    put("total", p.total);
    put("rate", rate(p.rate));
    put("eta", eta(p.eta_seconds));
    put("possible_duplicates", p.possible_duplicates);
    var counting = field("counting");
    if (counting) { counting.hidden = p.dispatched; }
    var stalled = field("stalled");
    if (stalled) {
      stalled.hidden = !p.stalled.length;
      stalled.textContent = p.stalled.length ? stalledLabel + " " + p.stalled.join("; ") : "";
    }
    var bar = field("bar");
    if (bar) { bar.max = Math.max(p.total, 1); bar.value = p.total - p.remaining; }
    if (p.status === shown) { return Promise.resolve(); }
    return redrawControls().then(function () {
      shown = p.status;
      root.setAttribute("data-status", shown);
    });
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (p) {
        return show(p).then(function () {
          if (!p.done) { setTimeout(poll, p.status === "paused" ? 5000 : 1500); }
        });
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
