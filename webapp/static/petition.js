/* Petition pages: keep the counter live, and copy the share link. Our own file; no inline script. */
(function () {
  "use strict";
  var POLL_MS = 15000;

  function format(n) {
    return Number(n).toLocaleString(document.documentElement.lang || "en");
  }

  function refresh(counter) {
    if (document.hidden) { return; }
    fetch(counter.getAttribute("data-count-url"), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var count = counter.querySelector("#count");
        var goal = counter.querySelector("#goal");
        var bar = counter.querySelector("#progress");
        if (count) { count.textContent = format(data.count); }
        if (goal && data.goal) { goal.textContent = format(data.goal); }
        if (bar && data.goal) { bar.max = data.goal; bar.value = data.count; }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  var counter = document.getElementById("counter");
  if (counter) {
    setInterval(function () { refresh(counter); }, POLL_MS);
  }

  var copy = document.getElementById("copy-link");
  if (copy) {
    copy.addEventListener("click", function () {
      var field = document.querySelector(copy.getAttribute("data-copy"));
      field.select();
      var done = function () { copy.textContent = copy.getAttribute("data-done") || "Copied"; };
      if (navigator.clipboard) {
        navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  }
})();
