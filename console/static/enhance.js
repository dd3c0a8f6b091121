// Progressive enhancement: a slider marked data-autosubmit submits its form when let go, so the
// state shown follows the slider; without JavaScript the form's button does the same.
"use strict";
document.querySelectorAll("input[data-autosubmit]").forEach(function (input) {
  input.addEventListener("change", function () { input.form.submit(); });
});
