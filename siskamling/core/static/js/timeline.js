// Recordings timeline (cameras/play.html): one camera's recorded spans, gaps, motion, health
// changes and evidence holds in a time window, drawn as SVG from timeline.json. Zoom and pan;
// a click (or Enter, or the arrow keys) plays that moment: a seek when it is in the MP4 already
// loaded, otherwise a new range of five minutes clipped to what was recorded.
// Times on screen are WIB (UTC+7, no daylight saving); times sent to the server are UTC.
(function () {
  "use strict";
  var root = document.getElementById("timeline");
  var svg = document.getElementById("timeline-svg");
  var video = document.getElementById("playback");
  if (!root || !svg || !video || !window.fetch) return;

  var NS = "http://www.w3.org/2000/svg";
  var SEC = 1000, MIN = 60 * SEC, HOUR = 60 * MIN, DAY = 24 * HOUR, WIB = 7 * HOUR;
  var CLIP = 5 * MIN, MIN_CLIP = 10 * SEC, STEP = 10 * SEC, SNAP_PX = 4;
  // Layout, in viewBox units (one unit is one CSS pixel: the viewBox follows the element's width).
  var H = 88, HOLD_Y = 3, HOLD_H = 7, BAR_Y = 13, BAR_H = 36, MARK_Y = 52, MARK_H = 8, TICK_Y = 62, LABEL_Y = 80;
  var TICK_STEPS = [MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY,
    2 * DAY];
  var text = root.dataset;
  var status = document.getElementById("timeline-status");
  var forms = [document.getElementById("range-form"), document.getElementById("export-form")];
  var state = {
    zoom: DAY, start: 0, end: 0, width: 1000, data: null, seq: 0,
    cursor: null,   // the playback position shown, ms since the epoch
    loaded: null,   // {start, end, origin, seek}: what the video holds; origin is its currentTime 0
    pending: null   // a keyboard move waiting to load a new range
  };

  // --- time ------------------------------------------------------------------------------------
  function parts(ms) {
    var d = new Date(ms + WIB);
    return {Y: d.getUTCFullYear(), M: d.getUTCMonth() + 1, D: d.getUTCDate(), h: d.getUTCHours(),
      m: d.getUTCMinutes(), s: d.getUTCSeconds()};
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function local(ms) {  // a datetime-local value, Jakarta time, written as the browser writes one
    var p = parts(ms);  // (no ":00" for whole minutes), so every copy of a time reads the same
    return p.Y + "-" + pad(p.M) + "-" + pad(p.D) + "T" + pad(p.h) + ":" + pad(p.m) + (p.s ? ":" + pad(p.s) : "");
  }
  function day(ms) { var p = parts(ms); return pad(p.D) + "/" + pad(p.M); }
  function clock(ms, seconds) {
    var p = parts(ms);
    return pad(p.h) + ":" + pad(p.m) + (seconds ? ":" + pad(p.s) : "");
  }
  function moment(ms) { return day(ms) + " " + clock(ms, true) + " WIB"; }
  function between(a, b) {
    return day(a) + " " + clock(a, true) + " – " + (day(a) === day(b) ? "" : day(b) + " ") + clock(b, true) + " WIB";
  }
  function iso(ms) { return new Date(ms).toISOString(); }
  function parseTime(value) { return value ? Date.parse(value) : null; }

  // --- drawing ---------------------------------------------------------------------------------
  function el(parent, name, attrs, title) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (title) {
      var t = document.createElementNS(NS, "title");
      t.textContent = title;
      node.appendChild(t);
    }
    parent.appendChild(node);
    return node;
  }
  function x(t) { return (t - state.start) / (state.end - state.start) * state.width; }
  function timeAt(clientX) {
    var box = svg.getBoundingClientRect();
    return state.start + (clientX - box.left) / box.width * (state.end - state.start);
  }
  function band(cls, a, b, y, h, title, minWidth) {
    var x0 = Math.max(0, x(a)), x1 = Math.min(state.width, x(b));
    if (x1 < 0 || x0 > state.width) return null;
    var w = Math.max(x1 - x0, minWidth || 0);
    return el(svg, "rect", {"class": cls, x: x0.toFixed(2), y: y, width: w.toFixed(2), height: h}, title);
  }

  function gaps(d, now) {
    // Only where the loaded answer speaks: before it was fetched, or in the future, nothing is known.
    var lo = Math.max(d.start, state.start), hi = Math.min(d.end, state.end, now), out = [], at = lo;
    d.spans.forEach(function (s) {
      if (s[0] > at && at < hi) out.push([at, Math.min(s[0], hi)]);
      at = Math.max(at, s[1]);
    });
    if (at < hi) out.push([at, hi]);
    return out;
  }

  function ticks() {
    var span = state.end - state.start, step = TICK_STEPS[TICK_STEPS.length - 1];
    for (var i = 0; i < TICK_STEPS.length; i++) {
      if (TICK_STEPS[i] / span * state.width >= 70) { step = TICK_STEPS[i]; break; }
    }
    for (var t = Math.ceil((state.start + WIB) / step) * step - WIB; t <= state.end; t += step) {
      var px = x(t), p = parts(t), midnight = p.h === 0 && p.m === 0, cls = midnight ? " tl-day" : "";
      el(svg, "line", {"class": "tl-tick" + cls, x1: px, x2: px, y1: midnight ? BAR_Y : TICK_Y, y2: TICK_Y + 6});
      var anchor = px < 24 ? "start" : px > state.width - 24 ? "end" : "middle";
      var label = el(svg, "text", {"class": "tl-label" + cls, x: px, y: LABEL_Y, "text-anchor": anchor});
      label.textContent = midnight || step >= DAY ? day(t) : clock(t, false);
    }
  }

  function healthMark(e) {
    var px = x(e.start);
    if (px < 0 || px > state.width) return;
    var known = ["online", "offline", "degraded"].indexOf(e.label) >= 0;
    var name = text["health" + e.label.charAt(0).toUpperCase() + e.label.slice(1)] || e.label;
    var g = el(svg, "g", {"class": "tl-health tl-health-" + (known ? e.label : "other")},
      name + " · " + moment(e.start) + (e.message ? " · " + e.message : ""));
    el(g, "line", {"class": "tl-hit", x1: px, x2: px, y1: BAR_Y - 2, y2: MARK_Y + MARK_H});
    el(g, "line", {"class": "tl-mark", x1: px, x2: px, y1: BAR_Y, y2: MARK_Y + MARK_H});
    el(g, "circle", {"class": "tl-mark", cx: px, cy: MARK_Y + MARK_H / 2, r: 3.5});
  }

  function motionMark(e, now) {
    var end = e.end == null ? Math.min(now, state.end) : e.end;
    var title = text.motion + " · " + (e.end == null ? moment(e.start) + " – " + text.ongoing : between(e.start, end)) +
      (e.score ? " · " + Math.round(e.score * 100) + " %" : "");
    band("tl-motion", e.start, end, MARK_Y, MARK_H, title, 2);
  }

  function draw() {
    state.width = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 1000);
    svg.setAttribute("viewBox", "0 0 " + state.width + " " + H);
    while (svg.lastChild) svg.removeChild(svg.lastChild);
    el(svg, "title", {}).textContent = text.title;
    var defs = el(svg, "defs", {});
    var hatch = el(defs, "pattern", {id: "tl-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)"});
    el(hatch, "rect", {"class": "tl-hatch-bg", width: 6, height: 6});
    el(hatch, "line", {"class": "tl-hatch-line", x1: 0, y1: 0, x2: 0, y2: 6});
    var now = Date.now(), d = state.data;
    el(svg, "rect", {"class": "tl-bar", x: 0, y: BAR_Y, width: state.width, height: BAR_H});
    if (now < state.end) band("tl-future", Math.max(now, state.start), state.end, BAR_Y, BAR_H, null);
    if (d) {
      gaps(d, now).forEach(function (g) { band("tl-gap", g[0], g[1], BAR_Y, BAR_H, text.gap + " · " + between(g[0], g[1])); });
      d.spans.forEach(function (s) { band("tl-span", s[0], s[1], BAR_Y, BAR_H, text.recorded + " · " + between(s[0], s[1]), 1); });
      d.holds.forEach(function (h) {
        band("tl-hold", h.start, h.end, HOLD_Y, HOLD_H, text.hold + " · " + between(h.start, h.end) +
          (h.reason ? " · " + h.reason : ""), 2);
      });
      d.events.forEach(function (e) { if (e.kind === "health") healthMark(e); else motionMark(e, now); });
      if (!d.spans.length && d.start <= state.start && d.end >= state.end) {
        var empty = el(svg, "text", {"class": "tl-empty", x: state.width / 2, y: BAR_Y + BAR_H / 2 + 4,
          "text-anchor": "middle"});
        empty.textContent = text.empty;
      }
    }
    if (state.loaded) band("tl-loaded", state.loaded.start, state.loaded.end, BAR_Y + 1, BAR_H - 2, null, 2);
    ticks();
    var cursor = el(svg, "g", {"class": "tl-cursor", id: "timeline-cursor"});
    el(cursor, "line", {x1: 0, x2: 0, y1: 0, y2: TICK_Y + 6});
    el(cursor, "path", {d: "M-5 0 L5 0 L0 6 Z"});
    moveCursor(true);
  }

  function moveCursor(announce) {
    var cursor = document.getElementById("timeline-cursor");
    var t = state.cursor, inside = t != null && t >= state.start && t <= state.end;
    if (cursor) {
      cursor.setAttribute("visibility", inside ? "visible" : "hidden");
      if (inside) cursor.setAttribute("transform", "translate(" + x(t).toFixed(2) + " 0)");
    }
    if (announce) {  // not on every timeupdate: a screen reader would read each one
      svg.setAttribute("aria-valuemin", Math.round(state.start / SEC));
      svg.setAttribute("aria-valuemax", Math.round(state.end / SEC));
      svg.setAttribute("aria-valuenow", Math.round((inside ? t : state.start) / SEC));
      svg.setAttribute("aria-valuetext", inside ? moment(t) : between(state.start, state.end));
    }
  }

  function say(message) { if (status) status.textContent = message || ""; }

  function loading(busy, outcome) {
    svg.setAttribute("aria-busy", busy ? "true" : "false");
    root.dataset.state = busy ? "loading" : outcome || "ready";
  }

  // --- the window ------------------------------------------------------------------------------
  function show(start, end) {
    state.start = start;
    state.end = end;
    draw();  // the previous answer stays drawn (clipped) until the new one arrives
    var seq = ++state.seq;
    var url = text.src + "?" + new URLSearchParams({start: iso(start), end: iso(end)});
    loading(true);
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (body) {
        if (seq !== state.seq) return;
        state.data = {
          start: parseTime(body.start), end: parseTime(body.end),
          spans: body.spans.map(function (s) { return [parseTime(s[0]), parseTime(s[1])]; }),
          events: body.events.map(function (e) {
            return {kind: e.kind, label: e.label, start: parseTime(e.start), end: parseTime(e.end), score: e.score, message: e.message};
          }),
          holds: body.holds.map(function (h) { return {start: parseTime(h.start), end: parseTime(h.end), reason: h.reason}; })
        };
        if (status && status.textContent === text.failed) say("");
        loading(false);
        draw();
      })
      .catch(function () { if (seq === state.seq) { loading(false, "failed"); say(text.failed); } });
  }

  // Around ``t``: ``ahead`` of the zoom after it, but no more than a sliver past now.
  function place(t, ahead) {
    var end = Math.min(t + state.zoom * ahead, Math.max(Date.now(), t) + state.zoom / 50);
    show(end - state.zoom, end);
  }

  function pan(direction) {
    var shift = state.zoom / 2 * direction, latest = Date.now() + state.zoom / 50;
    var end = direction > 0 ? Math.max(state.end, Math.min(state.end + shift, latest)) : state.end + shift;
    if (end !== state.end) show(end - state.zoom, end);
  }

  function zoom(hours) {
    var t = state.cursor != null && state.cursor >= state.start && state.cursor <= state.end
      ? state.cursor : (state.start + state.end) / 2;
    state.zoom = hours * HOUR;
    root.querySelectorAll("[data-zoom]").forEach(function (b) {
      b.setAttribute("aria-pressed", Number(b.dataset.zoom) === hours ? "true" : "false");
    });
    place(t, 0.5);
  }

  // --- playback --------------------------------------------------------------------------------
  function inLoaded(t) {
    var l = state.loaded;
    return l && video.readyState >= 1 && t >= l.origin && t < l.end;
  }

  // [start, end, seek to] for a moment: into the first span that ends after it (a click in a gap
  // plays what was recorded next), five minutes at most, never past what was recorded.
  function rangeFrom(t) {
    var spans = state.data ? state.data.spans : [], snap = SNAP_PX * (state.end - state.start) / state.width;
    var i = 0;
    while (i < spans.length && spans[i][1] <= t - snap) i++;
    if (i === spans.length) return null;
    var first = spans[i], start = Math.min(Math.max(t, first[0]), first[1]), stop = start + CLIP, last = first;
    for (; i < spans.length && spans[i][0] < stop; i++) last = spans[i];
    // A span cut by the window's end may go on after it: ask for the whole clip.
    var end = last[1] >= state.data.end ? Math.min(stop, Date.now()) : Math.min(stop, last[1]);
    if (end - start < MIN_CLIP) start = Math.max(first[0], end - MIN_CLIP);
    if (end <= start) return null;
    return [start, end, Math.min(Math.max(t, start), end)];
  }

  function setFields(start, end) {
    forms.forEach(function (form) {
      if (!form) return;
      form.elements.start.value = local(start);
      form.elements.end.value = local(end);
    });
    if (window.history && history.replaceState) {
      history.replaceState(null, "", location.pathname + "?" + new URLSearchParams({start: local(start), end: local(end)}));
    }
  }

  function playing(t) { say(text.playing.replace("%(time)s", moment(t))); }

  function resume() {
    if (video.paused) { var p = video.play(); if (p && p.catch) p.catch(function () {}); }
  }

  function seek(t) {
    video.currentTime = Math.max(0, (t - state.loaded.origin) / SEC);
    resume();
    playing(t);
  }

  function load(start, end, target) {
    state.loaded = {start: start, end: end, origin: start, seek: target - start > SEC ? target : null};
    video.src = text.playback + "?" + new URLSearchParams({start: iso(start), end: iso(end)});
    resume();
    setFields(start, end);
    state.cursor = target;
    draw();
    playing(target);
  }

  function go(t) {
    state.cursor = t;
    if (inLoaded(t)) { moveCursor(true); seek(t); return; }
    var range = rangeFrom(t);
    if (!range) { moveCursor(true); say(text.nothing); return; }
    load(range[0], range[1], range[2]);
  }

  // The MP4 opens on the keyframe at or before its start, so its time 0 may lie a little before
  // the start asked for. Its last frame is at the end asked for (clipped to what was recorded), so
  // end - duration is where it opens; bounded, in case the end fell in a gap after all.
  function metadata() {
    var l = state.loaded;
    if (!l) return;
    if (isFinite(video.duration) && video.duration > 0) {
      l.origin = Math.min(l.start, Math.max(l.start - 20 * SEC, l.end - video.duration * SEC));
    }
    if (l.seek != null) { video.currentTime = Math.max(0, (l.seek - l.origin) / SEC); l.seek = null; }
  }

  video.addEventListener("loadedmetadata", metadata);
  video.addEventListener("timeupdate", function () {
    var l = state.loaded;
    if (!l || l.seek != null || state.pending || video.readyState < 1) return;
    state.cursor = l.origin + video.currentTime * SEC;
    if (state.cursor > state.end && !video.paused) place(state.cursor, 0.5);
    else moveCursor(false);
  });
  video.addEventListener("pause", function () { moveCursor(true); });

  // --- input -----------------------------------------------------------------------------------
  svg.addEventListener("click", function (ev) { go(timeAt(ev.clientX)); });
  svg.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      ev.preventDefault();
      var base = state.cursor != null ? state.cursor : (state.start + state.end) / 2;
      var t = base + (ev.key === "ArrowLeft" ? -1 : 1) * (ev.shiftKey ? MIN : STEP);
      state.cursor = t;
      if (t < state.start || t > state.end) place(t, 0.5); else moveCursor(true);
      clearTimeout(state.pending);
      state.pending = null;
      if (inLoaded(t)) { seek(t); return; }
      // Held down, the key repeats: load once it is let go of, not for every step.
      state.pending = setTimeout(function () { state.pending = null; go(state.cursor); }, 500);
    } else if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      if (state.cursor != null) go(state.cursor);
    }
  });
  root.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () { zoom(Number(b.dataset.zoom)); });
  });
  root.querySelectorAll("[data-pan]").forEach(function (b) {
    b.addEventListener("click", function () { pan(Number(b.dataset.pan)); });
  });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(draw, 150);
  });

  // --- start -----------------------------------------------------------------------------------
  var loadedStart = parseTime(text.loadedStart), loadedEnd = parseTime(text.loadedEnd);
  if (video.getAttribute("src") && loadedStart != null && loadedEnd != null) {
    state.loaded = {start: loadedStart, end: loadedEnd, origin: loadedStart, seek: null};
    state.cursor = loadedStart;
    if (video.readyState >= 1) metadata();
  }
  place(state.loaded ? state.loaded.end : Date.now(), 0.25);
})();
