// fairque dashboard: keeps the live parts of a page current by short polling.
// An element with data-live="URL" is refreshed every data-interval ms from URL (the
// part matching data-select when given, else the whole answer); polling stops once the
// new content holds an element with data-final. No inline script anywhere (CSP).
"use strict";

(function () {
  function refresh(el) {
    var url = el.getAttribute("data-live");
    var select = el.getAttribute("data-select");
    var interval = parseInt(el.getAttribute("data-interval") || "2000", 10);
    var last = null;
    if (el.querySelector("[data-final]")) {
      return;
    }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (text) {
          el.removeAttribute("data-stale");
          if (text !== last) {  // unchanged: leave the page (and its scroll) alone
            last = text;
            var doc = new DOMParser().parseFromString(text, "text/html");
            var fresh = select ? doc.querySelector(select) : doc.body;
            if (fresh) {
              el.replaceChildren.apply(el, Array.prototype.slice.call(fresh.childNodes));
            }
          }
          if (!el.querySelector("[data-final]")) { window.setTimeout(tick, interval); }
        })
        .catch(function () {
          el.setAttribute("data-stale", "1");
          window.setTimeout(tick, interval * 2);
        });
    }
    window.setTimeout(tick, interval);
  }

  function jump(form) {
    form.addEventListener("submit", function (event) {
      var value = form.querySelector("input").value.trim();
      event.preventDefault();
      if (value) { window.location.href = form.getAttribute("data-jump") + encodeURIComponent(value); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(refresh);
    document.querySelectorAll("form[data-jump]").forEach(jump);
  });
})();
