// Polls /dashboard/data.json and fills the page; callbacks/s is the difference between two polls.
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token");
  var insight = document.getElementById("insight-link");
  if (token && insight) { insight.search = "?token=" + encodeURIComponent(token); }
  var previous = null;

  function text(id, value) { document.getElementById(id).textContent = value === null || value === undefined ? "–" : String(value); }

  function table(id, columns, rows) {
    var el = document.getElementById(id);
    el.textContent = "";
    var head = el.insertRow();
    columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
    rows.forEach(function (row) {
      var tr = el.insertRow();
      columns.forEach(function (c) { tr.insertCell().textContent = row[c] === null || row[c] === undefined ? "" : String(row[c]); });
    });
  }

  function render(d) {
    if (previous && d.now > previous.now) {
      text("rate", ((d.callbacks_total - previous.callbacks_total) / (d.now - previous.now)).toFixed(1));
    }
    previous = d;
    text("total", d.callbacks_total);
    text("queue", d.queue_depth);
    text("lag", d.lag_avg_seconds);
    text("optouts", d.optouts_today);
    text("dlq", d.deadletters.count);
    text("quarantine", d.quarantine.count);
    var outcomes = {};
    Object.keys(d.outcomes_by_channel).forEach(function (ch) {
      Object.keys(d.outcomes_by_channel[ch]).forEach(function (o) { outcomes[o] = true; });
    });
    var cols = ["channel"].concat(Object.keys(outcomes).sort());
    table("outcomes", cols, Object.keys(d.outcomes_by_channel).sort().map(function (ch) {
      var row = { channel: ch };
      cols.slice(1).forEach(function (o) { row[o] = d.outcomes_by_channel[ch][o] || 0; });
      return row;
    }));
    table("events", ["received_at", "reference_id", "kind", "channel", "code", "outcome", "action"], d.latest_events);
    table("dlq-latest", ["failed_at", "kind", "target", "attempts", "error"], d.deadletters.latest);
    table("quarantine-latest", ["quarantined_at", "request_id", "reason"], d.quarantine.latest);
    text("status", "updated " + new Date(d.now * 1000).toISOString());
    document.body.setAttribute("data-loaded", "1");
  }

  function poll() {
    var headers = token ? { Authorization: "Bearer " + token } : {};
    fetch("/dashboard/data.json", { headers: headers, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(render)
      .catch(function (e) { text("status", "error: " + e.message); });
  }
  poll();
  setInterval(poll, 2000);

  // The archive search box: GET /v1/events by phone number, e-mail or reference id, newest first.
  var searchColumns = ["occurred_at", "reference_id", "kind", "channel", "code", "outcome", "phone_number", "email"];
  var found = [];
  var nextCursor = null;
  var lastQuery = null;

  function searchParams(q) {
    var p = new URLSearchParams();
    if (q.indexOf("@") >= 0) { p.set("email", q); }
    else if (/^[+\d\s().-]+$/.test(q)) { p.set("phone_number", q); }
    else { p.set("reference_id", q); }
    p.set("limit", "50");
    return p;
  }

  function runSearch(more) {
    var q = document.getElementById("search-q").value.trim();
    if (!q) { return; }
    if (!more) { found = []; nextCursor = null; lastQuery = q; }
    var p = searchParams(lastQuery);
    if (more && nextCursor) { p.set("cursor", nextCursor); }
    var headers = token ? { Authorization: "Bearer " + token } : {};
    text("search-status", "searching…");
    fetch("/v1/events?" + p.toString(), { headers: headers, cache: "no-store" })
      .then(function (r) { return r.json().then(function (body) { if (!r.ok) { throw new Error(body.error || "HTTP " + r.status); } return body; }); })
      .then(function (body) {
        body.events.forEach(function (e) {
          found.push({ occurred_at: e.occurred_at, reference_id: e.reference_id, kind: e.kind, channel: e.channel,
                       code: e.status.code, outcome: e.status.outcome, phone_number: e.phone_number, email: e.email });
        });
        nextCursor = body.next_cursor;
        table("search-results", searchColumns, found);
        document.getElementById("search-more").hidden = !nextCursor;
        text("search-status", found.length + (nextCursor ? "+" : "") + " found");
      })
      .catch(function (e) { text("search-status", "error: " + e.message); });
  }

  document.getElementById("search").addEventListener("submit", function (ev) { ev.preventDefault(); runSearch(false); });
  document.getElementById("search-more").addEventListener("click", function () { runSearch(true); });
  // /?q=... opens the page with that search done (a link to share, and what the browser test loads).
  var initial = new URLSearchParams(location.search).get("q");
  if (initial) { document.getElementById("search-q").value = initial; runSearch(false); }
})();
