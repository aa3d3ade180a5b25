// Keeps a job's page live while the job runs: every second it fetches the server-rendered part that moves
// (`/jobs/{id}/live`: status, progress, message, events, artifacts; the page's cookie authorizes it) and swaps
// it in; once the job has finished it reloads the page once, for the outcome and the plots.
(() => {
  const live = document.getElementById("live");
  const note = document.getElementById("note");
  const EVERY_MS = 1000;

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  async function poll() {
    let response;
    try {
      response = await fetch(live.dataset.src, { cache: "no-store" });
    } catch (error) {
      say("The server does not answer; trying again.");
      return setTimeout(poll, 5 * EVERY_MS);
    }
    if (response.status === 401) {
      return say("This browser's token cookie is no longer accepted: open the address `ehdnas serve` printed.");
    }
    if (!response.ok) {
      say(`The server answered ${response.status}; trying again.`);
      return setTimeout(poll, 5 * EVERY_MS);
    }
    say("");
    live.innerHTML = await response.text();  // rendered and escaped by the server's templates
    if (live.querySelector("[data-finished]")) {
      return location.reload();
    }
    setTimeout(poll, EVERY_MS);
  }

  if (!live.querySelector("[data-finished]")) {
    setTimeout(poll, EVERY_MS);
  }
})();
