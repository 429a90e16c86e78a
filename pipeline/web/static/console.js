/* The console's only script: dashboard auto-refresh, review keyboard, institution search,
   confirmations.  Loaded from /static (CSP forbids inline script). */
(function () {
  "use strict";

  // Dashboard: poll a cheap change marker; reload when the worker or a clerk changed something.
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    var seen = poll.getAttribute("data-poll");
    setInterval(function () {
      fetch("/api/changes", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) { if (j && j.marker !== seen) { location.reload(); } })
        .catch(function () { /* offline for a moment: try again next tick */ });
    }, 5000);
  }

  // Confirmation before forms that act on many things at once.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });

  // "Back" links on error pages.
  document.querySelectorAll("a[data-back]").forEach(function (a) {
    a.addEventListener("click", function (e) { if (history.length > 1) { e.preventDefault(); history.back(); } });
  });

  // Institution search: fill the <datalist> from /api/institutions as the clerk types.
  document.querySelectorAll("input[data-search]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (!q) { return; }
        fetch(input.getAttribute("data-search") + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (rows) {
            list.textContent = "";
            rows.forEach(function (row) {
              var opt = document.createElement("option");
              opt.value = String(row.row);
              opt.label = row.row + " " + row.name + (row.district ? "（" + row.district + "）" : "");
              opt.textContent = opt.label;
              list.appendChild(opt);
            });
          });
      }, 150);
    });
  });

  // Review item: 1 = assign to the suggestion, 2 = unrelated, N = next, / = type a unit.
  if (document.body.getAttribute("data-page") === "review-item") {
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) { return; }
      var key = e.key.toLowerCase();
      if (key === "/") {
        var box = document.querySelector("#act-assign input[name=institution]");
        if (box) { e.preventDefault(); box.focus(); }
        return;
      }
      var target = document.querySelector('[data-key="' + key + '"]');
      if (!target) { return; }
      e.preventDefault();
      if (target.tagName === "A") { location.href = target.href; } else { target.form.requestSubmit(target); }
    });
  }
})();
