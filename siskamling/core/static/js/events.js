// Live events for the logged-in user (Server-Sent Events): a short notice, and any health tag of
// that camera on the page updated in place.
(function () {
  "use strict";
  var box = document.getElementById("toasts");
  if (!box || !window.EventSource) return;
  var source = new EventSource("/events/stream");
  function show(title, text, kind) {
    var note = document.createElement("div");
    note.className = "toast " + kind;
    note.setAttribute("role", "status");
    var strong = document.createElement("strong");
    strong.textContent = title;
    note.appendChild(strong);
    note.appendChild(document.createTextNode(" " + text));
    box.appendChild(note);
    setTimeout(function () { note.remove(); }, 15000);
  }
  ["camera.offline", "camera.online", "camera.degraded"].forEach(function (kind) {
    source.addEventListener(kind, function (ev) {
      var data = JSON.parse(ev.data);
      var state = kind.split(".")[1];
      show(box.dataset[state] || kind, data.name + " (" + data.code + ")" + (data.message ? ": " + data.message : ""), state);
      document.querySelectorAll('[data-code="' + data.code + '"] .tag[class*="health-"], #health').forEach(function (tag) {
        if (tag.id === "health" && !location.pathname.endsWith("/" + data.code)) return;
        tag.className = "tag health-" + state;
        tag.textContent = state;
      });
    });
  });
})();
