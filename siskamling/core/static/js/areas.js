// Area browser: draw the areas of this page on a Leaflet map; clicking one opens it.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") return;
  var map = L.map(el, { preferCanvas: false });
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  }
  if (el.dataset.boundaries) map.attributionControl.addAttribution(el.dataset.boundaries);
  var bbox = el.dataset.bbox ? JSON.parse(el.dataset.bbox) : null;
  if (bbox) map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);
  else map.setView([-6.2, 106.83], 11);

  // The area itself, as a dashed outline, so a page without sub-areas (an RT) still shows where it is.
  if (el.dataset.outline) {
    L.geoJSON(JSON.parse(el.dataset.outline), {
      interactive: false, style: { color: "#10324a", weight: 2, dashArray: "6 4", fill: false }
    }).addTo(map);
  }

  function style(feature) {
    var flood = feature.properties.attributes && feature.properties.attributes.floodprone;
    return { color: "#0b5f8a", weight: 1.2, fillColor: flood ? "#e8a33d" : "#4a90b8", fillOpacity: 0.25 };
  }

  fetch(el.dataset.url, { headers: { Accept: "application/geo+json" }, credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
    .then(function (data) {
      var drawn = data.features.filter(function (f) { return f.geometry; });
      el.dataset.features = String(drawn.length);
      if (!drawn.length) { el.dataset.state = "empty"; return; }
      var layer = L.geoJSON({ type: "FeatureCollection", features: drawn }, {
        style: style,
        onEachFeature: function (feature, lyr) {
          var p = feature.properties;
          lyr.bindTooltip(p.name + " (" + p.code + ") · " + p.counts.children + " / " + p.counts.watchers);
          lyr.on("click", function () { window.location.href = "/areas/" + encodeURIComponent(p.code); });
          lyr.on("add", function () {
            var path = lyr.getElement && lyr.getElement();
            if (path) { path.setAttribute("data-code", p.code); path.classList.add("area-shape"); }
          });
        }
      }).addTo(map);
      if (!bbox) map.fitBounds(layer.getBounds());
      el.dataset.state = "ready";
    })
    .catch(function (err) { el.dataset.state = "error"; el.textContent = String(err); });
})();
