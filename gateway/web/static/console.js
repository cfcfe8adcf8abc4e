// A page waiting for something (a flow's report) has data-refresh="seconds": its main part is fetched again
// until the answer no longer asks to wait. Without JavaScript, a <noscript> meta refresh does the same.
"use strict";
const every = Number(document.body.dataset.refresh) * 1000;
if (every > 0) {
  const again = async () => {
    try {
      const answer = await fetch(location.href, {credentials: "same-origin", cache: "no-store"});
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      document.getElementById("main").replaceWith(fresh.getElementById("main"));
      document.title = fresh.title;
      if (!fresh.body.dataset.refresh) return;
    } catch (error) { /* the server is away for a moment: try again */ }
    setTimeout(again, every);
  };
  setTimeout(again, every);
}
