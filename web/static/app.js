// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = button.parentElement.querySelector(".copy-source");
  if (!source) return;
  source.select();
  navigator.clipboard?.writeText(source.value).then(() => {
    button.textContent = "Copied";
  });
});
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
