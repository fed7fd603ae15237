// faultline report: draws the run embedded in the page (#run) with the
// shared timeline. No network access.
(function () {
  "use strict";
  var T = window.FaultlineTimeline;
  var run = JSON.parse(document.getElementById("run").textContent);
  var model = new T.Model();
  run.events.forEach(function (e) { model.add(e); });
  (run.violations || []).forEach(function (v) { model.violation(v); });
  var selected = null;
  // MAX_LANES bounds the lanes drawn and the rows listed (the newest, and
  // every one with a violation), so that a long run's report still opens.
  var MAX_LANES = 3000;

  function byId(id) { return document.getElementById(id); }
  function card(n, what, bad) {
    var c = T.el("div", "card" + (bad ? " bad" : ""));
    c.appendChild(T.el("b", "", String(n)));
    c.appendChild(T.el("span", "", what));
    return c;
  }

  var c = model.counters;
  var cards = byId("summary");
  cards.appendChild(card(c.conns, "connections"));
  cards.appendChild(card(c.events, "events"));
  cards.appendChild(card(c.faultsFired, "faults fired"));
  var discards = Object.keys(c.discards).reduce(function (n, k) { return n + c.discards[k]; }, 0);
  cards.appendChild(card(discards, "discarded"));
  cards.appendChild(card(T.fmtBytes(c.bytesUp), "bytes up"));
  cards.appendChild(card(T.fmtBytes(c.bytesDown), "bytes down"));
  var nv = (run.violations || []).length;
  cards.appendChild(card(nv, nv === 1 ? "violation" : "violations", nv > 0));

  var dt = byId("discards");
  var reasons = Object.keys(c.discards).sort();
  if (reasons.length === 0) dt.appendChild(T.el("p", "muted", "No upstream connection was discarded."));
  else {
    var tb = T.el("table");
    var head = T.el("tr");
    head.appendChild(T.el("th", "", "reason"));
    head.appendChild(T.el("th", "num", "discarded"));
    tb.appendChild(head);
    reasons.forEach(function (r) {
      var tr = T.el("tr");
      tr.appendChild(T.el("td", "", r));
      tr.appendChild(T.el("td", "num", String(c.discards[r])));
      tb.appendChild(tr);
    });
    dt.appendChild(tb);
  }

  var vl = byId("violations");
  if (nv === 0) vl.appendChild(T.el("p", "ok", "The checks found nothing wrong (" + run.checks.join(", ") + ")."));
  else {
    var ul = T.el("ul", "violations");
    run.violations.forEach(function (v) {
      var li = T.el("li", "", v.check + ": " + v.what);
      li.addEventListener("click", function () {
        var ev = (v.events || [])[0];
        if (ev) select(model.lanes.get(T.laneKey(v.proxy, ev.conn, ev.upstream)));
      });
      ul.appendChild(li);
    });
    vl.appendChild(ul);
  }

  function select(l) {
    selected = l || null;
    redraw();
    T.detail(byId("detail"), model, selected);
    var row = selected && document.querySelector('[data-lane="' + CSS.escape(selected.key) + '"]');
    if (row) row.scrollIntoView({ block: "nearest" });
  }
  function redraw() {
    T.draw(byId("timeline"), model, { onSelect: select, selected: selected && selected.key, maxLanes: MAX_LANES });
  }
  redraw();
  byId("detail").appendChild(T.el("p", "muted", "Click a lane for its events."));

  // Per-connection table.
  var rows = byId("conns");
  var all = Array.from(model.lanes.values());
  if (all.length > MAX_LANES) {
    var note = T.el("tr");
    note.appendChild(T.el("td", "muted", "the newest " + MAX_LANES + " of " + all.length + " connections, and any with a violation")).colSpan = 10;
    rows.appendChild(note);
  }
  all.filter(function (l, i) { return l.violations.length > 0 || i >= all.length - MAX_LANES; }).forEach(function (l) {
    var tr = T.el("tr");
    if (l.violations.length) tr.className = "err";
    [l.proxy || "-", l.conn || "-", l.upstream || "-", "+" + T.fmtMs(l.start - model.t0),
      l.end === null ? "open" : T.fmtMs(l.end - l.start), T.fmtBytes(l.bytesUp), T.fmtBytes(l.bytesDown),
      l.end === null ? "-" : (l.closedBy || "?") + (l.how ? " " + l.how : ""), l.reason || "-",
      Array.from(new Set(l.spans.map(function (s) { return s.name; }))).join(", ") || "-"].forEach(function (v, i) {
      rows.appendChild(tr).appendChild(T.el("td", i >= 3 && i <= 6 ? "num" : "", String(v)));
    });
    tr.addEventListener("click", function () { select(l); });
  });
})();
