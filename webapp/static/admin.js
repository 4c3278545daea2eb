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
      var alt = document.getElementById("md_alt");
      if (alt) body.append("md_alt", alt.value);
      if (token) body.append("csrf_token", token.value);
      target = document.getElementById(input.dataset.mdTarget);
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
          // The description is selected, so that typing replaces it when none was given.
          var at = start + text.indexOf("![") + 2;
          if (!alt || !alt.value) target.setSelectionRange(at, at + result.data.markdown.indexOf("](") - 2);
          if (alt) alt.value = "";
          input.value = "";  // inserted: not sent again with the form
          status.textContent = status.dataset.inserted;
          target.dispatchEvent(new Event("input", { bubbles: true }));
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

  // The Markdown toolbar over each Markdown field: each button writes the Markdown around the
  // selection (or a word to replace), then the preview is refreshed as if it had been typed.
  function markdownToolbars() {
    document.querySelectorAll(".md-toolbar").forEach(function (bar) {
      var area = document.getElementById(bar.dataset.mdFor);
      if (!area) return;
      bar.hidden = false;
      var sample = bar.dataset.sample || "text";
      function selected() { return area.value.slice(area.selectionStart, area.selectionEnd); }
      function put(text, selectFrom, selectTo) {
        var start = area.selectionStart;
        area.setRangeText(text, start, area.selectionEnd, "end");
        if (selectFrom !== undefined) area.setSelectionRange(start + selectFrom, start + selectTo);
        area.focus();
        area.dispatchEvent(new Event("input", { bubbles: true }));
      }
      function wrap(before, after) {
        var text = selected() || sample;
        put(before + text + after, before.length, before.length + text.length);
      }
      function lines(prefix) {
        var start = area.value.lastIndexOf("\n", area.selectionStart - 1) + 1;
        area.setSelectionRange(start, area.selectionEnd);
        var text = (selected() || sample).split("\n").map(function (line) { return prefix + line; }).join("\n");
        put(text, 0, text.length);
      }
      var actions = {
        heading: function () { lines("## "); },
        bold: function () { wrap("**", "**"); },
        link: function () {
          var text = selected() || sample;
          put("[" + text + "](https://)", text.length + 3, text.length + 11);
        },
        list: function () { lines("- "); },
        quote: function () { lines("> "); },
        button: function () {
          var text = selected() || sample;
          var before = (area.selectionStart && area.value[area.selectionStart - 1] !== "\n") ? "\n\n" : "";
          var md = before + "[" + text + "](https://){button}\n";
          put(md, before.length + text.length + 3, before.length + text.length + 11);
        },
        image: function () {
          var input = document.querySelector("input[data-md-upload]");
          if (!input) return;
          input.dataset.mdTarget = area.id;
          input.click();
        },
      };
      bar.querySelectorAll("button[data-md]").forEach(function (button) {
        button.addEventListener("click", function () { actions[button.dataset.md](); });
      });
      var field = bar.querySelector("select[data-md=field]");
      if (field) field.addEventListener("change", function () {
        if (!field.value) return;
        var value = field.value;
        field.value = "";
        put(value);
      });
      rovingFocus(bar);
    });
  }

  // A toolbar is one stop for Tab; the arrow keys, Home and End move within it (the WAI-ARIA
  // toolbar pattern), so a keyboard user does not tab through eight buttons to reach the text.
  function rovingFocus(bar) {
    var controls = Array.prototype.slice.call(bar.querySelectorAll("button, select"));
    function current(index) {
      controls.forEach(function (control, i) { control.tabIndex = i === index ? 0 : -1; });
    }
    current(0);
    controls.forEach(function (control, i) {
      control.addEventListener("focus", function () { current(i); });
    });
    bar.addEventListener("keydown", function (event) {
      var at = controls.indexOf(document.activeElement);
      if (at < 0) return;
      var moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: controls.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      var next = (moves[event.key] + controls.length) % controls.length;
      current(next);
      controls[next].focus();
    });
  }

  // The live preview: the whole form posted as the editor types (debounced), rendered by the
  // server as a send would be, shown in a sandboxed frame (no script runs in it) and as text.
  function composer() {
    var pane = document.getElementById("composer-preview");
    var form = document.getElementById("alert-form");
    if (!pane || !form) return;
    var box = document.getElementById("composer");
    var frame = document.getElementById("composer-frame");
    var text = document.getElementById("composer-text");
    var subject = document.getElementById("composer-subject");
    var faults = document.getElementById("preview-errors");
    var status = document.getElementById("preview-status");
    var version = document.getElementById("preview_lang");
    var sample = document.getElementById("sample_name");
    var tabs = box.querySelector(".composer-tabs");
    box.classList.add("live");
    pane.hidden = false;
    tabs.hidden = false;
    tabs.querySelectorAll("[data-composer-tab]").forEach(function (button) {
      button.addEventListener("click", function () {
        box.classList.toggle("show-preview", button.dataset.composerTab === "preview");
        tabs.querySelectorAll("[data-composer-tab]").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      });
    });
    pane.querySelectorAll("[data-preview-mode]").forEach(function (button) {
      button.addEventListener("click", function () {
        var mode = button.dataset.previewMode;
        frame.hidden = mode === "text";
        text.hidden = mode !== "text";
        frame.classList.toggle("frame-mobile", mode === "mobile");
        frame.classList.toggle("frame-desktop", mode !== "mobile");
        pane.querySelectorAll("[data-preview-mode]").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      });
    });
    function body() {
      var data = new FormData(form);
      data.delete("md_image");
      data.append("preview_lang", version.value);
      data.append("sample_name", sample.value);
      return data;
    }
    function labelOf(name) {
      var label = form.querySelector('label[for="' + name + '"]');
      return label ? label.textContent.replace("*", "").trim() : name;
    }
    function showErrors(errors) {
      faults.textContent = "";
      Object.keys(errors || {}).sort().forEach(function (name) {
        var item = document.createElement("li");
        var field = document.getElementById(name);
        var where = document.createElement(field ? "a" : "strong");
        if (field) where.href = "#" + name;
        where.textContent = labelOf(name);
        item.appendChild(where);
        item.appendChild(document.createTextNode(": " + errors[name]));
        faults.appendChild(item);
      });
    }
    function showVersions(versions, shown) {
      var wanted = version.value || shown;
      version.textContent = "";
      (versions || []).forEach(function (pair) {
        var option = document.createElement("option");
        option.value = pair[0];
        option.textContent = pair[1];
        option.selected = pair[0] === wanted;
        version.appendChild(option);
      });
    }
    var timer = null, asked = 0;
    function refresh() {
      var mine = ++asked;
      fetch(pane.dataset.previewUrl, {
        method: "POST", body: body(), credentials: "same-origin", headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== asked) return;  // an older answer than one already asked for
          status.textContent = "";
          showErrors(data.errors);
          if (data.versions) showVersions(data.versions, data.language);
          if (!data.frame) return;
          subject.textContent = data.subject;
          text.textContent = data.text;
          frame.src = data.frame;
          pane.dataset.rendered = String(mine);
        })
        .catch(function () { status.textContent = pane.dataset.failed; });
    }
    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 400);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    sample.addEventListener("input", later);
    version.addEventListener("change", refresh);
    var send = document.getElementById("composer-test-send");
    var to = document.getElementById("composer_test_to");
    var told = document.getElementById("composer-test-status");
    send.addEventListener("click", function () {
      var data = body();
      data.append("test_to", to.value);
      told.textContent = "";
      fetch(pane.dataset.testUrl, {
        method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.json(); })
        .then(function (result) {
          if (result.sent) {
            told.textContent = pane.dataset.testSent.replace("%(addresses)s", result.sent.join(", "));
          } else {
            var errors = result.errors || {};
            told.textContent = Object.keys(errors).map(function (k) { return errors[k]; }).join(" ");
          }
        })
        .catch(function () { told.textContent = pane.dataset.failed; });
    });
    refresh();
  }

  onReady(function () {
    markdownToolbars();
    composer();
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
