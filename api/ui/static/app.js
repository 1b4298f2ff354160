// Copy buttons: copy the text of the element named by data-copy.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
});

// Map by pointing: a click on a value of the payload tree (or on a suggestion) fills the
// JSONPath of the field being mapped, then moves on to the next data point without a path.
(() => {
  let target = null;
  const targets = () => Array.from(document.querySelectorAll("input.map-target"));
  const show = () => {
    targets().forEach((input) => input.closest("tr, label, fieldset")?.classList.remove("targeted"));
    const name = document.getElementById("target-name");
    if (!target) { if (name) name.textContent = "—"; return; }
    target.closest("tr, fieldset")?.classList.add("targeted");
    if (name) name.textContent = target.dataset.label || target.name;
  };
  const nextEmpty = (after) => {
    const all = targets().filter((input) => input.id.startsWith("path-"));
    const start = after ? all.indexOf(after) + 1 : 0;
    return all.slice(start).concat(all.slice(0, start)).find((input) => !input.value.trim()) || null;
  };
  const fill = (input, path) => {
    input.value = path;
    input.dispatchEvent(new Event("input", { bubbles: true })); // the live preview listens
  };
  document.addEventListener("focusin", (event) => {
    if (event.target.matches && event.target.matches("input.map-target")) {
      target = event.target;
      show();
    }
  });
  document.addEventListener("DOMContentLoaded", () => { target = nextEmpty(null); show(); });
  document.addEventListener("click", (event) => {
    const pick = event.target.closest("button.pick, button.use-suggestion");
    if (!pick) return;
    const input = pick.dataset.target ? document.getElementById(pick.dataset.target) : target;
    if (!input) return;
    fill(input, pick.dataset.path);
    target = input.id.startsWith("path-") ? nextEmpty(input) || input : input;
    show();
  });
})();

// The data point form: add and remove rows, and check each row as it is typed.
(() => {
  const form = document.getElementById("definition-form");
  if (!form) return;
  const body = form.querySelector("#point-rows");
  const number = (text) => text.trim() !== "" && /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text.trim());
  const check = (row) => {
    const get = (cls) => row.querySelector("." + cls);
    const id = get("dp-id").value.trim();
    const type = get("dp-type").value;
    const values = get("dp-values").value.split(",").map((v) => v.trim()).filter(Boolean);
    const [min, max] = [get("dp-min").value.trim(), get("dp-max").value.trim()];
    const ids = Array.from(body.querySelectorAll(".dp-id")).map((i) => i.value.trim()).filter(Boolean);
    let problem = "";
    const used = id || values.length || min || max;
    if (used && !id) problem = "give the data point an id";
    else if (id.length > 128) problem = "the id is longer than 128 characters";
    else if (id && ids.filter((i) => i === id).length > 1) problem = "this id is used twice";
    else if (type.startsWith("number") && values.some((v) => !number(v))) problem = "possible values must be numbers";
    else if (type === "boolean" && values.some((v) => !/^(true|false)$/i.test(v))) problem = "possible values must be true or false";
    else if (min && !number(min)) problem = "min must be a number";
    else if (max && !number(max)) problem = "max must be a number";
    else if (min && max && Number(min) > Number(max)) problem = "min is greater than max";
    row.querySelector(".row-problem").textContent = problem;
    get("dp-id").setCustomValidity(problem);
    row.classList.toggle("invalid", Boolean(problem));
  };
  const renumber = () => body.querySelectorAll("tr.point-row").forEach((row, i) => {
    row.querySelectorAll("[name]").forEach((field) => {
      field.name = field.name.replace(/^dp-\d+-/, `dp-${i + 1}-`);
    });
  });
  form.addEventListener("input", (event) => {
    if (event.target.closest("tr.point-row")) body.querySelectorAll("tr.point-row").forEach(check);
  });
  form.addEventListener("click", (event) => {
    if (event.target.id === "add-point") {
      const rows = body.querySelectorAll("tr.point-row");
      const copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll("input").forEach((input) => { input.value = ""; input.checked = false; });
      copy.querySelector(".dp-type").value = "string";
      copy.querySelector(".row-problem").textContent = "";
      body.appendChild(copy);
      renumber();
      copy.querySelector(".dp-id").focus();
    } else if (event.target.classList.contains("remove-row")) {
      const rows = body.querySelectorAll("tr.point-row");
      if (rows.length > 1) event.target.closest("tr").remove();
      else event.target.closest("tr").querySelectorAll("input").forEach((input) => { input.value = ""; });
      renumber();
      body.querySelectorAll("tr.point-row").forEach(check);
    }
  });
})();

// When the payload tree first shows a payload, refresh the preview (and its suggestions).
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id !== "payload-tree" || !event.target.querySelector(".tree")) return;
  const form = document.getElementById("mapping-form");
  if (form && window.htmx) window.htmx.trigger(form, "input");
});
