// Apply the saved (or system) theme before first paint, so the page never flashes.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("atmosphere-theme"); } catch (e) { /* private mode */ }
  var light = window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches;
  document.documentElement.setAttribute("data-theme", saved || (light ? "light" : "dark"));
})();
