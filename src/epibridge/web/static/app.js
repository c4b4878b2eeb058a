// Progressive enhancement only: every page works without this file.
// Submitting the choice form when a select or radio changes saves a click.
document.addEventListener("change", function (event) {
  var target = event.target;
  if (!target || !target.form || !target.form.classList.contains("choose")) return;
  if (target.tagName === "SELECT" || target.type === "radio") target.form.submit();
});
