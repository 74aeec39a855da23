// Live updates of a running deployment: the server pushes the re-rendered
// steps over server-sent events; without JavaScript the page refreshes itself.
(function () {
  var live = document.getElementById("live");
  if (!live || !live.dataset.src || !window.EventSource) return;
  var es = new EventSource(live.dataset.src);
  es.addEventListener("steps", function (ev) {
    live.innerHTML = ev.data;
    var steps = document.getElementById("steps");
    var state = document.getElementById("state");
    if (steps && state) {
      state.textContent = steps.dataset.state;
      state.className = "state " + steps.dataset.state;
    }
  });
  es.addEventListener("done", function () {
    es.close();
    // The finished page has what only a finished deployment shows (logs).
    window.setTimeout(function () { window.location.reload(); }, 300);
  });
  es.addEventListener("error", function () {
    if (es.readyState === EventSource.CLOSED) return;
  });
})();
