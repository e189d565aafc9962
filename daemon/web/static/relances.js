// Relances: small improvements on pages that work without script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A level chosen in the table is sent at once (the OK button is for browsers without script).
  // So is "joindre la copie de la facture" in the letter editor.
  document.querySelectorAll("select.envoi-auto, input.envoi-auto").forEach(function (select) {
    var form = select.form;
    form.querySelectorAll(".sans-script").forEach(function (button) { button.hidden = true; });
    select.addEventListener("change", function () { form.requestSubmit(); });
  });

  // The letter editor: merge fields dropped or clicked into the text, a preview that follows it.
  var text = document.getElementById("texte");
  if (!text) { return; }
  function insert(value) {
    var start = text.selectionStart, end = text.selectionEnd;
    text.setRangeText(value, start, end, "end");
    text.focus();
    text.dispatchEvent(new Event("input"));
  }
  document.querySelectorAll("button.champ").forEach(function (button) {
    button.addEventListener("click", function () { insert(button.dataset.champ); });
    button.addEventListener("dragstart", function (event) {
      event.dataTransfer.setData("text/plain", button.dataset.champ);
    });
  });
  var preview = document.getElementById("bouton-apercu");
  var timer = null;
  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { text.form.requestSubmit(preview); }, 1500);
  });
  text.form.addEventListener("submit", function (event) {
    if (event.submitter !== preview) { clearTimeout(timer); }  // saving: no preview after it
  });
  text.form.requestSubmit(preview);  // the letter as it is, on opening
});
