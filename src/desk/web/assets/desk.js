// reviewguard desk: sends the action forms to the JSON API with the
// session's CSRF token, then reloads the page. Text from the server is
// shown with textContent only.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  // "2026-12-07T10:30" from a datetime-local input, as RFC 3339 with this
  // browser's offset.
  function rfc3339(local) {
    var d = new Date(local);
    if (isNaN(d.getTime())) return local;
    var off = -d.getTimezoneOffset();
    var sign = off >= 0 ? "+" : "-";
    var abs = Math.abs(off);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return local.length === 16 ? local + ":00" + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60)
                               : local + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  }

  function body(form) {
    var kind = form.getAttribute("data-kind");
    var f = new FormData(form);
    if (kind === "dismiss") return { reason: f.get("reason") || "" };
    if (kind === "outcome" || kind === "routine") {
      var o = {
        inspected_at: rfc3339(f.get("inspected_at") || ""),
        outcome: parseInt(f.get("outcome"), 10),
        categories: f.getAll("categories"),
        note: f.get("note") || ""
      };
      if (kind === "routine") {
        o.business_id = f.get("business_id") || "";
        o.domain = f.get("domain") || "";
        o.region = f.get("region") || "";
        delete o.categories;
      }
      return o;
    }
    return {};
  }

  function showError(form, text) {
    var box = form.parentNode.querySelector(".form-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }

  // Default the inspection time to now, in local time.
  document.querySelectorAll('input[type="datetime-local"]').forEach(function (i) {
    if (i.value) return;
    var d = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
    i.value = d.toISOString().slice(0, 16);
  });

  document.querySelectorAll("form[data-api]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      if (button) button.disabled = true;
      fetch(form.getAttribute("data-api"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body(form))
      }).then(function (r) {
        if (r.ok) { window.location.reload(); return; }
        return r.json().then(function (j) { showError(form, j.error || String(r.status)); },
                             function () { showError(form, String(r.status)); });
      }, function () {
        showError(form, "network error");
      }).then(function () { if (button) button.disabled = false; });
    });
  });
})();
