// The plugin of plugin.wat, in JavaScript: the same functions, for comparison (bench/wasm.mjs).
export const plugin = {
  add: (a, b) => (a + b) | 0,
  fib(n) {
    const fib = (k) => (k < 2 ? k : fib(k - 1) + fib(k - 2));
    return fib(n);
  },
  wordCount(text) {
    let count = 0;
    let inWord = false;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 32 || (c >= 9 && c <= 13)) inWord = false;
      else if (!inWord) {
        inWord = true;
        count++;
      }
    }
    return count;
  },
  checksum(bytes) {
    let a = 1;
    let b = 0;
    for (const byte of bytes) {
      a = (a + byte) % 65521;
      b = (b + a) % 65521;
    }
    return (b << 16) | a; // an i32, as the WebAssembly function returns it
  },
  greet: (name) => `Hello, ${name}!`,
};
export default plugin;
