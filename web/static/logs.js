// Live logs: the page works without this file (it shows the log so far and a Reload link);
// with it, new chunks are fetched every two seconds and appended until the job is done.
(function () {
  var pre = document.getElementById("log");
  if (!pre || pre.dataset.done === "true") return;
  var state = document.getElementById("log-state");
  var after = parseInt(pre.dataset.after || "0", 10);
  function stick() { return pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20; }
  function poll() {
    fetch("/api/jobs/" + pre.dataset.job + "/log?after=" + after, { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        var bottom = stick();
        (d.chunks || []).forEach(function (c) { pre.appendChild(document.createTextNode(c.text)); after = c.seq; });
        if (bottom) pre.scrollTop = pre.scrollHeight;
        if (d.done) { state.textContent = "The job has finished."; return; }
        setTimeout(poll, 2000);
      })
      .catch(function () { state.textContent = "Live updates paused; reload the page to continue."; });
  }
  state.textContent = "The job is still running; new lines appear here as they arrive.";
  setTimeout(poll, 2000);
})();
