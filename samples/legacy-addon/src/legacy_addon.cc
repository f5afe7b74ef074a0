// legacy_addon: a deliberately badly behaved native module.
//
// It imitates the kind of old C/C++ library that gets wrapped in a Node addon and then causes
// trouble in production: global state that is not reentrant, memory and file descriptors that
// are never given back, a crash on one particular input, a call that blocks the thread it runs
// on, and a slow byte-by-byte "conversion". Every defect is real (a real leak, a real SIGSEGV),
// which is the point: process-sandbox runs this code in worker processes so that the host
// survives it. Do NOT load this module into a process you care about.
#include <napi.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

// ---------------------------------------------------------------------------------------------
// Defect 1: global, non-reentrant state.
// One static buffer and one static counter for the whole process, shared by every caller (and by
// every worker_thread that loads the addon: statics are per process, not per JS realm). Nothing
// locks them.
// ---------------------------------------------------------------------------------------------
constexpr size_t kRecordBufferSize = 64 * 1024;
char g_records[kRecordBufferSize];
size_t g_recordsUsed = 0;
long g_counter = 0;

// The probe itself uses atomics so that what it reports is trustworthy even when it is entered
// from two threads at once; the state it guards (the buffer above) has no such protection.
std::atomic<int> g_depth{0};
std::atomic<long> g_entries{0};

// Sleeps for `ms` milliseconds on the calling thread, resuming after signals.
void SleepMs(int64_t ms) {
  if (ms <= 0) return;
  timespec request{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000L)};
  timespec remaining{};
  while (nanosleep(&request, &remaining) == -1 && errno == EINTR) request = remaining;
}

// appendRecord(text: string): number
// Copies `text` and a newline into the static buffer at the static write position, then bumps
// the static counter and returns it. When the buffer is full it silently wraps to the start,
// overwriting the oldest records (the legacy "ring buffer" had no reader to protect).
Napi::Value AppendRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "appendRecord(text): text must be a string");
  }
  std::string text = info[0].As<Napi::String>().Utf8Value();
  if (text.size() + 1 > kRecordBufferSize) text.resize(kRecordBufferSize - 1);
  // Read the position once, write byte by byte, publish the new position at the end: two callers
  // interleaving here overwrite each other's records.
  size_t at = g_recordsUsed;
  if (at + text.size() + 1 > kRecordBufferSize) at = 0;
  for (char c : text) g_records[at++] = c;
  g_records[at++] = '\n';
  g_recordsUsed = at;
  return Napi::Number::New(env, static_cast<double>(++g_counter));
}

// records(): string — what the static buffer holds up to the write position.
Napi::Value Records(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), g_records, g_recordsUsed);
}

// counter(): number — the static counter, i.e. how many records this process appended.
Napi::Value Counter(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_counter));
}

// reentrancyProbe(holdMs = 0, callback?): { concurrent, depth, entries }
// Marks the non-reentrant section as entered, optionally holds it for `holdMs` (blocking the
// thread) and optionally calls `callback` from inside it (a JS re-entry), then leaves.
// `concurrent` is true if, while this call was inside, it was inside already (depth > 1 at entry)
// or anyone else entered: another thread of the same process, or the callback calling back in.
Napi::Value ReentrancyProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t holdMs = 0;
  if (info.Length() >= 1 && info[0].IsNumber()) holdMs = info[0].As<Napi::Number>().Int64Value();
  Napi::Function callback;
  if (info.Length() >= 2 && info[1].IsFunction()) callback = info[1].As<Napi::Function>();

  long entriesBefore = ++g_entries;
  int depth = ++g_depth;
  SleepMs(holdMs);
  bool nested = false;
  if (!callback.IsEmpty()) {
    try {
      callback.Call({});
    } catch (...) {
      --g_depth;
      throw;
    }
  }
  long entriesAfter = g_entries.load();
  --g_depth;
  nested = entriesAfter != entriesBefore;

  Napi::Object result = Napi::Object::New(env);
  result.Set("concurrent", Napi::Boolean::New(env, depth > 1 || nested));
  result.Set("depth", Napi::Number::New(env, depth));
  result.Set("entries", Napi::Number::New(env, static_cast<double>(entriesAfter)));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Defect 2: a native memory leak.
// leakMemory(mb: number): number — mallocs `mb` MiB, writes every byte (so the pages become
// resident and RSS grows), and never frees them. Returns the MiB leaked so far in this process.
// ---------------------------------------------------------------------------------------------
void* volatile g_lastLeak = nullptr;  // volatile: the compiler may not optimise the leak away
double g_leakedMb = 0;

Napi::Value LeakMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "leakMemory(mb): mb must be a number");
  }
  int64_t mb = info[0].As<Napi::Number>().Int64Value();
  if (mb < 0 || mb > 64 * 1024) throw Napi::RangeError::New(env, "leakMemory(mb): mb must be between 0 and 65536");
  size_t bytes = static_cast<size_t>(mb) * 1024 * 1024;
  if (bytes > 0) {
    void* block = std::malloc(bytes);
    if (block == nullptr) throw Napi::Error::New(env, "leakMemory: malloc failed");
    std::memset(block, 0xA5, bytes);
    g_lastLeak = block;  // overwritten next time: the previous block is unreachable for good
    g_leakedMb += static_cast<double>(mb);
  }
  return Napi::Number::New(env, g_leakedMb);
}

// ---------------------------------------------------------------------------------------------
// Defect 3: a file-descriptor leak.
// leakFds(n: number): number — opens /dev/null `n` times and never closes the descriptors
// (without O_CLOEXEC, as old code does, so child processes inherit them too). Returns how many it
// opened; fewer than `n` if the process ran out of descriptors (EMFILE).
// ---------------------------------------------------------------------------------------------
Napi::Value LeakFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "leakFds(n): n must be a number");
  }
  int64_t n = info[0].As<Napi::Number>().Int64Value();
  if (n < 0) throw Napi::RangeError::New(env, "leakFds(n): n must not be negative");
  int64_t opened = 0;
  for (; opened < n; ++opened) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) break;
  }
  return Napi::Number::New(env, static_cast<double>(opened));
}

// ---------------------------------------------------------------------------------------------
// Defect 4: a segfault on a poisoned input.
// parse(input: string): object — parses "key=value;key=value" with strtok (itself
// non-reentrant: it keeps its position in a hidden static). On the input "POISON" it writes
// through a null pointer: a real SIGSEGV that kills the whole process.
// ---------------------------------------------------------------------------------------------
int* volatile g_nullPointer = nullptr;  // volatile: the compiler cannot prove it null and elide the store

Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "parse(input): input must be a string");
  }
  std::string input = info[0].As<Napi::String>().Utf8Value();
  if (input == "POISON") {
    int* p = g_nullPointer;
    *p = 1;  // SIGSEGV
  }
  Napi::Object result = Napi::Object::New(env);
  std::string copy = input;
  for (char* field = std::strtok(&copy[0], ";"); field != nullptr; field = std::strtok(nullptr, ";")) {
    char* eq = std::strchr(field, '=');
    if (eq == nullptr) {
      result.Set(field, Napi::Boolean::New(env, true));
    } else {
      *eq = '\0';
      result.Set(field, Napi::String::New(env, eq + 1));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Defect 5: a blocking call.
// blockingSleep(ms: number): number — nanosleep()s on the calling thread (the JS main thread):
// no timer, no I/O, no other JS runs until it returns. Returns `ms`.
// ---------------------------------------------------------------------------------------------
Napi::Value BlockingSleep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "blockingSleep(ms): ms must be a number");
  }
  int64_t ms = info[0].As<Napi::Number>().Int64Value();
  SleepMs(ms);
  return Napi::Number::New(env, static_cast<double>(ms));
}

// ---------------------------------------------------------------------------------------------
// Defect 6: a slow conversion.
// convert(bytes: Buffer | Uint8Array, direction = 'encode'): Buffer — a reversible "legacy
// encoding": kPasses passes over the bytes, one at a time, each XORing every byte with a rolling
// checksum of the bytes already encoded. 'decode' undoes 'encode'. Synchronous and O(n * passes)
// on the calling thread.
// ---------------------------------------------------------------------------------------------
constexpr int kPasses = 32;

inline uint8_t NextState(uint32_t& state, uint8_t encoded, size_t index) {
  state = (state * 31u + encoded + static_cast<uint32_t>(index)) ^ (state >> 7);
  return static_cast<uint8_t>(state ^ (state >> 8) ^ (state >> 16));
}

void EncodePass(uint8_t* data, size_t length, int pass) {
  uint32_t state = 0x9E3779B9u * static_cast<uint32_t>(pass + 1);
  uint8_t key = static_cast<uint8_t>(state);
  for (size_t i = 0; i < length; ++i) {
    uint8_t encoded = static_cast<uint8_t>(data[i] ^ key);
    data[i] = encoded;
    key = NextState(state, encoded, i);
  }
}

void DecodePass(uint8_t* data, size_t length, int pass) {
  uint32_t state = 0x9E3779B9u * static_cast<uint32_t>(pass + 1);
  uint8_t key = static_cast<uint8_t>(state);
  for (size_t i = 0; i < length; ++i) {
    uint8_t encoded = data[i];
    data[i] = static_cast<uint8_t>(encoded ^ key);
    key = NextState(state, encoded, i);
  }
}

// The conversion itself; `progress`, when given, is called with the percentage done after each
// pass, synchronously, from C++: the legacy library's progress callback.
Napi::Value ConvertWith(const Napi::CallbackInfo& info, const char* usage, Napi::Function* progress) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, std::string(usage) + ": bytes must be a Buffer or Uint8Array");
  }
  bool decode = false;
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    std::string direction = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (direction == "decode") {
      decode = true;
    } else if (direction != "encode") {
      throw Napi::TypeError::New(env, std::string(usage) + ": direction must be 'encode' or 'decode'");
    }
  }
  Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
  Napi::Buffer<uint8_t> output = Napi::Buffer<uint8_t>::Copy(env, input.Data(), input.ElementLength());
  uint8_t* data = output.Data();
  size_t length = output.Length();
  for (int done = 0; done < kPasses; ++done) {
    if (decode) DecodePass(data, length, kPasses - 1 - done);
    else EncodePass(data, length, done);
    if (progress != nullptr) progress->Call({Napi::Number::New(env, ((done + 1) * 100) / kPasses)});
  }
  return output;
}

Napi::Value Convert(const Napi::CallbackInfo& info) {
  return ConvertWith(info, "convert(bytes, direction)", nullptr);
}

// convertWithProgress(bytes, direction, onProgress): convert(), reporting its progress through a
// callback (a whole percentage after each of the kPasses passes), as legacy libraries do.
Napi::Value ConvertWithProgress(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || !info[2].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "convertWithProgress(bytes, direction, onProgress): onProgress must be a function");
  }
  Napi::Function progress = info[2].As<Napi::Function>();
  return ConvertWith(info, "convertWithProgress(bytes, direction, onProgress)", &progress);
}

// ---------------------------------------------------------------------------------------------
// Defect 7: a C-style cursor over a large result set.
// cursorOpen(count, seed) returns a handle into a global table; cursorNext(handle) returns one row
// ({ id, name, score }) at a time, or null at the end; cursorClose(handle) releases it. A cursor
// that is never closed stays in the table for the life of the process (the legacy API has no
// finalizer). openCursors() says how many are open.
// ---------------------------------------------------------------------------------------------
struct Cursor {
  int64_t next;
  int64_t count;
  uint32_t seed;
  bool open;
};
std::vector<Cursor> g_cursors;

// The score of row `id`: uint32 arithmetic, reproduced by the JS stand-in and the demo's reference.
uint32_t RowScore(uint32_t seed, int64_t id) {
  return (seed * 2654435761u + static_cast<uint32_t>(id) * 40503u) % 1000u;
}

Cursor* CursorAt(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(usage) + ": handle must be a number");
  int64_t handle = info[0].As<Napi::Number>().Int64Value();
  if (handle < 0 || handle >= static_cast<int64_t>(g_cursors.size()) || !g_cursors[handle].open) {
    throw Napi::Error::New(info.Env(), std::string(usage) + ": no open cursor " + std::to_string(handle));
  }
  return &g_cursors[handle];
}

Napi::Value CursorOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "cursorOpen(count, seed): count and seed must be numbers");
  }
  g_cursors.push_back(Cursor{0, info[0].As<Napi::Number>().Int64Value(), info[1].As<Napi::Number>().Uint32Value(), true});
  return Napi::Number::New(env, static_cast<double>(g_cursors.size() - 1));
}

Napi::Value CursorNext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Cursor* cursor = CursorAt(info, "cursorNext(handle)");
  if (cursor->next >= cursor->count) return env.Null();
  int64_t id = cursor->next++;
  Napi::Object row = Napi::Object::New(env);
  row.Set("id", Napi::Number::New(env, static_cast<double>(id)));
  row.Set("name", Napi::String::New(env, "row-" + std::to_string(id)));
  row.Set("score", Napi::Number::New(env, RowScore(cursor->seed, id)));
  return row;
}

Napi::Value CursorClose(const Napi::CallbackInfo& info) {
  CursorAt(info, "cursorClose(handle)")->open = false;
  return info.Env().Undefined();
}

Napi::Value OpenCursors(const Napi::CallbackInfo& info) {
  int64_t open = 0;
  for (const Cursor& cursor : g_cursors) open += cursor.open ? 1 : 0;
  return Napi::Number::New(info.Env(), static_cast<double>(open));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("appendRecord", Napi::Function::New(env, AppendRecord, "appendRecord"));
  exports.Set("records", Napi::Function::New(env, Records, "records"));
  exports.Set("counter", Napi::Function::New(env, Counter, "counter"));
  exports.Set("reentrancyProbe", Napi::Function::New(env, ReentrancyProbe, "reentrancyProbe"));
  exports.Set("leakMemory", Napi::Function::New(env, LeakMemory, "leakMemory"));
  exports.Set("leakFds", Napi::Function::New(env, LeakFds, "leakFds"));
  exports.Set("parse", Napi::Function::New(env, Parse, "parse"));
  exports.Set("blockingSleep", Napi::Function::New(env, BlockingSleep, "blockingSleep"));
  exports.Set("convert", Napi::Function::New(env, Convert, "convert"));
  exports.Set("convertWithProgress", Napi::Function::New(env, ConvertWithProgress, "convertWithProgress"));
  exports.Set("cursorOpen", Napi::Function::New(env, CursorOpen, "cursorOpen"));
  exports.Set("cursorNext", Napi::Function::New(env, CursorNext, "cursorNext"));
  exports.Set("cursorClose", Napi::Function::New(env, CursorClose, "cursorClose"));
  exports.Set("openCursors", Napi::Function::New(env, OpenCursors, "openCursors"));
  return exports;
}

}  // namespace

NODE_API_MODULE(legacy_addon, Init)
