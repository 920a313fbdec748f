// Live events for the logged-in user (Server-Sent Events): a short notice, and any health tag of
// that camera on the page updated in place.
(function () {
  "use strict";
  var box = document.getElementById("toasts");
  if (!box || !window.EventSource) return;
  var source = new EventSource("/events/stream");
  function show(title, text, kind, href, sticky) {
    var note = document.createElement(href ? "a" : "div");
    if (href) note.href = href;
    note.className = "toast " + kind;
    note.setAttribute("role", sticky ? "alert" : "status");
    var strong = document.createElement("strong");
    strong.textContent = title;
    note.appendChild(strong);
    note.appendChild(document.createTextNode(" " + text));
    box.appendChild(note);
    // An emergency stays until someone opens it; other notices fade after 15 s.
    if (!sticky) setTimeout(function () { note.remove(); }, 15000);
  }
  ["report.new", "report.emergency"].forEach(function (kind) {
    source.addEventListener(kind, function (ev) {
      var data = JSON.parse(ev.data), emergency = kind === "report.emergency";
      show(emergency ? box.dataset.emergency : box.dataset.report, data.ticket + " · " + data.category + " · " + data.area,
           emergency ? "offline emergency" : "online", "/reports/" + encodeURIComponent(data.ticket), emergency);
    });
  });
  // Deadlines: a reminder to whoever holds the report, the breach to the unit's head and operators.
  ["sla.reminder", "sla.breached"].forEach(function (kind) {
    source.addEventListener(kind, function (ev) {
      var data = JSON.parse(ev.data), breached = kind === "sla.breached";
      var due = new Date(data.due_at).toLocaleString(document.documentElement.lang || undefined,
                                                      {dateStyle: "medium", timeStyle: "short"});
      show(breached ? box.dataset.breached : box.dataset.reminder, data.ticket + " · " + due,
           breached ? "offline" : "degraded", "/reports/" + encodeURIComponent(data.ticket), breached);
    });
  });
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
