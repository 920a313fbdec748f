// Live video: fragmented MP4 over a WebSocket into Media Source Extensions, kept near the live edge.
(function () {
  "use strict";
  var video = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!video || !status) return;
  function say(state, text) { video.dataset.state = state; status.textContent = text || ""; }
  if (!window.MediaSource) {
    // No Media Source Extensions (older iPhones, some TVs): the browser's own HLS player, if any.
    if (video.dataset.hls && video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = video.dataset.hls;
      say("hls", status.dataset.hlsNote);
      video.addEventListener("error", function () { say("unsupported", status.dataset.ended); });
      var p = video.play(); if (p && p.catch) p.catch(function () {});
    } else {
      say("unsupported", status.dataset.unsupported);
    }
    return;
  }
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + video.dataset.ws;
  var retry = 1000;

  function start() {
    var ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    var buffer = null, queue = [];

    function pump() {
      if (!buffer || buffer.updating || !queue.length) return;
      try { buffer.appendBuffer(queue.shift()); } catch (e) { ws.close(); }
    }
    function afterAppend() {
      var ranges = video.buffered;
      if (ranges.length) {
        var end = ranges.end(ranges.length - 1);
        if (end - video.currentTime > 1.5) video.currentTime = Math.max(end - 0.3, 0);  // stay live
        if (video.currentTime - ranges.start(0) > 30) { buffer.remove(0, video.currentTime - 10); return; }
      }
      if (video.paused) { var p = video.play(); if (p && p.catch) p.catch(function () {}); }
      pump();
    }
    function open(codec) {
      var type = 'video/mp4; codecs="' + codec + '"';
      if (!MediaSource.isTypeSupported(type)) { say("unsupported", status.dataset.unsupported); ws.close(); return; }
      var source = new MediaSource();
      video.src = URL.createObjectURL(source);
      source.addEventListener("sourceopen", function () {
        buffer = source.addSourceBuffer(type);
        buffer.mode = "segments";
        buffer.addEventListener("updateend", afterAppend);
        pump();
      });
      say("live", "");
      retry = 1000;
    }
    ws.onmessage = function (ev) {
      if (typeof ev.data !== "string") { queue.push(ev.data); pump(); return; }
      var info = JSON.parse(ev.data);
      if (info.status === "waiting") say("waiting", status.dataset.waiting);
      else if (info.codec && !buffer) open(info.codec);
    };
    ws.onclose = function (ev) {
      say("closed-" + ev.code, status.dataset.ended);
      if (ev.code === 4000 || ev.code === 1006 || ev.code === 4503) {  // restart, network, not yet video
        setTimeout(start, retry);
        retry = Math.min(retry * 2, 15000);
      }
    };
  }
  start();
})();
