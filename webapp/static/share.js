/* Mastodon share page: remember the reader's server in this browser only (localStorage). */
(function () {
  "use strict";
  var KEY = "clarion.mastodonInstance";
  var form = document.getElementById("mastodon-form");
  var field = document.getElementById("instance");
  if (!form || !field) { return; }
  try {
    if (!field.value) { field.value = window.localStorage.getItem(KEY) || ""; }
    form.addEventListener("submit", function () {
      window.localStorage.setItem(KEY, field.value.trim());
    });
  } catch (e) {
    /* storage disabled: the reader simply types the server each time */
  }
})();
