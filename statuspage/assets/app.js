// Live updates over /ws: state text and banner change in place. The page
// is complete without this script.
(function () {
  "use strict";
  var TEXT = {up: "Operational", degraded: "Degraded", down: "Down", unknown: "Unknown", maintenance: "Maintenance"};
  var BANNER = {
    operational: "All systems operational", degraded: "Degraded performance", partial_outage: "Partial outage",
    major_outage: "Major outage", maintenance: "Under maintenance", monitoring_degraded: "Monitoring degraded: this view may be stale"
  };
  function displayState(ev) {
    if (ev.state === "up" && ev.regions) {
      for (var r in ev.regions) { if (ev.regions[r] && ev.regions[r].vote === "down") return "degraded"; }
    }
    return TEXT[ev.state] ? ev.state : "unknown";
  }
  function overall() {
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
  function apply(ev) {
    if (!ev || ev.type !== "check" || !ev.name) return;
    var s = displayState(ev);
    document.querySelectorAll('.check[data-check="' + CSS.escape(ev.name) + '"]').forEach(function (el) {
      el.setAttribute("data-state", s);
      var st = el.querySelector('[data-role="state"]');
      if (st) { st.textContent = TEXT[s]; st.className = "state s-" + s; }
    });
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
