// The report form (and the camera request form): place a pin (tap the map, or the device's
// location), show the kelurahan/RW it falls in before sending, and offer open reports (requests)
// like this one nearby to support instead. The form's data-similar names the address asked.
(function () {
  "use strict";
  var form = document.getElementById("report-form") || document.getElementById("request-form");
  if (!form) return;
  var lat = document.getElementById("lat"), lon = document.getElementById("lon");
  var place = document.getElementById("place"), category = document.getElementById("category");
  var el = document.getElementById("pin-map"), marker = null, map = null;

  if (el && typeof L !== "undefined") {
    map = L.map(el);
    if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    map.setView([-6.2, 106.83], 11);
    map.on("click", function (ev) { setPoint(ev.latlng.lat, ev.latlng.lng, false); });
  }

  function setPoint(a, b, pan) {
    lat.value = a.toFixed(6); lon.value = b.toFixed(6);
    if (map) {
      if (!marker) {
        marker = L.marker([a, b], { draggable: true }).addTo(map);
        marker.on("dragend", function () { var p = marker.getLatLng(); setPoint(p.lat, p.lng, false); });
      } else marker.setLatLng([a, b]);
      if (pan) map.setView([a, b], 17);
    }
    changed();
  }

  var timer = null, lookups = 0;
  function changed() { clearTimeout(timer); timer = setTimeout(lookup, 250); }

  function lookup() {
    var a = parseFloat(lat.value), b = parseFloat(lon.value);
    if (!isFinite(a) || !isFinite(b)) { place.textContent = ""; similar(); return; }
    place.textContent = place.dataset.checking; place.dataset.state = "checking";
    var asked = ++lookups;  // only the answer for the latest pin is shown
    fetch("/api/v1/locate?lat=" + a + "&lon=" + b, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (asked !== lookups) return;
        if (!d.levels || d.status === "outside") { place.textContent = place.dataset.outside; place.dataset.state = "outside"; return; }
        // Deepest first: RT, RW, kelurahan… shown as "RW 005, Kelurahan X".
        place.textContent = d.levels.filter(function (l) { return l.level !== "provinsi" && l.level !== "kota"; })
          .map(function (l) { return l.name; }).join(", ");
        place.dataset.state = "inside";
      })
      .catch(function () { place.textContent = ""; place.dataset.state = "error"; });
    similar();
  }

  function similar() {
    var a = parseFloat(lat.value), b = parseFloat(lon.value);
    // No category (where the form has one) or no position: take back what was offered before.
    if ((category && !category.value) || !isFinite(a) || !isFinite(b)) { document.getElementById("similar").innerHTML = ""; return; }
    if (typeof htmx === "undefined") return;
    var url = form.dataset.similar || "/lapor/serupa";
    htmx.ajax("GET", url + "?lat=" + a + "&lon=" + b + (category ? "&category=" + encodeURIComponent(category.value) : ""),
              { target: "#similar", swap: "innerHTML" });
  }

  // Typed coordinates move the pin too (and the map to it), once both are numbers.
  function typed() {
    var a = parseFloat(lat.value), b = parseFloat(lon.value);
    if (isFinite(a) && isFinite(b) && Math.abs(a) <= 90 && Math.abs(b) <= 180) setPoint(a, b, true); else changed();
  }
  lat.addEventListener("change", typed); lon.addEventListener("change", typed);
  if (category) category.addEventListener("change", similar);
  document.getElementById("geolocate").addEventListener("click", function (ev) {
    var button = ev.currentTarget;
    if (!navigator.geolocation) { place.textContent = button.dataset.denied; return; }
    navigator.geolocation.getCurrentPosition(function (pos) {
      setPoint(pos.coords.latitude, pos.coords.longitude, true);
    }, function () { place.textContent = button.dataset.denied; }, { enableHighAccuracy: true, timeout: 10000 });
  });
  // One press sends once: a second press while the first is on its way would file it twice.
  form.addEventListener("submit", function () {
    var send = document.getElementById("send");
    if (send) setTimeout(function () { send.disabled = true; }, 0);  // after the browser took the form
  });
  if (lat.value && lon.value) setPoint(parseFloat(lat.value), parseFloat(lon.value), true);
})();
