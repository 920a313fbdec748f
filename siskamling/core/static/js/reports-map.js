// Maps of reports: the public map (coarse positions from /laporan/peta.geojson) and the pin on a
// report's staff page.
(function () {
  "use strict";
  if (typeof L === "undefined") return;
  function base(el) {
    var map = L.map(el);
    if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    return map;
  }
  var pub = document.getElementById("reports-map");
  if (pub) {
    var map = base(pub);
    map.setView([-6.2, 106.83], 11);
    fetch(pub.dataset.url).then(function (r) { return r.json(); }).then(function (data) {
      var layer = L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 6, weight: 1, color: "#10324a",
            fillColor: f.properties.open ? "#e07b00" : "#1e8a3a", fillOpacity: 0.8 });
        },
        onEachFeature: function (f, lyr) {
          var p = f.properties;
          lyr.bindTooltip(p.ticket + " · " + p.category);
          lyr.on("click", function () { window.location.href = "/laporan/" + encodeURIComponent(p.ticket); });
        }
      }).addTo(map);
      pub.dataset.features = String(data.features.length);
      if (data.features.length) map.fitBounds(layer.getBounds(), { maxZoom: 16, padding: [12, 12], animate: false });  // "ready" = final positions
      pub.dataset.state = "ready";
    }).catch(function (err) { pub.dataset.state = "error"; pub.title = String(err); });
  }
  var one = document.getElementById("report-map");
  if (one) {
    var m = base(one), at = [parseFloat(one.dataset.lat), parseFloat(one.dataset.lon)];
    m.setView(at, 17);
    L.marker(at).addTo(m);
  }
})();
