;; A small text plugin compiled to WebAssembly, for process-sandbox (docs/webassembly.md).
;; Build: node samples/wasm-plugin/build.mjs   (wabt from npm; writes plugin.wasm with the ABI
;; section of plugin.abi.json appended). plugin.mjs is the same plugin in JavaScript.
(module
  ;; host.log(ptr, len): granted by the pool (wasm.hostFunctions), see host-functions.mjs.
  (import "host" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)

  ;; A stack-like bump allocator: alloc grows the memory a page at a time as it needs; dealloc of
  ;; the topmost buffer gives it back (the worker frees the result, then the arguments, last first).
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (block $enough
      (loop $more
        (br_if $enough (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $more)))
    (local.get $ptr))
  (func (export "dealloc") (param $ptr i32) (param $len i32)
    (if (i32.eq (i32.add (local.get $ptr) (local.get $len)) (global.get $heap))
      (then (global.set $heap (local.get $ptr)))))

  ;; add(a, b): the trivial call.
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))

  ;; fib(n): the naive recursion (calls, lots of them).
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; wordCount(text): words separated by ASCII whitespace (a loop over the bytes).
  (func (export "wordCount") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $c i32) (local $in i32) (local $count i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.and (i32.ge_u (local.get $c) (i32.const 9)) (i32.le_u (local.get $c) (i32.const 13))))
          (then (local.set $in (i32.const 0)))
          (else (if (i32.eqz (local.get $in)) (then (local.set $in (i32.const 1)) (local.set $count (i32.add (local.get $count) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $count))

  ;; checksum(bytes): Adler-32.
  (func (export "checksum") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $a i32) (local $b i32)
    (local.set $a (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $a (i32.rem_u (i32.add (local.get $a) (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))) (i32.const 65521)))
        (local.set $b (i32.rem_u (i32.add (local.get $b) (local.get $a)) (i32.const 65521)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.or (i32.shl (local.get $b) (i32.const 16)) (local.get $a)))

  ;; greet(name): "Hello, <name>!", after logging the name through the host.
  (data (i32.const 0) "Hello, ")
  (func (export "greet") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32) (local $total i32)
    (call $log (local.get $ptr) (local.get $len))
    (local.set $total (i32.add (local.get $len) (i32.const 8)))
    (local.set $out (call $alloc (local.get $total)))
    (memory.copy (local.get $out) (i32.const 0) (i32.const 7))
    (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 7))) (i32.const 33))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.extend_i32_u (local.get $total))))
)
