/* Clarion admin: keyboard access to tables that scroll, confirmations, job progress, the live audience count, the X counter and
   the preview width switch. Served from our own origin; no inline script anywhere. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function jobProgress() {
    var box = document.getElementById("job");
    if (!box) return;
    var bar = document.getElementById("job-bar");
    var results = document.getElementById("job-results");
    var statusLabels = JSON.parse(box.getAttribute("data-status-labels") || "{}");
    function show(p) {
      bar.value = p.percent;
      Object.keys(p).forEach(function (key) {
        var el = box.querySelector('[data-field="' + key + '"]');
        if (el) el.textContent = key === "status" ? statusLabels[p.status] || p.status : p[key];
      });
      box.dataset.status = p.status;
      if (p.finished) results.hidden = false;
    }
    function poll() {
      fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          show(p);
          if (!p.finished) window.setTimeout(poll, 500);
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    }
    if (box.dataset.status !== "done" && box.dataset.status !== "failed") poll();
  }

  function audienceCount() {
    var box = document.getElementById("audience");
    var out = document.getElementById("audience-count");
    if (!box || !out) return;
    var timer = null;
    function refresh() {
      var params = new URLSearchParams();
      // Named boxes only: the condition editor's controls have no name (they write the JSON).
      box.querySelectorAll("input[type=checkbox][name]:checked").forEach(function (input) {
        params.append(input.name, input.value);
      });
      // A petition alert leaves out the picked petition's signers: the count says how many.
      var pick = document.querySelector("[data-petition-pick]");
      if (pick && pick.value) params.append("petition_id", pick.value);
      var skipped = document.getElementById("skipped-count");
      // Conditions on what readers did: counted as typed, their faults named by path.
      var conditions = document.getElementById("conditions");
      var faults = document.getElementById("conditions-errors");
      if (conditions && conditions.value.trim()) params.append("conditions", conditions.value);
      fetch(box.dataset.countUrl + "?" + params.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          out.textContent = data.count === null ? "?" : data.count;
          if (skipped) skipped.textContent = data.skipped === null ? "?" : data.skipped;
          var byLanguage = document.getElementById("audience-languages");
          if (byLanguage) byLanguage.textContent = (data.languages || []).map(function (l) { return l[1] + ": " + l[2]; }).join(" · ") || "—";
          if (faults) {
            faults.textContent = "";
            Object.keys(data.errors || {}).sort().forEach(function (path) {
              var item = document.createElement("li");
              var code = document.createElement("code");
              code.textContent = path;
              item.appendChild(code);
              item.appendChild(document.createTextNode(": " + data.errors[path]));
              faults.appendChild(item);
            });
            conditions.setAttribute("aria-invalid", data.errors ? "true" : "false");
          }
        });
    }
    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 150);
    }
    box.addEventListener("change", later);
    var typed = document.getElementById("conditions");
    if (typed) typed.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 500);
    });
    var picker = document.querySelector("[data-petition-pick]");
    if (picker) picker.addEventListener("change", later);
    refresh();
  }

  function xCounter() {
    var post = document.querySelector('[data-x-role="post"]');
    var out = document.getElementById("x-count");
    if (!post || !out || !window.ClarionXCount) return;
    var X = window.ClarionXCount;
    function value(role) {
      var el = document.querySelector('[data-x-role="' + role + '"]');
      return el ? el.value : "";
    }
    function update() {
      var text = X.suggestedPostText({
        suggested_post: value("post"),
        hashtags: value("hashtags"),
        share_url: value("share_url"),
      });
      var n = X.weightedLength(text);
      out.textContent = n;
      out.classList.toggle("over", n > X.MAX_WEIGHTED_LENGTH);
      post.setAttribute("aria-invalid", n > X.MAX_WEIGHTED_LENGTH ? "true" : "false");
    }
    document.querySelectorAll("[data-x-role]").forEach(function (el) {
      el.addEventListener("input", update);
    });
    update();
  }

  function previewSwitch() {
    var frame = document.getElementById("preview-frame");
    if (!frame) return;
    document.querySelectorAll("[data-preview-width]").forEach(function (button) {
      button.addEventListener("click", function () {
        var width = button.dataset.previewWidth;
        frame.classList.toggle("frame-mobile", width === "mobile");
        frame.classList.toggle("frame-desktop", width === "desktop");
        document.querySelectorAll("[data-preview-width]").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      });
    });
  }

  // An image chosen beside a Markdown field is uploaded at once and its Markdown inserted where
  // the cursor is. Without this script the file goes with the form and is added at the end.
  function markdownImageUpload() {
    var input = document.querySelector("input[data-md-upload]");
    if (!input) return;
    var target = document.getElementById(input.dataset.mdTarget);
    var status = document.getElementById("md-image-status");
    var token = input.form.querySelector("input[name=csrf_token]");
    input.addEventListener("change", function () {
      if (!input.files.length) return;
      var body = new FormData();
      body.append("md_image", input.files[0]);
      if (token) body.append("csrf_token", token.value);
      status.textContent = status.dataset.uploading;
      fetch(input.dataset.mdUpload, {
        method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
        .then(function (result) {
          if (!result.ok) {
            var fields = result.data.fields || {};
            status.textContent = fields[Object.keys(fields)[0]] || status.dataset.failed;
            return;
          }
          var start = target.selectionStart, end = target.selectionEnd;
          var before = target.value.slice(0, start);
          var text = (before && !/\n$/.test(before) ? "\n\n" : "") + result.data.markdown + "\n";
          target.setRangeText(text, start, end, "end");
          target.focus();
          input.value = "";  // inserted: not sent again with the form
          status.textContent = status.dataset.inserted;
        })
        .catch(function () { status.textContent = status.dataset.failed; });
    });
  }

  // On a phone a wide table scrolls within itself (clarion.css); a region that scrolls must be
  // reachable by keyboard, so such a table takes focus, and only while it does scroll.
  function scrollingTables() {
    document.querySelectorAll("main table").forEach(function (table) {
      if (table.scrollWidth > table.clientWidth) table.setAttribute("tabindex", "0");
      else table.removeAttribute("tabindex");
    });
  }

  onReady(function () {
    markdownImageUpload();
    scrollingTables();
    window.addEventListener("resize", scrollingTables);
    confirmations();
    jobProgress();
    audienceCount();
    xCounter();
    previewSwitch();
  });
})();
