// A placement plan on the map: the chosen sites (numbered by rank) with their coverage circles,
// and the existing cameras, from the plan's GeoJSON.
(function () {
  "use strict";
  var el = document.getElementById("plan-map");
  if (!el || typeof L === "undefined") return;
  var map = L.map(el);
  if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  map.setView([-6.2, 106.83], 11);
  fetch(el.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
    var bounds = [];
    data.features.forEach(function (f) {
      var ll = [f.geometry.coordinates[1], f.geometry.coordinates[0]], p = f.properties;
      if (p.kind === "camera") {
        L.circleMarker(ll, { radius: 4, color: "#555", fillOpacity: 0.8 }).bindTooltip(p.code).addTo(map);
        return;
      }
      bounds.push(ll);
      L.circle(ll, { radius: data.radius_m, color: p.kind === "request" ? "#0a7" : "#26c", weight: 1, fillOpacity: 0.15 }).addTo(map);
      L.marker(ll, { title: "#" + p.rank }).bindPopup("#" + p.rank + (p.request ? " · " + p.request : "") + " · " + p.site_type).addTo(map);
    });
    if (bounds.length) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 16 });
    el.dataset.loaded = String(bounds.length);
  });
})();
