// Live updates over /ws: state text and banner change in place. The page
// is complete without this script.
(function () {
  "use strict";
  // The page's language (body data-locale); the server formats times.
  var L = {
    en: {
      text: {up: "Operational", degraded: "Degraded", down: "Down", unknown: "Unknown", maintenance: "Maintenance"},
      banner: {
        operational: "All systems operational", degraded: "Degraded performance", partial_outage: "Partial outage",
        major_outage: "Major outage", maintenance: "Under maintenance", monitoring_degraded: "Monitoring degraded: this view may be stale"
      },
      impact: {critical: "Critical impact", major: "Major impact", minor: "Minor impact", none: "No impact"},
      started: "started", updates: "Updates, newest first"
    },
    ko: {
      text: {up: "정상", degraded: "성능 저하", down: "장애", unknown: "알 수 없음", maintenance: "점검"},
      banner: {
        operational: "모든 시스템 정상 작동 중", degraded: "성능 저하", partial_outage: "부분 장애",
        major_outage: "대규모 장애", maintenance: "점검 중", monitoring_degraded: "모니터링 저하: 이 화면은 최신이 아닐 수 있습니다"
      },
      impact: {critical: "영향: 심각", major: "영향: 큼", minor: "영향: 작음", none: "영향 없음"},
      started: "시작", updates: "업데이트, 최신순"
    }
  };
  var lang = L[document.body && document.body.getAttribute("data-locale")] || L.en;
  var TEXT = lang.text, BANNER = lang.banner;
  function displayState(ev) {
    if (ev.state === "up" && ev.regions) {
      for (var r in ev.regions) { if (ev.regions[r] && ev.regions[r].vote === "down") return "degraded"; }
    }
    return TEXT[ev.state] ? ev.state : "unknown";
  }
  var RANK = {operational: 0, maintenance: 1, monitoring_degraded: 2, degraded: 3, partial_outage: 4, major_outage: 5};
  var IMPACT = {critical: "major_outage", major: "partial_outage", minor: "degraded"};
  // An operator's open incident sets the least the banner shows.
  function withIncidents(o) {
    document.querySelectorAll('.incident[data-manual="1"][data-open="1"]').forEach(function (el) {
      var f = IMPACT[el.getAttribute("data-impact")];
      if (f && RANK[f] > RANK[o]) o = f;
    });
    return o;
  }
  function overall() { return withIncidents(checksOverall()); }
  function checksOverall() {
    var n = 0, down = 0, deg = 0, unk = 0, maint = 0;
    document.querySelectorAll(".check[data-check]").forEach(function (el) {
      var s = el.getAttribute("data-state");
      if (s === "maintenance") { maint++; return; }
      n++;
      if (s === "down") down++; else if (s === "degraded") deg++; else if (s === "unknown") unk++;
    });
    var banner = document.getElementById("banner");
    var stale = banner && banner.getAttribute("data-stale") === "1";
    if (down > 0 && down === n) return "major_outage";
    if (down > 0) return "partial_outage";
    if (deg > 0) return "degraded";
    if (stale || unk > 0 || document.querySelector(".notice.stale")) return "monitoring_degraded";
    if (maint > 0) return "maintenance";
    return "operational";
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function newIncident(ev) {
    var a = el("article", "incident");
    a.id = "incident-" + ev.id;
    a.setAttribute("data-incident", ev.id);
    var h = el("h3"), link = el("a", "", ev.title);
    link.href = ev.url;
    h.appendChild(link);
    a.appendChild(h);
    var meta = el("p", "meta"), st = el("span", "istatus");
    st.setAttribute("data-role", "istatus");
    meta.appendChild(st);
    var rest = (ev.label ? " · " + ev.label : "") + (ev.manual ? " · " + (lang.impact[ev.impact] || ev.impact) : "");
    meta.appendChild(document.createTextNode(rest + " · " + lang.started + " " + ev.started_at));
    a.appendChild(meta);
    var ol = el("ol", "timeline");
    ol.setAttribute("aria-label", lang.updates);
    a.appendChild(ol);
    return a;
  }
  // An incident update: added to its incident's timeline in place; a new
  // incident is added to the active ones; a resolved one moves to the past.
  function applyIncident(ev) {
    if (!ev.id || !ev.update) return;
    var art = document.getElementById("incident-" + ev.id);
    var active = document.getElementById("active-incidents"), past = document.getElementById("past-incidents");
    if (!art) {
      if (!active || !past) return; // not the main page
      art = newIncident(ev);
    }
    art.className = "incident i-" + ev.status;
    art.setAttribute("data-open", ev.open ? "1" : "0");
    art.setAttribute("data-manual", ev.manual ? "1" : "0");
    art.setAttribute("data-impact", ev.impact);
    var st = art.querySelector('[data-role="istatus"]');
    if (st) st.textContent = ev.status_text;
    var ol = art.querySelector("ol.timeline"), u = ev.update;
    if (ol && !ol.querySelector('[data-update="' + CSS.escape(u.id) + '"]')) {
      var at = new Date(u.at), li = el("li"), t = el("time", "", ev.update_at_text || u.at);
      li.setAttribute("data-update", u.id);
      li.setAttribute("data-at", u.at);
      t.setAttribute("datetime", u.at);
      li.appendChild(el("strong", "", ev.update_status_text));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(t);
      li.appendChild(el("p", "ubody", u.body));
      var before = null; // newest first
      ol.querySelectorAll("li[data-at]").forEach(function (x) {
        if (!before && Date.parse(x.getAttribute("data-at")) <= at.getTime()) before = x;
      });
      ol.insertBefore(li, before);
    }
    var home = ev.open ? active : past;
    if (home && art.parentNode !== home) {
      var h2 = home.querySelector("h2");
      home.insertBefore(art, h2 ? h2.nextSibling : home.firstChild);
      home.hidden = false;
      var none = document.getElementById("no-past");
      if (none && home === past) none.remove();
    }
    if (active && !active.querySelector(".incident")) active.hidden = true;
    banner();
  }
  function apply(ev) {
    if (ev && ev.type === "incident") { applyIncident(ev); return; }
    if (!ev || ev.type !== "check" || !ev.name) return;
    var s = displayState(ev);
    document.querySelectorAll('.check[data-check="' + CSS.escape(ev.name) + '"]').forEach(function (el) {
      el.setAttribute("data-state", s);
      var st = el.querySelector('[data-role="state"]');
      if (st) { st.textContent = TEXT[s]; st.className = "state s-" + s; }
    });
    groups();
    banner();
  }
  var SEVERITY = {up: 0, maintenance: 1, unknown: 2, degraded: 3, down: 4};
  // A group shows its worst check.
  function groups() {
    document.querySelectorAll(".group").forEach(function (g) {
      var st = g.querySelector('[data-role="gstate"]');
      if (!st) return;
      var w = "up";
      g.querySelectorAll(".check[data-check]").forEach(function (c) {
        var s = c.getAttribute("data-state");
        if (SEVERITY[s] > SEVERITY[w]) w = s;
      });
      st.textContent = TEXT[w];
      st.className = "state s-" + w;
    });
  }
  function banner() {
    var banner = document.getElementById("banner");
    if (banner) {
      var o = overall();
      banner.className = "banner ov-" + o;
      banner.setAttribute("data-overall", o);
      var t = document.getElementById("banner-text");
      if (t) t.textContent = BANNER[o];
    }
  }
  var delay = 1000;
  function connect() {
    if (!window.WebSocket) return;
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    var live = document.getElementById("live");
    ws.onopen = function () { delay = 1000; if (live) live.hidden = false; };
    ws.onmessage = function (m) { try { apply(JSON.parse(m.data)); } catch (e) { /* ignore malformed */ } };
    ws.onclose = function () {
      if (live) live.hidden = true;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 60000);
    };
  }
  window.vantageApply = apply;
  connect();
})();
