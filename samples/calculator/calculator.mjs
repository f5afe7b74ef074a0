// A plain implementation the quick demo drives: nothing here knows it runs in another process.
export class CalculatorImpl {
  #calls = 0;
  add(a, b) {
    this.#calls++;
    return a + b;
  }
  async slowSquare(x, ms = 50) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return x * x;
  }
  divide(a, b) {
    if (b === 0) throw Object.assign(new RangeError('division by zero'), { code: 'E_DIV_ZERO', operands: [a, b] });
    return a / b;
  }
  pid() {
    return process.pid;
  }
  crash() {
    process.exit(3);
  }
}
