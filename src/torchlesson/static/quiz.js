// The quiz widget's view. It draws questions and choices, sends the learner's answer to the kernel
// and shows the kernel's verdict. It never knows the answer key: see NOTE [the key stays in the
// kernel] in src/torchlesson/_quiz_widget.py. Quiz text is always set with textContent.

/**
 * @typedef {{ id: string, text: string }} Choice
 * @typedef {{ id: string, number: number, type: "single" | "multiple" | "numeric", prompt: string,
 *             code: [string, string][], choices?: Choice[], placeholder?: string }} Question
 * @typedef {{ status: "correct" | "wrong" | "unreadable", notes: [string, string][],
 *             picked: string | string[], tries: number, solved: boolean, locked: boolean, check: number,
 *             explanation?: string, answer?: string, answer_ids?: string[] }} Feedback
 */

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Append quiz text; `backticks` become <code>. */
function inline(parent, text) {
  text.split("`").forEach((part, i) => {
    if (!part) return;
    if (i % 2) parent.append(h("code", "tlq-inline-code", part));
    else parent.append(document.createTextNode(part));
  });
  return parent;
}

/** A highlighted code block from the kernel's [cssClass, text] runs. */
function codeBlock(runs) {
  const pre = h("pre", "tlq-code");
  const code = h("code");
  for (const [css, text] of runs) {
    if (css) code.append(h("span", `tlq-tok-${css}`, text));
    else code.append(document.createTextNode(text));
  }
  pre.append(code);
  return pre;
}

/** Make `node` a polite live region. */
function status(node) {
  node.setAttribute("role", "status");
  node.setAttribute("aria-live", "polite");
  return node;
}

const STATUS = {
  correct: ["✓", "Correct"],
  wrong: ["✗", "Not yet"],
  unreadable: ["?", "Can't read that answer"],
};

/**
 * One question: its form, inputs and feedback, and the view-local state of a retry.
 * @param {Question} q
 * @param {number} total
 * @param {string} uid
 * @param {(q: Question, answer: string | string[]) => void} send
 */
function questionView(q, total, uid, send) {
  const base = `${uid}-q${q.number}`;
  const form = h("form", `tlq-question tlq-${q.type}`);
  form.noValidate = true;
  const fieldset = h("fieldset");
  const legend = h("legend");
  legend.append(h("span", "tlq-number", `Question ${q.number} of ${total}`));
  legend.append(inline(h("span", "tlq-prompt"), q.prompt));
  if (q.type === "multiple") legend.append(h("span", "tlq-hint", "Choose all that apply."));
  fieldset.append(legend);
  if (q.code.length) fieldset.append(codeBlock(q.code));

  /** @type {Map<string, {input: HTMLInputElement, mark: HTMLElement, row: HTMLElement}>} */
  const choices = new Map();
  let textInput = /** @type {HTMLInputElement | null} */ (null);
  if (q.type === "numeric") {
    const row = h("div", "tlq-numeric");
    const label = h("label", "", "Your answer");
    textInput = /** @type {HTMLInputElement} */ (h("input"));
    textInput.type = "text";
    textInput.id = `${base}-answer`;
    textInput.autocomplete = "off";
    textInput.spellcheck = false;
    textInput.placeholder = q.placeholder ?? "";
    label.htmlFor = textInput.id;
    row.append(label, textInput);
    fieldset.append(row);
  } else {
    const list = h("div", "tlq-choices");
    for (const choice of q.choices ?? []) {
      const row = h("div", "tlq-choice");
      const input = /** @type {HTMLInputElement} */ (h("input"));
      input.type = q.type === "multiple" ? "checkbox" : "radio";
      input.name = base;
      input.value = choice.id;
      input.id = `${base}-${choice.id}`;
      const label = inline(h("label"), choice.text);
      label.htmlFor = input.id;
      const mark = h("span", "tlq-mark");
      label.append(mark);
      row.append(input, label);
      list.append(row);
      choices.set(choice.id, { input, mark, row });
    }
    fieldset.append(list);
  }

  const actions = h("div", "tlq-actions");
  const check = /** @type {HTMLButtonElement} */ (h("button", "tlq-check", "Check"));
  check.type = "submit";
  const retry = /** @type {HTMLButtonElement} */ (h("button", "tlq-retry", "Try again"));
  retry.type = "button";
  retry.hidden = true;
  // Every message is a status: live regions that exist, rendered and empty, from the start (a region
  // that enters the accessibility tree already filled is often not announced), so screen readers
  // announce "Pick an answer first." and each verdict as they appear.
  const local = status(h("span", "tlq-local"));
  actions.append(check, retry, local);
  const feedback = status(h("div", "tlq-feedback"));
  feedback.tabIndex = -1;
  fieldset.append(actions, feedback);
  form.append(fieldset);

  let pending = false;
  let hiddenCheck = 0; // the check whose verdict "Try again" put away
  /** @type {Feedback | undefined} */
  let shown;

  const inputs = () => (textInput ? [textInput] : [...choices.values()].map((c) => c.input));
  const setEnabled = (on) => inputs().forEach((input) => (input.disabled = !on));

  function answer() {
    if (textInput) return textInput.value.trim();
    return [...choices.entries()].filter(([, c]) => c.input.checked).map(([id]) => id);
  }

  function clearMarks(keepReveal) {
    for (const [id, c] of choices) {
      const revealed = keepReveal && shown?.answer_ids?.includes(id);
      c.mark.textContent = revealed ? " ✓ right answer" : "";
      c.row.className = revealed ? "tlq-choice tlq-revealed" : "tlq-choice";
    }
  }

  /** @param {Feedback | undefined} fb */
  function update(fb, { focus = false } = {}) {
    shown = fb;
    pending = false;
    check.textContent = "Check";
    feedback.replaceChildren();
    form.dataset.status = fb && fb.check !== hiddenCheck ? fb.status : "open";
    if (!fb || fb.check === hiddenCheck) {
      clearMarks(true);
      setEnabled(!fb?.locked);
      check.hidden = Boolean(fb?.locked);
      retry.hidden = true;
      return;
    }
    // restore the answer this verdict is about (another view of the same quiz, or a re-render)
    if (textInput) textInput.value = String(fb.picked);
    else for (const [id, c] of choices) c.input.checked = fb.picked.includes(id);

    const [icon, word] = STATUS[fb.status];
    const head = h("p", "tlq-verdict");
    const mark = h("span", "tlq-icon", `${icon} `);
    mark.setAttribute("aria-hidden", "true"); // the word says it; the icon is for the eye
    head.append(mark, h("strong", "", word));
    if (fb.status !== "unreadable") head.append(h("span", "tlq-tries", ` (try ${fb.tries})`));
    feedback.append(head);
    for (const [about, text] of fb.notes) {
      const note = h("p", "tlq-note");
      // with several picks, say which one each explanation is about
      if (about && q.type === "multiple") inline(note.appendChild(h("span", "tlq-about")), `“${about}”: `);
      feedback.append(inline(note, text));
    }
    if (fb.answer !== undefined) feedback.append(inline(h("p", "tlq-answer"), `The answer: ${fb.answer}`));
    if (fb.explanation) feedback.append(inline(h("p", "tlq-explanation"), fb.explanation));

    clearMarks(true);
    // Marks are words, not just colours. A wrong multiple-select answer marks no single choice.
    const marked = fb.status === "correct" || (fb.status === "wrong" && q.type === "single");
    for (const id of marked && !textInput ? /** @type {string[]} */ (fb.picked) : []) {
      const c = choices.get(id);
      if (!c) continue;
      c.mark.textContent = fb.status === "correct" ? " ✓ your pick is right" : " ✗ your pick";
      c.row.className = `tlq-choice ${fb.status === "correct" ? "tlq-right" : "tlq-wrong"}`;
    }

    const open = fb.status === "unreadable";
    setEnabled(open);
    check.hidden = !open;
    retry.hidden = open || fb.locked;
    retry.textContent = fb.status === "correct" ? "Answer again" : "Try again";
    if (focus) (open ? inputs()[0] : retry.hidden ? feedback : retry).focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (pending || shown?.locked) return;
    const given = answer();
    if (!given.length) {
      local.textContent = textInput ? "Type an answer first." : "Pick an answer first.";
      return;
    }
    local.textContent = "";
    check.focus(); // keep focus in this question while its inputs are disabled
    pending = true;
    check.textContent = "Checking…";
    setEnabled(false);
    send(q, given);
  });
  form.addEventListener("change", () => (local.textContent = ""));
  retry.addEventListener("click", () => {
    hiddenCheck = shown?.check ?? 0;
    update(shown);
    const picked = inputs().find((input) => input.checked) ?? inputs()[0];
    picked?.focus();
  });

  return {
    form,
    update,
    /** @param {string} message */
    fail(message) {
      pending = false;
      check.textContent = "Check";
      setEnabled(true);
      local.textContent = message;
    },
    /** @param {Feedback | undefined} fb */
    isNew: (fb) => (fb?.check ?? 0) !== (shown?.check ?? 0),
  };
}

/**
 * Keys pressed in the quiz belong to the quiz. Without this, JupyterLab's command-mode shortcuts
 * (Enter, arrows, letters) act on the notebook: the arrows select another cell and Enter never
 * reaches the form. Modified keys (Shift+Enter runs the cell, Ctrl+S saves), Tab and Escape pass.
 * @param {KeyboardEvent} event
 */
function onKeydown(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.key === "Tab" || event.key === "Escape") return;
  if (event.shiftKey && event.key === "Enter") return;
  event.stopPropagation();
  const target = event.target;
  // Enter on a radio button or checkbox checks the answer, as it does in the text box.
  if (event.key === "Enter" && target instanceof HTMLInputElement && target.type !== "text") {
    event.preventDefault();
    target.form?.requestSubmit();
  }
}

export default {
  /** @param {{ model: any, el: HTMLElement }} ctx */
  render({ model, el }) {
    // Ids tie labels to inputs. anywidget may load this module once per widget, so a module-level
    // counter would repeat across quizzes on one page: a random prefix does not.
    const uid = `tlq${Math.random().toString(36).slice(2, 10)}`;
    const content = model.get("content");
    /** @type {Question[]} */
    const questions = content.questions;
    const root = h("section", "torchlesson-quiz");
    const title = h("h3", "tlq-title", content.title);
    title.id = `${uid}-title`;
    root.setAttribute("aria-labelledby", title.id);
    root.append(title);
    if (content.description) root.append(inline(h("p", "tlq-description"), content.description));
    const score = h("p", "tlq-score");
    root.append(score);

    const send = (q, answer) => model.send({ type: "check", question: q.id, answer });
    const views = new Map(questions.map((q) => [q.id, questionView(q, questions.length, uid, send)]));
    for (const view of views.values()) root.append(view.form);
    el.append(root);
    root.addEventListener("keydown", onKeydown);

    function refresh() {
      /** @type {Record<string, Feedback>} */
      const feedback = model.get("feedback");
      let solved = 0;
      for (const q of questions) {
        const fb = feedback[q.id];
        if (fb?.solved) solved += 1;
        const view = views.get(q.id);
        // focus follows the verdict only in the question the learner is working in
        if (view?.isNew(fb)) view.update(fb, { focus: view.form.contains(document.activeElement) });
      }
      score.textContent = `${solved} of ${questions.length} correct`;
    }
    const onMessage = (msg) => {
      if (msg?.type === "error") views.get(msg.question)?.fail(msg.message);
    };
    for (const q of questions) views.get(q.id)?.update(model.get("feedback")[q.id]);
    refresh();
    model.on("change:feedback", refresh);
    model.on("msg:custom", onMessage);
    return () => {
      model.off("change:feedback", refresh);
      model.off("msg:custom", onMessage);
    };
  },
};
