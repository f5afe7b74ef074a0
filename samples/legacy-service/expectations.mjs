// What a demo expected, what happened, and the summary it ends with. The summary's format is read
// by test/demos.test.mjs; keep it stable:
//
//   SUMMARY: <title>
//     ✓ [label] one-line explanation
//     ✗ [label] one-line explanation
//   RESULT: PASS, 9 of 9 expectations held        (or FAIL, 7 of 9 …)

export class Expectations {
  /** @type {{ label: string, ok: boolean, explanation: string }[]} */
  #items = [];

  /** Records one expectation: `ok` whether it held, `explanation` what happened, in one line. */
  check(label, ok, explanation) {
    this.#items.push({ label, ok: Boolean(ok), explanation: String(explanation).replace(/\s*\n\s*/g, ' ') });
    return Boolean(ok);
  }

  get items() {
    return [...this.#items];
  }

  get allHeld() {
    return this.#items.length > 0 && this.#items.every((e) => e.ok);
  }

  /** The summary as lines. */
  summary(title, { color = false } = {}) {
    const paint = (text, code) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
    const held = this.#items.filter((e) => e.ok).length;
    return [
      `SUMMARY: ${title}`,
      ...this.#items.map((e) => `  ${e.ok ? paint('✓', '32') : paint('✗', '31')} [${e.label}] ${e.explanation}`),
      `RESULT: ${this.allHeld ? paint('PASS', '32') : paint('FAIL', '31')}, ${held} of ${this.#items.length} expectations held`,
    ];
  }
}

/** A short description of an error: its class, and the message. */
export function describeError(error) {
  if (!(error instanceof Error)) return String(error);
  return `${error.constructor?.name ?? error.name}: ${error.message}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
