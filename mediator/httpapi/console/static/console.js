// Tally console: the little the pages need beyond HTML. Everything works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // "Select all on this page" for the dead-letter list.
  var all = document.getElementById("select-page");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=seq]").forEach(function (b) { b.checked = all.checked; });
    });
  }
});
