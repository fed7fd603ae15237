// faultline timeline: the model and drawing shared by the dashboard and
// "faultline report". Plain JavaScript, no dependencies, no network.
//
// A Model takes control API events ({id, proxy, event: {seq, time, kind,
// conn, ...}}) in order and keeps one lane per downstream connection (per
// proxy), its lifecycle marks, its fault spans and its byte counts, plus the
// run's counters. draw() renders a window of lanes into an element.
(function (root) {
  "use strict";

  // The marks' labels, by event kind.
  var LABELS = {
    "accepted": "accepted", "dialed": "dialed", "dial-failed": "dial failed",
    "borrowed": "borrowed", "retried": "retried", "half-closed": "half-closed",
    "reset": "reset", "interrupted": "interrupted", "released": "released",
    "discarded": "discarded", "closed": "closed", "fault-applied": "fault applied",
    "fault-fired": "fault fired", "fault-cleared": "fault cleared"
  };

  function Model(opts) {
    opts = opts || {};
    this.maxLanes = opts.maxLanes || 0; // 0: keep every lane
    this.lanes = new Map(); // key -> lane
    this.t0 = null; // ms of the first event
    this.tEnd = null; // ms of the newest event
    this.counters = { events: 0, conns: 0, open: 0, faultsFired: 0, discards: {}, bytesUp: 0, bytesDown: 0, byKind: {} };
  }

  function laneKey(proxy, conn, upstream) {
    return (proxy || "") + "/" + (conn ? "c" + conn : "u" + (upstream || 0));
  }

  Model.prototype.lane = function (proxy, ev, t) {
    var key = laneKey(proxy, ev.conn, ev.upstream);
    var l = this.lanes.get(key);
    if (!l) {
      l = {
        key: key, proxy: proxy || "", conn: ev.conn || 0, upstream: ev.upstream || 0,
        start: t, end: null, marks: [], spans: [], open: {}, bytesUp: 0, bytesDown: 0,
        closedBy: "", how: "", reason: "", reused: false, violations: [], events: []
      };
      this.lanes.set(key, l);
      if (ev.conn) { this.counters.conns++; this.counters.open++; }
      this.trim();
    }
    return l;
  };

  // trim drops the oldest closed lanes beyond maxLanes (then the oldest).
  Model.prototype.trim = function () {
    if (!this.maxLanes || this.lanes.size <= this.maxLanes) return;
    var over = this.lanes.size - this.maxLanes;
    for (var it = this.lanes.values(), x = it.next(); !x.done && over > 0; x = it.next()) {
      if (x.value.end !== null) { this.lanes.delete(x.value.key); over--; }
    }
    for (it = this.lanes.values(), x = it.next(); !x.done && over > 0; x = it.next()) {
      this.lanes.delete(x.value.key); over--;
    }
  };

  // add records one control API event; it returns the lane it went to.
  Model.prototype.add = function (ae) {
    var ev = ae.event || ae; // bare proxy events too
    var t = Date.parse(ev.time);
    if (isNaN(t)) t = this.tEnd === null ? 0 : this.tEnd;
    if (this.t0 === null || t < this.t0) this.t0 = t;
    if (this.tEnd === null || t > this.tEnd) this.tEnd = t;
    var c = this.counters;
    c.events++;
    c.byKind[ev.kind] = (c.byKind[ev.kind] || 0) + 1;
    var l = this.lane(ae.proxy, ev, t);
    if (!l.upstream && ev.upstream) l.upstream = ev.upstream;
    l.events.push(ae);
    if (l.events.length > 200) l.events.shift(); // bounded detail
    var mark = { t: t, kind: ev.kind, label: LABELS[ev.kind] || ev.kind, id: ae.id || ev.seq, seq: ev.seq, ev: ev };
    switch (ev.kind) {
      case "borrowed":
        l.reused = !!ev.reused;
        mark.label = ev.reused ? "borrowed (reused, idle " + (ev.idle || "0s") + ")" : "borrowed (fresh)";
        break;
      case "half-closed":
        mark.label = "half-closed " + (ev.dir || "") + (ev.by ? " by " + ev.by : "");
        break;
      case "interrupted":
        mark.label = "interrupted, loops stopped in " + (ev.took || "0s");
        break;
      case "discarded":
        c.discards[ev.reason || "?"] = (c.discards[ev.reason || "?"] || 0) + 1;
        l.reason = ev.reason || "";
        mark.label = "discarded: " + (ev.reason || "?");
        break;
      case "retried":
        mark.label = "retried: " + (ev.reason || "?");
        break;
      case "fault-applied":
        var sp = { name: ev.fault, kind: ev.fault_kind || "", dir: ev.dir || "", start: t, end: null, fired: 0 };
        l.open[ev.fault + "/" + sp.dir] = sp;
        l.spans.push(sp);
        mark.label = "fault " + ev.fault + " applied" + (ev.dir ? " (" + ev.dir + ")" : "");
        break;
      case "fault-fired":
        c.faultsFired++;
        var fs = l.open[ev.fault + "/" + (ev.dir || "")] || l.open[ev.fault + "/"];
        if (fs) fs.fired++;
        mark.label = "fault " + ev.fault + " fired" + (ev.dir ? " (" + ev.dir + ")" : "");
        break;
      case "fault-cleared":
        for (var k2 in l.open) {
          var o = l.open[k2];
          if (o.name === ev.fault && (!ev.dir || !o.dir || o.dir === ev.dir)) { o.end = t; delete l.open[k2]; }
        }
        mark.label = "fault " + ev.fault + " cleared";
        break;
      case "closed":
        l.end = t;
        l.closedBy = ev.by || "";
        l.how = ev.how || "";
        l.bytesUp = ev.bytes_up || 0;
        l.bytesDown = ev.bytes_down || 0;
        c.bytesUp += l.bytesUp;
        c.bytesDown += l.bytesDown;
        if (l.conn) c.open = Math.max(0, c.open - 1);
        for (var k in l.open) { l.open[k].end = t; }
        l.open = {};
        mark.label = "closed by " + (ev.by || "?") + (ev.how ? " (" + ev.how + ")" : "") +
          ", " + fmtBytes(l.bytesUp) + " up, " + fmtBytes(l.bytesDown) + " down";
        break;
    }
    if (ev.err) mark.label += ": " + ev.err;
    if (ev.bytes_up > l.bytesUp) l.bytesUp = ev.bytes_up;
    if (ev.bytes_down > l.bytesDown) l.bytesDown = ev.bytes_down;
    l.marks.push(mark);
    if (l.marks.length > 200) l.marks.splice(1, 1); // keep the first (accepted)
    return l;
  };

  // mark records a violation: {proxy, check, what, events: [{seq, conn, upstream}]}.
  // It is marked on the lane of each connection its events name.
  Model.prototype.violation = function (v) {
    var seen = {};
    for (var i = 0; i < (v.events || []).length; i++) {
      var ev = v.events[i];
      var l = this.lanes.get(laneKey(v.proxy, ev.conn, ev.upstream));
      if (!l || seen[l.key]) continue;
      seen[l.key] = true;
      l.violations.push({ t: Date.parse(ev.time), what: v.what, check: v.check, seq: ev.seq });
    }
  };

  // liveBytes sets a lane's byte counts from the connections API.
  Model.prototype.liveBytes = function (proxy, conn, up, down) {
    var l = this.lanes.get(laneKey(proxy, conn, 0));
    if (l && l.end === null) { l.bytesUp = up; l.bytesDown = down; }
  };

  function fmtBytes(n) {
    n = n || 0;
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function fmtMs(ms) {
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function laneName(l) {
    var who = l.conn ? "conn " + l.conn : "upstream " + l.upstream;
    return (l.proxy ? l.proxy + " · " : "") + who;
  }

  // draw renders the lanes into root, oldest first, at most opts.maxLanes of
  // them (the newest, and any with a violation) of those opts.filter keeps, on a shared axis from
  // opts.from to opts.to (ms; the model's span by default), its ticks
  // labelled by opts.tickLabel(t) (default: time since the first event).
  // opts.onSelect(lane) is called on a click.
  function draw(root, model, opts) {
    opts = opts || {};
    var lanes = Array.from(model.lanes.values());
    if (opts.filter) lanes = lanes.filter(opts.filter);
    var total = lanes.length;
    if (opts.maxLanes && lanes.length > opts.maxLanes) {
      // The newest lanes, and every lane with a violation whatever its age.
      var room = opts.maxLanes - lanes.filter(function (l) { return l.violations.length > 0; }).length;
      lanes = lanes.filter(function (l, i) { return l.violations.length > 0 || i >= total - room; });
    }
    var from = opts.from !== undefined ? opts.from : (model.t0 || 0);
    var to = opts.to !== undefined ? opts.to : (model.tEnd || from);
    if (to <= from) to = from + 1;
    var span = to - from;
    function pos(t) { return Math.max(0, Math.min(100, (t - from) / span * 100)); }
    var frag = document.createDocumentFragment();
    var axis = el("div", "tl-row tl-axis");
    axis.appendChild(el("div", "tl-label", total > lanes.length ? "newest " + lanes.length + " of " + total : lanes.length + " lanes"));
    var scale = el("div", "tl-track");
    for (var i = 0; i <= 4; i++) {
      var tt = from + span * i / 4;
      var tick = el("span", "tl-tick", opts.tickLabel ? opts.tickLabel(tt) : "+" + fmtMs(tt - (model.t0 || from)));
      tick.style.left = (i * 25) + "%";
      scale.appendChild(tick);
    }
    axis.appendChild(scale);
    frag.appendChild(axis);
    lanes.forEach(function (l) {
      var row = el("div", "tl-row" + (l.violations.length ? " tl-bad" : "") + (l.end === null ? " tl-live" : ""));
      row.dataset.lane = l.key;
      if (opts.selected === l.key) row.className += " tl-selected";
      var label = el("div", "tl-label", laneName(l));
      label.title = laneName(l) + (l.upstream ? ", upstream " + l.upstream : "") +
        ", " + fmtBytes(l.bytesUp) + " up, " + fmtBytes(l.bytesDown) + " down";
      row.appendChild(label);
      var track = el("div", "tl-track");
      var end = l.end === null ? to : l.end;
      var bar = el("div", "tl-bar" + (l.end === null ? " open" : ""));
      bar.style.left = pos(l.start) + "%";
      bar.style.width = Math.max(0.3, pos(end) - pos(l.start)) + "%";
      track.appendChild(bar);
      l.spans.forEach(function (s) {
        var e2 = s.end === null ? end : s.end;
        var f = el("div", "tl-fault");
        f.style.left = pos(s.start) + "%";
        f.style.width = Math.max(0.3, pos(e2) - pos(s.start)) + "%";
        f.title = "fault " + s.name + (s.kind ? " (" + s.kind + ")" : "") + (s.dir ? " " + s.dir : "") + ", fired " + s.fired + "×";
        f.dataset.fault = s.name;
        track.appendChild(f);
      });
      l.marks.forEach(function (m) {
        var d = el("div", "tl-mark k-" + m.kind);
        d.style.left = pos(m.t) + "%";
        d.title = "+" + fmtMs(m.t - (model.t0 || 0)) + " #" + m.seq + " " + m.label;
        d.dataset.kind = m.kind;
        track.appendChild(d);
      });
      l.violations.forEach(function (v) {
        var d = el("div", "tl-violation", "!");
        d.style.left = pos(isNaN(v.t) ? end : v.t) + "%";
        d.title = v.check + ": " + v.what;
        track.appendChild(d);
      });
      row.appendChild(track);
      if (opts.onSelect) row.addEventListener("click", function () { opts.onSelect(l); });
      frag.appendChild(row);
    });
    root.replaceChildren(frag);
  }

  // detail renders one lane's events and numbers into root.
  function detail(root, model, l) {
    root.replaceChildren();
    if (!l) return;
    root.appendChild(el("h3", "", laneName(l)));
    var facts = [
      ["upstream", l.upstream ? String(l.upstream) + (l.reused ? " (reused)" : "") : "-"],
      ["opened", "+" + fmtMs(l.start - model.t0)],
      ["lasted", l.end === null ? "open" : fmtMs(l.end - l.start)],
      ["bytes", fmtBytes(l.bytesUp) + " up, " + fmtBytes(l.bytesDown) + " down"],
      ["closed", l.end === null ? "-" : "by " + (l.closedBy || "?") + (l.how ? " (" + l.how + ")" : "")],
      ["discarded", l.reason || "-"]
    ];
    var dl = el("dl", "facts");
    facts.forEach(function (f) { dl.appendChild(el("dt", "", f[0])); dl.appendChild(el("dd", "", f[1])); });
    root.appendChild(dl);
    l.violations.forEach(function (v) { root.appendChild(el("p", "violation-text", v.check + ": " + v.what)); });
    var ol = el("ol", "events");
    l.marks.forEach(function (m) {
      ol.appendChild(el("li", "k-" + m.kind, "+" + fmtMs(m.t - model.t0) + "  #" + m.seq + "  " + m.label));
    });
    root.appendChild(ol);
  }

  root.FaultlineTimeline = { Model: Model, draw: draw, detail: detail, fmtBytes: fmtBytes, fmtMs: fmtMs, el: el, laneName: laneName, laneKey: laneKey };
  if (typeof module !== "undefined" && module.exports) module.exports = root.FaultlineTimeline;
})(typeof window !== "undefined" ? window : globalThis);
