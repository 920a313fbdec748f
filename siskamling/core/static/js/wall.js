// Camera wall: refresh every tile's snapshot every 2 s (a new URL each time, so no cache).
(function () {
  "use strict";
  var tiles = document.querySelectorAll("#wall img[data-src]");
  function refresh() {
    tiles.forEach(function (img) {
      var next = new Image();
      next.onload = function () { img.src = next.src; img.closest(".tile").dataset.stale = "false"; };
      next.onerror = function () { img.closest(".tile").dataset.stale = "true"; };
      next.src = img.dataset.src + "?t=" + Date.now();
    });
  }
  if (tiles.length) setInterval(refresh, 2000);
})();
