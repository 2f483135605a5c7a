/* The console's live pages: the panel is replaced when the server's Server-Sent Events say it
   changed (a new key), and the countdowns and times in state tick every quarter second.
   Plain JavaScript, no library: served from /static, no CDN. */
(function () {
  "use strict";

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    return two(Math.floor(s / 3600)) + ":" + two(Math.floor(s % 3600 / 60)) + ":" + two(s % 60);
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = (Number(el.getAttribute("data-deadline")) - now) / 1000;
      el.textContent = left > 0 ? Math.ceil(left) + " s" : "now";
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = clock((now - Number(el.getAttribute("data-since"))) / 1000);
    });
  }

  function live(panel) {
    var url = panel.getAttribute("data-live");
    if (!url || !window.EventSource) { return; }
    var source = new EventSource(url);
    source.addEventListener("panel", function (event) {
      var data = JSON.parse(event.data);
      if (data.key === panel.getAttribute("data-key")) { return; }
      var active = document.activeElement;
      var typing = active && panel.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT");
      if (typing && active.form && active.form.id === "dispose-form" && data.call === panel.getAttribute("data-call")) {
        return; /* the same call in the same phase: never wipe a note being typed */
      }
      panel.setAttribute("data-key", data.key);
      panel.setAttribute("data-call", data.call || "");
      panel.innerHTML = data.html;
      tick();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("panel");
    if (panel) { live(panel); }
    tick();
    window.setInterval(tick, 250);
  });
}());
