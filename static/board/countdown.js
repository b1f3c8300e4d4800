// The run monitor's lease countdowns: every [data-expires-at] says how long its lease has left,
// or how long ago it ran out (flagged), once a second.
(function () {
  "use strict";
  function span(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = String(seconds % 60).padStart(2, "0");
    return minutes ? minutes + "m " + rest + "s" : Number(rest) + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires-at]").forEach(function (element) {
      var left = Math.round((Date.parse(element.dataset.expiresAt) - now) / 1000);
      element.textContent = left > 0 ? span(left) + " left" : "expired " + span(-left) + " ago";
      element.classList.toggle("text-red-600", left <= 0);
      element.classList.toggle("font-semibold", left <= 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
})();
