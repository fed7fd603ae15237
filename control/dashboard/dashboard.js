// faultline dashboard: reads and drives the control API of the server that
// serves it (HTTP only: GET for state, a long poll of /api/v1/events for
// the live stream, POST/PUT/DELETE for faults and connections). With a
// token set on the server, it asks for it once (kept in sessionStorage for
// this tab) and sends it as "Authorization: Bearer". Rendering is bounded
// and batched: at most MAX_ROWS rows per table, MAX_LANES timeline lanes,
// STREAM_MAX events kept, redrawn at most every RENDER_MS.
(function () {
  "use strict";
  var T = window.FaultlineTimeline;
  var MAX_ROWS = 200, MAX_LANES = 60, KEEP_LANES = 2000, STREAM_MAX = 2000, STREAM_SHOWN = 200;
  var RENDER_MS = 500, REFRESH_MS = 1000, POLL_TIMEOUT = "20s", POLL_LIMIT = 300;

  // Each kind's own fields: [name, placeholder, type].
  var KINDS = {
    "latency": [["delay", "150ms"], ["jitter", "0s"]],
    "stall": [["drop", "", "checkbox"]],
    "blackhole": [],
    "reset": [["side", "both", "select:client,upstream,both"]],
    "half-close": [],
    "bandwidth": [["rate", "bytes/s", "number"]],
    "slice": [["size", "bytes", "number"], ["delay", "0s"]],
    "limit": [["bytes", "bytes", "number"]],
    "slow-close": [["delay", "1s"]],
    "corrupt": [["prob", "0.01", "number"]],
    "drop-on-accept": [],
    "connect-delay": [["delay", "1s"]],
    "refuse": [],
    "idle-close": [["idle", "5s"], ["abort", "", "checkbox"]],
    "stale": [["mode", "eof", "select:eof,reset,blackhole"]]
  };
  var EVENT_KINDS = ["accepted", "dialed", "dial-failed", "borrowed", "retried", "half-closed", "reset", "interrupted",
    "released", "discarded", "closed", "fault-applied", "fault-fired", "fault-cleared"];

  var token = sessionStorage.getItem("faultline-token") || "";
  var needToken = false;
  var proxies = [], conns = {}, pools = {}, faultsOf = {};
  var model = new T.Model({ maxLanes: KEEP_LANES });
  var stream = [];
  var cursor = 0, skew = null, evCount = 0, evRate = 0, selected = null, editing = null, dirty = true;

  function $(id) { return document.getElementById(id); }
  var el = T.el;

  function ApiError(status, code, message) { this.status = status; this.code = code; this.message = message; }

  // api calls the control API; it rejects with an ApiError carrying the
  // API's own message.
  function api(method, path, body) {
    var h = {};
    if (token) h["Authorization"] = "Bearer " + token;
    if (body !== undefined) h["Content-Type"] = "application/json";
    return fetch("/api/v1" + path, { method: method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" })
      .then(function (r) {
        if (r.status === 204) return null;
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) {
            if (r.status === 401) askToken(token ? "wrong token" : "");
            throw new ApiError(r.status, j.code || "", j.error || r.statusText);
          }
          return j;
        });
      });
  }

  function askToken(msg) {
    needToken = true;
    $("token-form").hidden = false;
    $("token-err").textContent = msg || "";
    $("status").textContent = "needs the control token";
  }
  $("token-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("faultline-token", token);
    needToken = false;
    $("token-form").hidden = true;
    refresh();
  });

  // --- state ---

  function refresh() {
    if (needToken) return Promise.resolve();
    return api("GET", "/proxies").then(function (ps) {
      proxies = ps || [];
      $("status").textContent = proxies.length + (proxies.length === 1 ? " proxy" : " proxies");
      return Promise.all(proxies.map(function (p) {
        var name = encodeURIComponent(p.name);
        var jobs = [
          api("GET", "/proxies/" + name + "/faults").then(function (fs) { faultsOf[p.name] = fs || []; }),
          p.enabled ? api("GET", "/proxies/" + name + "/conns").then(function (cs) { conns[p.name] = cs || []; }) : (conns[p.name] = [], null)
        ];
        if (p.mode === "pool") jobs.push(api("GET", "/proxies/" + name + "/pool").then(function (st) { pools[p.name] = st; }));
        return Promise.all(jobs);
      }));
    }).then(function () { dirty = true; }, function (e) {
      if (e.status !== 401) $("status").textContent = "API error: " + e.message;
    });
  }

  function poll() {
    if (needToken) { setTimeout(poll, 500); return; }
    api("GET", "/events?after=" + cursor + "&timeout=" + POLL_TIMEOUT + "&limit=" + POLL_LIMIT).then(function (page) {
      page.events.forEach(onEvent);
      cursor = page.next;
      if (page.events.length) dirty = true;
      poll();
    }, function (e) {
      var m = /read from (\d+) on/.exec(e.message);
      if (e.code === "cursor_expired" && m) { cursor = Number(m[1]); poll(); return; }
      setTimeout(poll, 1000);
    });
  }

  function onEvent(ae) {
    evCount++;
    stats.events++;
    var t = Date.parse(ae.event.time);
    var s = Date.now() - t;
    if (!isNaN(s) && (skew === null || s < skew)) skew = s;
    model.add(ae);
    if ($("f-pause").checked) return;
    stream.push(ae);
    if (stream.length > STREAM_MAX) stream.splice(0, stream.length - STREAM_MAX);
  }

  // --- drawing ---

  function cell(tr, text, cls) { var td = el("td", cls || "", text === undefined ? "" : String(text)); tr.appendChild(td); return td; }

  function drawProxies() {
    var tb = $("proxies"), rows = document.createDocumentFragment();
    proxies.forEach(function (p) {
      var tr = el("tr");
      tr.dataset.proxy = p.name;
      var pool = pools[p.name];
      [p.name, p.mode, p.listen, p.upstream, p.enabled ? "yes" : "no"].forEach(function (v) { cell(tr, v); });
      cell(tr, (conns[p.name] || []).length, "num");
      cell(tr, (faultsOf[p.name] || []).length, "num");
      cell(tr, p.mode === "pool" && pool ? pool.idle : "-", "num");
      cell(tr, p.mode === "pool" && pool ? pool.busy : "-", "num");
      rows.appendChild(tr);
    });
    tb.replaceChildren(rows);
    syncSelect($("fault-proxy"), proxies.map(function (p) { return p.name; }), false);
    syncSelect($("f-proxy"), proxies.map(function (p) { return p.name; }), true);
  }

  // syncSelect sets a select's options to names, keeping its value.
  function syncSelect(sel, names, withAll) {
    var want = (withAll ? [""] : []).concat(names);
    var have = Array.from(sel.options).map(function (o) { return o.value; });
    if (JSON.stringify(want) === JSON.stringify(have)) return;
    var v = sel.value;
    sel.replaceChildren();
    want.forEach(function (n) { var o = el("option", "", n || "all"); o.value = n; sel.appendChild(o); });
    if (want.indexOf(v) >= 0) sel.value = v;
  }

  function faultSettings(f) {
    var skip = { name: 1, kind: 1, dir: 1 };
    if (f.kind !== "reset") skip.side = 1;
    if (f.target && Object.keys(f.target).length === 1 && f.target.which === "all") skip.target = 1;
    return Object.keys(f).filter(function (k) { return !skip[k] && f[k] !== "" && f[k] !== 0 && f[k] !== "0s" && f[k] !== false && f[k] !== null; })
      .map(function (k) { return k + "=" + (typeof f[k] === "object" ? JSON.stringify(f[k]) : f[k]); }).join(" ");
  }

  function drawFaults() {
    var name = $("fault-proxy").value, tb = $("faults"), rows = document.createDocumentFragment();
    (faultsOf[name] || []).forEach(function (f) {
      var tr = el("tr");
      tr.dataset.fault = f.name;
      cell(tr, f.name); cell(tr, f.kind); cell(tr, f.dir || ""); cell(tr, faultSettings(f));
      var td = cell(tr, "");
      var up = el("button", "", "Update"); up.type = "button";
      up.addEventListener("click", function () { editFault(f); });
      var rm = el("button", "", "Remove"); rm.type = "button";
      rm.addEventListener("click", function () {
        api("DELETE", "/proxies/" + encodeURIComponent(name) + "/faults/" + encodeURIComponent(f.name))
          .then(refresh, function (e) { $("faults-msg").textContent = e.message; });
      });
      td.appendChild(up); td.appendChild(document.createTextNode(" ")); td.appendChild(rm);
      rows.appendChild(tr);
    });
    tb.replaceChildren(rows);
  }

  function drawConns() {
    var all = [];
    proxies.forEach(function (p) { (conns[p.name] || []).forEach(function (c) { all.push([p.name, c]); }); });
    $("conns-count").textContent = all.length > MAX_ROWS ? "(the newest " + MAX_ROWS + " of " + all.length + ")" : "(" + all.length + ")";
    var shown = all.slice(Math.max(0, all.length - MAX_ROWS)).reverse();
    var rows = document.createDocumentFragment();
    shown.forEach(function (pc) {
      var name = pc[0], c = pc[1], tr = el("tr");
      tr.dataset.conn = name + "/" + c.id;
      cell(tr, name); cell(tr, c.id, "num"); cell(tr, c.client); cell(tr, c.upstream || "-", "num");
      var started = Date.parse(c.started);
      cell(tr, isNaN(started) ? c.age : T.fmtMs(Math.max(0, Date.now() - (skew || 0) - started)), "num"); cell(tr, T.fmtBytes(c.bytes_up), "num bytes-up"); cell(tr, T.fmtBytes(c.bytes_down), "num bytes-down");
      cell(tr, (c.faults || []).join(", "));
      model.liveBytes(name, c.id, c.bytes_up, c.bytes_down);
      var td = cell(tr, "");
      ["FIN", "RST"].forEach(function (how) {
        var b = el("button", "", how); b.type = "button"; b.dataset.how = how;
        b.addEventListener("click", function () {
          api("DELETE", "/proxies/" + encodeURIComponent(name) + "/conns/" + c.id + "?how=" + how)
            .then(function () { tr.className = "gone"; refresh(); }, function (e) { b.title = e.message; tr.className = "gone"; });
        });
        td.appendChild(b);
      });
      rows.appendChild(tr);
    });
    $("conns").replaceChildren(rows);
  }

  function drawTimeline() {
    var w = Number($("window").value);
    var now = Date.now() - (skew || 0);
    var opts = { maxLanes: MAX_LANES, onSelect: select, selected: selected && selected.key };
    if (w > 0) {
      opts.to = Math.max(now, model.tEnd || now);
      opts.from = opts.to - w;
      opts.filter = function (l) { return l.end === null || l.end >= opts.from; };
      opts.tickLabel = function (t) { var ago = opts.to - t; return ago < 1 ? "now" : "-" + T.fmtMs(ago); };
    } else if (model.t0 !== null) {
      opts.to = Math.max(now, model.tEnd);
    }
    T.draw($("timeline"), model, opts);
    if (selected) T.detail($("detail"), model, selected);
  }
  function select(l) { selected = l; drawTimeline(); }

  function drawStream() {
    var fp = $("f-proxy").value, fk = $("f-kind").value, fc = $("f-conn").value.trim();
    var out = [];
    for (var i = stream.length - 1; i >= 0 && out.length < STREAM_SHOWN; i--) {
      var ae = stream[i], e = ae.event;
      if (fp && ae.proxy !== fp) continue;
      if (fk && e.kind !== fk) continue;
      if (fc && String(e.conn || "") !== fc) continue;
      out.push(ae);
    }
    var frag = document.createDocumentFragment();
    out.forEach(function (ae) {
      var e = ae.event;
      var text = "#" + ae.id + " " + (ae.proxy ? ae.proxy + " " : "") + e.kind + (e.conn ? " conn=" + e.conn : "") + (e.upstream ? " upstream=" + e.upstream : "") +
        (e.reason ? " reason=" + e.reason : "") + (e.fault ? " fault=" + e.fault : "") + (e.dir ? " dir=" + e.dir : "") +
        (e.by ? " by=" + e.by : "") + (e.how ? " how=" + e.how : "") +
        (e.kind === "closed" ? " bytes_up=" + (e.bytes_up || 0) + "B bytes_down=" + (e.bytes_down || 0) + "B" : "") + (e.err ? " err=" + e.err : "");
      var li = el("li", "k-" + e.kind, text);
      li.dataset.kind = e.kind;
      frag.appendChild(li);
    });
    $("stream").replaceChildren(frag);
    var d = model.counters.discards, rows = document.createDocumentFragment();
    var rs = Object.keys(d).sort();
    if (!rs.length) { var tr0 = el("tr"); cell(tr0, "none since the page opened", "muted"); rows.appendChild(tr0); }
    rs.forEach(function (r) { var tr = el("tr"); tr.dataset.reason = r; cell(tr, r); cell(tr, d[r], "num"); rows.appendChild(tr); });
    $("discards").replaceChildren(rows);
  }

  // stats measure the page's own cost: how long each render takes and how
  // late a 100 ms timer fires (the main thread's lag), for the load test.
  var stats = { renders: 0, renderMsTotal: 0, renderMsMax: 0, lagMsMax: 0, lagMsTotal: 0, lagSamples: 0, events: 0 };
  function render() {
    var t0 = performance.now();
    if (dirty) {
      dirty = false;
      drawProxies(); drawFaults(); drawConns(); drawStream();
    }
    drawTimeline(); // its axis follows the clock
    var ms = performance.now() - t0;
    stats.renders++; stats.renderMsTotal += ms; stats.renderMsMax = Math.max(stats.renderMsMax, ms);
  }
  var lastTick = performance.now();
  setInterval(function () {
    var now = performance.now(), lag = Math.max(0, now - lastTick - 100);
    lastTick = now;
    stats.lagSamples++; stats.lagMsTotal += lag; stats.lagMsMax = Math.max(stats.lagMsMax, lag);
  }, 100);

  // --- the fault form ---

  function kindFields() {
    var kind = $("fault-kind").value, box = $("kind-fields");
    box.replaceChildren();
    (KINDS[kind] || []).forEach(function (f) {
      var label = el("label", "", f[0] + " "), input;
      var type = f[2] || "text";
      if (type.indexOf("select:") === 0) {
        input = el("select");
        type.slice(7).split(",").forEach(function (v) { var o = el("option", "", v); o.value = v; input.appendChild(o); });
        input.value = f[1];
      } else {
        input = el("input");
        input.type = type === "number" ? "text" : type;
        if (type === "number") input.inputMode = "decimal";
        input.placeholder = f[1];
        input.size = 10;
      }
      input.name = f[0];
      input.dataset.type = type;
      label.appendChild(input);
      box.appendChild(label);
    });
  }

  // faultFromForm builds the fault's JSON; values are sent as typed so that
  // the API, not the page, judges them.
  function faultFromForm() {
    var form = $("fault-form"), f = { kind: $("fault-kind").value };
    ["name", "dir", "after", "for"].forEach(function (k) { var v = form.elements[k].value.trim(); if (v) f[k] = v; });
    var ab = form.elements["after_bytes"].value.trim();
    if (ab) f.after_bytes = isNaN(Number(ab)) ? ab : Number(ab);
    Array.from($("kind-fields").querySelectorAll("input,select")).forEach(function (i) {
      if (i.type === "checkbox") { if (i.checked) f[i.name] = true; return; }
      var v = i.value.trim();
      if (!v) return;
      f[i.name] = i.dataset.type === "number" && !isNaN(Number(v)) ? Number(v) : v;
    });
    var which = form.elements["which"].value, ids = form.elements["ids"].value.trim();
    if (which || ids) {
      f.target = {};
      if (which) f.target.which = which;
      if (ids) f.target.ids = ids.split(/[\s,]+/).filter(Boolean).map(function (s) { return isNaN(Number(s)) ? s : Number(s); });
    }
    return f;
  }

  function editFault(f) {
    editing = f.name;
    var form = $("fault-form");
    $("fault-kind").value = f.kind; kindFields();
    form.elements["name"].value = f.name; form.elements["name"].disabled = true;
    form.elements["dir"].value = f.dir || "";
    form.elements["after"].value = f.after && f.after !== "0s" ? f.after : "";
    form.elements["for"].value = f.for && f.for !== "0s" ? f.for : "";
    form.elements["after_bytes"].value = f.after_bytes || "";
    form.elements["which"].value = (f.target && f.target.which) || "";
    form.elements["ids"].value = (f.target && f.target.ids || []).join(",");
    Array.from($("kind-fields").querySelectorAll("input,select")).forEach(function (i) {
      var v = f[i.name];
      if (i.type === "checkbox") i.checked = !!v; else if (v !== undefined && v !== null) i.value = v;
    });
    $("fault-submit").textContent = "Update " + f.name;
    $("fault-cancel").hidden = false;
  }
  function stopEditing() {
    editing = null;
    $("fault-form").elements["name"].disabled = false;
    $("fault-submit").textContent = "Add fault";
    $("fault-cancel").hidden = true;
  }
  $("fault-cancel").addEventListener("click", stopEditing);

  $("fault-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = $("fault-proxy").value, f = faultFromForm();
    if (!name) { $("fault-err").textContent = "no proxy"; return; }
    var base = "/proxies/" + encodeURIComponent(name) + "/faults";
    var call = editing ? api("PUT", base + "/" + encodeURIComponent(editing), Object.assign(f, { name: editing })) : api("POST", base, f);
    $("fault-err").textContent = "";
    call.then(function (got) {
      $("faults-msg").textContent = (editing ? "updated " : "added ") + got.name;
      stopEditing();
      $("fault-form").elements["name"].value = "";
      return refresh();
    }, function (e) { $("fault-err").textContent = e.message; });
  });
  $("clear-all").addEventListener("click", function () {
    var name = $("fault-proxy").value;
    if (!name) return;
    api("DELETE", "/proxies/" + encodeURIComponent(name) + "/faults").then(function () {
      $("faults-msg").textContent = "cleared every fault of " + name;
      return refresh();
    }, function (e) { $("faults-msg").textContent = e.message; });
  });

  // --- start ---

  Object.keys(KINDS).forEach(function (k) { var o = el("option", "", k); o.value = k; $("fault-kind").appendChild(o); });
  $("fault-kind").addEventListener("change", kindFields);
  kindFields();
  EVENT_KINDS.forEach(function (k) { var o = el("option", "", k); o.value = k; $("f-kind").appendChild(o); });
  ["f-proxy", "f-kind", "f-conn", "fault-proxy"].forEach(function (id) {
    $(id).addEventListener("input", function () { dirty = true; render(); });
  });
  $("window").addEventListener("change", drawTimeline);
  if (token) $("token").value = token;

  setInterval(function () { evRate = evCount; evCount = 0; $("rate").textContent = evRate + " events/s"; }, 1000);
  setInterval(render, RENDER_MS);
  setInterval(refresh, REFRESH_MS);
  refresh().then(render);
  poll();
  window.faultlineDashboard = { model: model, stats: stats, faultFromForm: faultFromForm };
})();
