// Relances: small improvements on pages that work without script.
// A level chosen in the table is sent at once (the OK button is for browsers without script).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select.envoi-auto").forEach(function (select) {
    var form = select.form;
    form.querySelectorAll(".sans-script").forEach(function (button) { button.hidden = true; });
    select.addEventListener("change", function () { form.requestSubmit(); });
  });
});
