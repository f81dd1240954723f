// The campaign console: while the campaign runs, re-read its numbers every few seconds from
// the admin's activity endpoint (staff session) and swap in the server-rendered fragment.
(function () {
  "use strict";
  var INTERVAL_MS = 3000;
  function refresh(root) {
    fetch(root.dataset.activityUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (body) {
        document.getElementById("console-activity").innerHTML = body.html;
        var status = document.getElementById("console-status");
        status.textContent = body.status;
        status.className = "console-status console-status-" + body.status;
        document.getElementById("console-refreshed").textContent = "updated " + new Date().toLocaleTimeString();
        root.dataset.live = body.is_live ? "1" : "0";
      })
      .catch(function (error) {
        document.getElementById("console-refreshed").textContent = "refresh failed (" + error.message + ")";
      })
      .finally(function () { if (root.dataset.live === "1") { setTimeout(function () { refresh(root); }, INTERVAL_MS); } });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("campaign-console");
    if (root && root.dataset.live === "1") { setTimeout(function () { refresh(root); }, INTERVAL_MS); }
  });
})();
