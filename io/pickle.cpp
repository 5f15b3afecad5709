// Decoder for the pickle numpy writes for np.save(dict); see io/pickle.hpp for the accepted subset.
//
// The machine mirrors CPython's Unpickler closely enough to follow numpy's output (stack, marks, memo), but the
// objects it builds are inert records in an arena: a "call" of a whitelisted global only records what numpy
// would construct, and arrays are checked and decoded at the very end, when the dict key they belong to is
// known and can be named in a message. Objects refer to each other by arena index, so cyclic structures a
// hostile pickle can build (a list appended to itself) cost nothing and are never walked recursively.
#include "io/pickle.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include "src/errors.hpp"

namespace popcode {
namespace {

constexpr std::size_t kMaxStack = std::size_t{1} << 20;
constexpr std::size_t kMaxMemo = std::size_t{1} << 20;
constexpr std::size_t kMaxObjects = std::size_t{1} << 22;
constexpr std::uint32_t kNoObj = 0xFFFFFFFFu;
constexpr std::uint32_t kNone = 0, kFalse = 1, kTrue = 2;  // preallocated objects

enum class Kind : std::uint8_t {
  none,
  boolean,
  integer,
  real,
  str,
  bytes,
  py2str,
  tuple,
  list,
  dict,
  global,
  dtype,
  array
};

// The whitelisted globals, by what they construct.
enum class Callable : std::uint8_t { none, reconstruct, ndarray, dtype, scalar, frombuffer, encode, bytes };

struct Obj {
  Kind kind = Kind::none;
  Callable callable = Callable::none;  // global
  char byteorder = 0;                  // dtype: byte order from its BUILD state (0: never built)
  bool flag = false;                   // boolean value
  std::int64_t i = 0;                  // integer value; dtype: element size from the state (-1: unknown)
  double d = 0;                        // real value
  std::string text;                    // str (UTF-8), bytes, py2str; dtype: type string such as "f4"; global: name
  std::vector<std::uint32_t> items;    // tuple, list; dict: key, value, key, value, ...
  // array: [shape, dtype, fortran order, data] object indices once built (kNoObj: shape () / C order)
};

struct Opcode {
  unsigned char code;
  const char* name;
};

// clang-format off
constexpr Opcode kOpcodes[] = {
    {0x80, "PROTO"},       {0x95, "FRAME"},       {'.', "STOP"},           {'(', "MARK"},
    {'c', "GLOBAL"},       {0x93, "STACK_GLOBAL"}, {'q', "BINPUT"},        {'r', "LONG_BINPUT"},
    {0x94, "MEMOIZE"},     {'h', "BINGET"},       {'j', "LONG_BINGET"},    {')', "EMPTY_TUPLE"},
    {'t', "TUPLE"},        {0x85, "TUPLE1"},      {0x86, "TUPLE2"},        {0x87, "TUPLE3"},
    {']', "EMPTY_LIST"},   {'a', "APPEND"},       {'e', "APPENDS"},        {'}', "EMPTY_DICT"},
    {'s', "SETITEM"},      {'u', "SETITEMS"},     {'N', "NONE"},           {0x88, "NEWTRUE"},
    {0x89, "NEWFALSE"},    {'J', "BININT"},       {'K', "BININT1"},        {'M', "BININT2"},
    {0x8a, "LONG1"},       {'G', "BINFLOAT"},     {0x8c, "SHORT_BINUNICODE"}, {'X', "BINUNICODE"},
    {0x8d, "BINUNICODE8"}, {'C', "SHORT_BINBYTES"}, {'B', "BINBYTES"},     {0x8e, "BINBYTES8"},
    {0x96, "BYTEARRAY8"},  {'U', "SHORT_BINSTRING"}, {'T', "BINSTRING"},   {'R', "REDUCE"},
    {'b', "BUILD"},        {0x81, "NEWOBJ"},
};
// clang-format on

const char* opcode_name(unsigned char op) {
  for (const Opcode& o : kOpcodes) {
    if (o.code == op) return o.name;
  }
  return nullptr;
}

// A string for messages: at most 80 characters, control characters shown as '?'.
std::string printable(std::string_view s) {
  std::string out(s.substr(0, std::min<std::size_t>(s.size(), 80)));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s.size() > 80 ? out + "..." : out;
}

std::string items(std::size_t n) { return fmt::format("{} item{}", n, n == 1 ? "" : "s"); }

// Decodes UTF-8 (with surrogates allowed, as CPython's pickle writes them) to code points; false if malformed.
bool utf8_code_points(std::string_view s, std::vector<std::uint32_t>& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (extra > 0 && i + static_cast<std::size_t>(extra) >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    out.push_back(cp);
    i += 1 + static_cast<std::size_t>(extra);
  }
  return true;
}

std::size_t utf8_length(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

Callable whitelisted(const std::string& module, const std::string& name) {
  const bool multiarray = module == "numpy.core.multiarray" || module == "numpy._core.multiarray";
  if (multiarray && name == "_reconstruct") return Callable::reconstruct;
  if (multiarray && name == "scalar") return Callable::scalar;
  if ((module == "numpy.core.numeric" || module == "numpy._core.numeric") && name == "_frombuffer") {
    return Callable::frombuffer;
  }
  if (module == "numpy" && name == "ndarray") return Callable::ndarray;
  if (module == "numpy" && name == "dtype") return Callable::dtype;
  if (module == "_codecs" && name == "encode") return Callable::encode;
  if ((module == "builtins" || module == "__builtin__") && name == "bytes") return Callable::bytes;
  return Callable::none;
}

class Unpickler {
 public:
  Unpickler(std::span<const unsigned char> bytes, const std::string& name)
      : p_(bytes), name_(name), budget_((std::uint64_t{64} << 20) + 40 * std::uint64_t{bytes.size()}) {
    // None, False and True are shared (they are never modified), so a run of NONE opcodes costs no objects.
    objs_.resize(3);
    objs_[kFalse].kind = objs_[kTrue].kind = Kind::boolean;
    objs_[kTrue].flag = true;
  }

  std::map<std::string, NpyArray> run() {
    const std::uint32_t result = execute();
    return convert_result(result);
  }

 private:
  // ---- errors ----
  [[noreturn]] void fail(const std::string& what) const {
    const char* op = opcode_name(op_);
    throw InputError(fmt::format("{}: pickle byte {} ({}): {}", name_, op_pos_,
                                 op ? std::string(op) : fmt::format("opcode 0x{:02x}", op_), what));
  }
  [[noreturn]] static void fail_at(const std::string& where, const std::string& what) {
    throw InputError(fmt::format("{}: {}", where, what));
  }

  // ---- input ----
  std::size_t remaining() const { return p_.size() - pos_; }
  const unsigned char* take(std::uint64_t n, const char* what) {
    if (n > remaining()) {
      fail(fmt::format("{} of {} bytes but only {} bytes remain (truncated?)", what, n, remaining()));
    }
    const unsigned char* q = p_.data() + pos_;
    pos_ += static_cast<std::size_t>(n);
    return q;
  }
  std::uint64_t le(int n, const char* what) {
    const unsigned char* q = take(static_cast<std::uint64_t>(n), what);
    std::uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | q[k];
    return v;
  }
  std::string line(const char* what) {
    const std::size_t limit = std::min<std::size_t>(remaining(), 257);
    const unsigned char* start = p_.data() + pos_;
    const void* nl = std::memchr(start, '\n', limit);
    if (nl == nullptr) fail(fmt::format("{} is not a newline-terminated name of at most 256 characters", what));
    const std::size_t len = static_cast<std::size_t>(static_cast<const unsigned char*>(nl) - start);
    pos_ += len + 1;
    return std::string(reinterpret_cast<const char*>(start), len);
  }

  // ---- objects ----
  std::uint32_t make(Kind kind) {
    if (objs_.size() >= kMaxObjects) fail(fmt::format("more than {} objects; not a numpy dict pickle", kMaxObjects));
    objs_.emplace_back();
    objs_.back().kind = kind;
    return static_cast<std::uint32_t>(objs_.size() - 1);
  }
  std::uint32_t make_text(Kind kind, const unsigned char* q, std::size_t n) {
    const std::uint32_t o = make(kind);
    objs_[o].text.assign(reinterpret_cast<const char*>(q), n);
    return o;
  }
  Obj& obj(std::uint32_t o) { return objs_[o]; }

  std::string what(std::uint32_t o) const {
    const Obj& x = objs_[o];
    switch (x.kind) {
      case Kind::none: return "None";
      case Kind::boolean: return x.flag ? "True" : "False";
      case Kind::integer: return fmt::format("the integer {}", x.i);
      case Kind::real: return fmt::format("the float {}", x.d);
      case Kind::str: return fmt::format("the string '{}'", printable(x.text));
      case Kind::bytes: return fmt::format("a bytes object of {} bytes", x.text.size());
      case Kind::py2str: return fmt::format("a Python 2 string of {} bytes", x.text.size());
      case Kind::tuple: return fmt::format("a tuple of {}", items(x.items.size()));
      case Kind::list: return fmt::format("a list of {}", items(x.items.size()));
      case Kind::dict: return fmt::format("a dict of {}", items(x.items.size() / 2));
      case Kind::global: return fmt::format("the global {}", printable(x.text));
      case Kind::dtype: return fmt::format("a numpy dtype ('{}')", printable(x.text));
      case Kind::array: return "a numpy array";
    }
    return "an unknown object";
  }

  // ---- stack ----
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(std::uint32_t o) {
    if (stack_.size() >= kMaxStack) {
      fail(fmt::format("stack deeper than {} entries; not a numpy dict pickle", kMaxStack));
    }
    stack_.push_back(o);
  }
  std::uint32_t pop() {
    if (stack_.size() <= floor()) fail("stack underflow (nothing to take above the last MARK)");
    const std::uint32_t o = stack_.back();
    stack_.pop_back();
    return o;
  }
  std::uint32_t top() {
    if (stack_.size() <= floor()) fail("stack underflow (nothing above the last MARK)");
    return stack_.back();
  }
  // Removes and returns the items above the last MARK, and the MARK itself.
  std::vector<std::uint32_t> pop_mark() {
    if (marks_.empty()) fail("no MARK to collect items from");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<std::uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  void memo_put(std::uint64_t slot) {
    const std::uint32_t o = top();
    if (memo_.size() >= kMaxMemo && memo_.find(static_cast<std::uint32_t>(slot)) == memo_.end()) {
      fail(fmt::format("more than {} memo entries; not a numpy dict pickle", kMaxMemo));
    }
    memo_[static_cast<std::uint32_t>(slot)] = o;
  }
  void memo_get(std::uint64_t slot) {
    const auto it = memo_.find(static_cast<std::uint32_t>(slot));
    if (it == memo_.end()) fail(fmt::format("memo slot {} was never set", slot));
    push(it->second);
  }

  const std::string* text_of(std::uint32_t o) const {
    const Obj& x = objs_[o];
    return x.kind == Kind::str || x.kind == Kind::py2str ? &x.text : nullptr;
  }
  const std::string* bytes_of(std::uint32_t o) const {
    const Obj& x = objs_[o];
    return x.kind == Kind::bytes || x.kind == Kind::py2str ? &x.text : nullptr;
  }
  const std::vector<std::uint32_t>& tuple_of(std::uint32_t o, std::size_t min, std::size_t max, const char* what) {
    const Obj& x = objs_[o];
    if (x.kind != Kind::tuple || x.items.size() < min || x.items.size() > max) {
      fail(fmt::format("{} should be a tuple of {} items but is {}", what,
                       min == max ? fmt::format("{}", min) : fmt::format("{} to {}", min, max), this->what(o)));
    }
    return x.items;
  }

  // ---- the machine ----
  std::uint32_t execute() {
    while (pos_ < p_.size()) {
      op_pos_ = pos_;
      op_ = p_[pos_++];
      switch (op_) {
        case 0x80: {  // PROTO
          const unsigned v = *take(1, "protocol number");
          if (v > 5) fail(fmt::format("pickle protocol {} (popcode reads protocols 2 to 5)", v));
          break;
        }
        case 0x95: {  // FRAME: only a buffering hint, but its length must fit
          const std::uint64_t n = le(8, "frame length");
          if (n > remaining()) {
            fail(fmt::format("frame of {} bytes but only {} bytes remain (truncated?)", n, remaining()));
          }
          break;
        }
        case '.':  // STOP
          return pop();
        case '(':
          if (marks_.size() >= kMaxStack) fail("too many nested MARKs");
          marks_.push_back(stack_.size());
          break;
        case 'c': {
          const std::string module = line("GLOBAL module");
          const std::string name = line("GLOBAL name");
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const std::uint32_t n = pop(), m = pop();
          const std::string* name = text_of(n);
          const std::string* module = text_of(m);
          if (!name || !module) fail(fmt::format("module and name should be strings, not {} and {}", what(m), what(n)));
          push(global(*module, *name));
          break;
        }
        case 'q': memo_put(*take(1, "memo index")); break;
        case 'r': memo_put(le(4, "memo index")); break;
        case 0x94: memo_put(memo_.size()); break;
        case 'h': memo_get(*take(1, "memo index")); break;
        case 'j': memo_get(le(4, "memo index")); break;
        case ')': push(make(Kind::tuple)); break;
        case 't': {
          std::vector<std::uint32_t> items = pop_mark();
          const std::uint32_t o = make(Kind::tuple);
          obj(o).items = std::move(items);
          push(o);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          const std::size_t n = op_ - 0x84u;
          std::vector<std::uint32_t> items(n);
          for (std::size_t k = n; k-- > 0;) items[k] = pop();
          const std::uint32_t o = make(Kind::tuple);
          obj(o).items = std::move(items);
          push(o);
          break;
        }
        case ']': push(make(Kind::list)); break;
        case '}': push(make(Kind::dict)); break;
        case 'a': {
          const std::uint32_t v = pop();
          const std::uint32_t l = top();
          if (obj(l).kind != Kind::list) fail(fmt::format("APPEND to {}, not a list", what(l)));
          obj(l).items.push_back(v);
          break;
        }
        case 'e': {
          const std::vector<std::uint32_t> items = pop_mark();
          const std::uint32_t l = top();
          if (obj(l).kind != Kind::list) fail(fmt::format("APPENDS to {}, not a list", what(l)));
          obj(l).items.insert(obj(l).items.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          const std::uint32_t v = pop(), k = pop();
          const std::uint32_t d = top();
          if (obj(d).kind != Kind::dict) fail(fmt::format("SETITEM on {}, not a dict", what(d)));
          obj(d).items.push_back(k);
          obj(d).items.push_back(v);
          break;
        }
        case 'u': {
          const std::vector<std::uint32_t> items = pop_mark();
          if (items.size() % 2 != 0) {
            fail(fmt::format("SETITEMS with an odd number ({}) of keys and values", items.size()));
          }
          const std::uint32_t d = top();
          if (obj(d).kind != Kind::dict) fail(fmt::format("SETITEMS on {}, not a dict", what(d)));
          obj(d).items.insert(obj(d).items.end(), items.begin(), items.end());
          break;
        }
        case 'N': push(kNone); break;
        case 0x88: push(kTrue); break;
        case 0x89: push(kFalse); break;
        case 'J': push_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4, "BININT value")))); break;
        case 'K': push_int(*take(1, "BININT1 value")); break;
        case 'M': push_int(static_cast<std::int64_t>(le(2, "BININT2 value"))); break;
        case 0x8a: push_long(*take(1, "LONG1 length")); break;
        case 'G': {
          const unsigned char* q = take(8, "BINFLOAT value");
          std::uint64_t u = 0;
          for (int k = 0; k < 8; ++k) u = (u << 8) | q[k];  // big-endian on the wire
          const std::uint32_t o = make(Kind::real);
          std::memcpy(&obj(o).d, &u, 8);
          push(o);
          break;
        }
        case 0x8c: push_text(Kind::str, *take(1, "string length"), "string"); break;
        case 'X': push_text(Kind::str, le(4, "string length"), "string"); break;
        case 0x8d: push_text(Kind::str, le(8, "string length"), "string"); break;
        case 'C': push_text(Kind::bytes, *take(1, "bytes length"), "bytes"); break;
        case 'B': push_text(Kind::bytes, le(4, "bytes length"), "bytes"); break;
        case 0x8e: push_text(Kind::bytes, le(8, "bytes length"), "bytes"); break;
        case 0x96: push_text(Kind::bytes, le(8, "bytearray length"), "bytearray"); break;
        case 'U': push_text(Kind::py2str, *take(1, "string length"), "string"); break;
        case 'T': {
          const std::uint64_t n = le(4, "string length");
          if (n >= 0x80000000u) fail("BINSTRING with a negative length");
          push_text(Kind::py2str, n, "string");
          break;
        }
        case 'R': {
          const std::uint32_t args = pop(), f = pop();
          push(call(f, args));
          break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); for the whitelisted types the same as calling them
          const std::uint32_t args = pop(), cls = pop();
          push(call(cls, args));
          break;
        }
        case 'b': {
          const std::uint32_t state = pop();
          build(top(), state);
          break;
        }
        default:
          fail(
              fmt::format("unsupported pickle opcode 0x{:02x} ('{}'); numpy's dict pickles use only protocol 2-5 "
                          "data opcodes",
                          op_, op_ >= 0x20 && op_ < 0x7f ? static_cast<char>(op_) : '?'));
      }
    }
    op_pos_ = pos_;
    op_ = 0;
    throw InputError(
        fmt::format("{}: pickle ends after {} bytes without a STOP opcode (truncated?)", name_, p_.size()));
  }

  void push_int(std::int64_t v) {
    const std::uint32_t o = make(Kind::integer);
    obj(o).i = v;
    push(o);
  }
  void push_long(std::size_t n) {
    const unsigned char* q = take(n, "LONG1 value");
    // Little-endian two's complement; bytes beyond the eighth may only repeat the sign.
    const bool negative = n > 0 && (q[n - 1] & 0x80) != 0;
    std::uint64_t u = negative ? ~std::uint64_t{0} : 0;
    for (std::size_t k = std::min<std::size_t>(n, 8); k-- > 0;) u = (u << 8) | q[k];
    if (n < 8 && n > 0) {
      u &= (std::uint64_t{1} << (8 * n)) - 1;
      if (negative) u |= ~((std::uint64_t{1} << (8 * n)) - 1);
    }
    for (std::size_t k = 8; k < n; ++k) {
      if (q[k] != (negative ? 0xFF : 0x00)) fail(fmt::format("integer of {} bytes does not fit in 64 bits", n));
    }
    if (n > 8 && ((u >> 63) != 0) != negative) fail(fmt::format("integer of {} bytes does not fit in 64 bits", n));
    push_int(static_cast<std::int64_t>(u));
  }
  void push_text(Kind kind, std::uint64_t n, const char* what) {
    const unsigned char* q = take(n, what);
    push(make_text(kind, q, static_cast<std::size_t>(n)));
  }

  std::uint32_t global(const std::string& module, const std::string& name) {
    const Callable c = whitelisted(module, name);
    if (c == Callable::none) {
      fail(
          fmt::format("forbidden global {}.{}: popcode never imports or calls anything, and understands only "
                      "numpy's array-reconstruction globals",
                      printable(module), printable(name)));
    }
    const std::uint32_t o = make(Kind::global);
    obj(o).callable = c;
    obj(o).text = module + "." + name;
    return o;
  }

  // REDUCE / NEWOBJ of a whitelisted global: records what numpy would construct.
  std::uint32_t call(std::uint32_t f, std::uint32_t args_obj) {
    if (obj(f).kind != Kind::global) fail(fmt::format("call of {}, which is not a callable", what(f)));
    if (obj(args_obj).kind != Kind::tuple) fail(fmt::format("arguments are {}, not a tuple", what(args_obj)));
    // No whitelisted callable takes more than 4 arguments; refusing more early keeps a memoized huge tuple from
    // being looked at again and again. (Deque elements stay put as objects are added, so the reference is safe.)
    const std::vector<std::uint32_t>& args = obj(args_obj).items;
    if (args.size() > 4) fail(fmt::format("call of {} with {} arguments", what(f), args.size()));
    switch (obj(f).callable) {
      case Callable::reconstruct: {
        // _reconstruct(numpy.ndarray, (0,), b'b'): an empty array that a BUILD fills in.
        if (args.empty() || obj(args[0]).kind != Kind::global || obj(args[0]).callable != Callable::ndarray) {
          fail("_reconstruct of something other than numpy.ndarray");
        }
        const std::uint32_t a = make(Kind::array);
        obj(a).items.clear();
        return a;
      }
      case Callable::dtype: {
        if (args.empty() || args.size() > 3 || !text_of(args[0])) {
          fail(fmt::format("numpy.dtype called with {} instead of a type string", what(args_obj)));
        }
        const std::uint32_t t = make(Kind::dtype);
        obj(t).text = printable(*text_of(args[0]));
        obj(t).i = -1;
        return t;
      }
      case Callable::scalar: {
        // scalar(dtype, data): a numpy scalar, decoded later as a 0-d array.
        if (args.size() != 2) fail(fmt::format("numpy scalar() with {}, not (dtype, data)", what(args_obj)));
        const std::uint32_t a = make(Kind::array);
        obj(a).items = {kNoObj, args[0], kNoObj, args[1]};
        return a;
      }
      case Callable::frombuffer: {
        // _frombuffer(buffer, dtype, shape, order), protocol 5's in-band array.
        if (args.size() != 4) {
          fail(fmt::format("_frombuffer with {}, not (buffer, dtype, shape, order)", what(args_obj)));
        }
        const std::uint32_t a = make(Kind::array);
        obj(a).items = {args[2], args[1], args[3], args[0]};
        return a;
      }
      case Callable::encode: {
        // _codecs.encode(text, 'latin1'): how protocol 2 spells bytes; every code point must be below 256.
        if (args.size() != 2 || !text_of(args[0]) || !text_of(args[1])) {
          fail(fmt::format("_codecs.encode with {}, not (text, encoding)", what(args_obj)));
        }
        const std::string& enc = *text_of(args[1]);
        if (enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1" && enc != "iso8859-1") {
          fail(fmt::format("_codecs.encode to '{}' (only latin1 is understood)", printable(enc)));
        }
        std::vector<std::uint32_t> cps;
        if (!utf8_code_points(*text_of(args[0]), cps)) fail("_codecs.encode of malformed UTF-8 text");
        const std::uint32_t b = make(Kind::bytes);
        std::string& out = obj(b).text;
        out.reserve(cps.size());
        for (std::uint32_t cp : cps) {
          if (cp > 0xFF) fail(fmt::format("_codecs.encode: code point 0x{:X} has no latin1 byte", cp));
          out += static_cast<char>(cp);
        }
        return b;
      }
      case Callable::bytes: {
        if (args.empty()) return make(Kind::bytes);
        if (args.size() == 1 && obj(args[0]).kind == Kind::bytes) return args[0];
        fail(fmt::format("bytes() with {} (only bytes() and bytes(b'...') are understood)", what(args_obj)));
      }
      case Callable::ndarray:
      case Callable::none: break;
    }
    fail(fmt::format("calling {} is not understood (it is only valid as an argument of _reconstruct)", what(f)));
  }

  void build(std::uint32_t target, std::uint32_t state) {
    Obj& t = obj(target);
    if (t.kind == Kind::array) {
      // ndarray.__setstate__((version, shape, dtype, is_fortran, data)); very old pickles omit the version.
      const auto& s = tuple_of(state, 4, 5, "array state");
      const std::size_t k = s.size() - 4;
      obj(target).items = {s[k], s[k + 1], s[k + 2], s[k + 3]};
      return;
    }
    if (t.kind == Kind::dtype) {
      // dtype.__setstate__((version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])).
      const auto s = tuple_of(state, 2, 9, "dtype state");
      const std::string* order = text_of(s[1]);
      if (!order || order->size() != 1 || std::string_view("<>|=").find((*order)[0]) == std::string_view::npos) {
        fail(fmt::format("dtype byte order is {}, not one of < > | =", what(s[1])));
      }
      for (std::size_t k = 2; k < std::min<std::size_t>(s.size(), 5); ++k) {
        if (obj(s[k]).kind != Kind::none) {
          fail(fmt::format("dtype '{}' has {} (a subarray or structured dtype, which popcode does not read)",
                           printable(obj(target).text), k == 2 ? "a subarray shape" : "named fields"));
        }
      }
      std::int64_t elsize = -1;
      if (s.size() >= 6) {
        if (obj(s[5]).kind != Kind::integer) fail(fmt::format("dtype element size is {}", what(s[5])));
        elsize = obj(s[5]).i;
      }
      obj(target).byteorder = (*order)[0];
      obj(target).i = elsize;
      return;
    }
    fail(fmt::format("BUILD (setting the state) of {}, which is not a numpy array or dtype", what(target)));
  }

  // ---- conversion of the final result ----
  std::string dtype_descr(std::uint32_t o, const std::string& where) const {
    const Obj& t = objs_[o];
    if (t.kind != Kind::dtype) fail_at(where, fmt::format("the array's dtype is {}, not a numpy dtype", what(o)));
    std::string ts = t.text;
    if (!ts.empty() && std::string_view("<>|=").find(ts[0]) != std::string_view::npos) return ts;
    // A flexible type without a length ('U', 'S') takes it from the state's element size.
    const bool flexible = !ts.empty() && (ts[0] == 'U' || ts[0] == 'S');
    if (flexible && ts.size() == 1 && t.i > 0) ts += std::to_string(ts[0] == 'U' ? t.i / 4 : t.i);
    const char order = t.byteorder == 0 ? '=' : t.byteorder;
    return order + ts;
  }

  std::vector<std::int64_t> shape_of(std::uint32_t o, const std::string& where) const {
    if (o == kNoObj) return {};
    const Obj& s = objs_[o];
    if (s.kind != Kind::tuple) fail_at(where, fmt::format("the array shape is {}, not a tuple", what(o)));
    if (s.items.size() > 64) fail_at(where, fmt::format("the array shape has {} dimensions", s.items.size()));
    std::vector<std::int64_t> shape;
    for (std::uint32_t d : s.items) {
      if (objs_[d].kind != Kind::integer) fail_at(where, fmt::format("the array shape contains {}", what(d)));
      shape.push_back(objs_[d].i);
    }
    return shape;
  }

  bool fortran_of(std::uint32_t o, const std::string& where) const {
    if (o == kNoObj) return false;
    const Obj& f = objs_[o];
    if (f.kind == Kind::boolean) return f.flag;
    if (f.kind == Kind::integer && (f.i == 0 || f.i == 1)) return f.i == 1;
    if (f.kind == Kind::str && (f.text == "C" || f.text == "F")) return f.text == "F";
    fail_at(where, fmt::format("the array's Fortran-order flag is {}", what(o)));
  }

  NpyHeader array_header(std::uint32_t a, const std::string& where) const {
    const Obj& x = objs_[a];
    if (x.items.size() != 4) fail_at(where, "a numpy array whose contents were never set (no BUILD)");
    NpyHeader h;
    parse_npy_descr(dtype_descr(x.items[1], where), h, where);
    const Obj& dt = objs_[x.items[1]];
    const bool flexible = h.kind == 'U' || h.kind == 'S';
    if (flexible && dt.i > 0 && dt.i != h.item_size) {
      fail_at(where,
              fmt::format("dtype {} has {} bytes per element but its state says {}", h.dtype, h.item_size, dt.i));
    }
    h.shape = shape_of(x.items[0], where);
    h.fortran_order = fortran_of(x.items[2], where);
    check_npy_shape(h, where);
    return h;
  }

  void charge(std::uint64_t bytes, const std::string& where) {
    if (bytes > budget_ - used_) {
      fail_at(where, fmt::format("the arrays of the dict expand to more than {} bytes in memory (the same array stored "
                                 "under many keys?)",
                                 budget_));
    }
    used_ += bytes;
  }

  NpyArray value_of(std::uint32_t v, const std::string& where) {
    const Obj& x = objs_[v];
    NpyArray a;
    switch (x.kind) {
      case Kind::array: {
        const NpyHeader h = array_header(v, where);
        if (h.kind == 'O') {
          fail_at(where, "holds an object array (dtype |O); popcode reads numeric, bool and string arrays only");
        }
        const std::string* data = bytes_of(x.items[3]);
        if (!data) fail_at(where, fmt::format("the array data is {}, not bytes", what(x.items[3])));
        if (data->size() != h.data_bytes()) {
          fail_at(where, fmt::format("shape {} of {} needs {} data bytes but the pickle holds {}",
                                     npy_shape_string(h.shape), h.dtype, h.data_bytes(), data->size()));
        }
        const std::uint64_t n = static_cast<std::uint64_t>(h.count());
        charge(h.kind == 'U' || h.kind == 'S' ? n * (sizeof(std::string) + static_cast<std::uint64_t>(h.item_size))
                                              : n * sizeof(double),
               where);
        return decode_npy_data(h, std::span(reinterpret_cast<const unsigned char*>(data->data()), data->size()), where);
      }
      case Kind::boolean:
      case Kind::integer:
      case Kind::real:
        charge(sizeof(double), where);
        a.dtype = x.kind == Kind::boolean ? "|b1" : x.kind == Kind::integer ? "<i8" : "<f8";
        a.values = {x.kind == Kind::boolean   ? (x.flag ? 1.0 : 0.0)
                    : x.kind == Kind::integer ? static_cast<double>(x.i)
                                              : x.d};
        return a;
      case Kind::str:
      case Kind::py2str:
      case Kind::bytes:
        charge(sizeof(std::string) + x.text.size(), where);
        a.dtype = x.kind == Kind::str ? fmt::format("<U{}", std::max<std::size_t>(1, utf8_length(x.text)))
                                      : fmt::format("|S{}", std::max<std::size_t>(1, x.text.size()));
        a.strings = {x.text};
        return a;
      default:
        fail_at(where, fmt::format("holds {}; popcode reads numpy arrays, numbers, bools and strings only", what(v)));
    }
  }

  std::map<std::string, NpyArray> convert_result(std::uint32_t result) {
    const std::string where = name_ + ": pickle";
    std::uint32_t d = result;
    if (obj(result).kind == Kind::array) {
      // np.save(dict) pickles a 0-d object array whose only element is the dict.
      const NpyHeader h = array_header(result, where);
      if (h.kind != 'O' || !h.shape.empty()) {
        fail_at(where,
                fmt::format("holds an array of shape {} and dtype {}, not a dict", npy_shape_string(h.shape), h.dtype));
      }
      const std::uint32_t list = obj(result).items[3];
      if (obj(list).kind != Kind::list || obj(list).items.size() != 1) {
        fail_at(where, fmt::format("the object array's elements are {}, not a list of one dict", what(list)));
      }
      d = obj(list).items[0];
    }
    if (obj(d).kind != Kind::dict) fail_at(where, fmt::format("holds {}, not a dict", what(d)));
    std::map<std::string, NpyArray> out;
    const std::vector<std::uint32_t> items = obj(d).items;
    for (std::size_t k = 0; k + 1 < items.size(); k += 2) {
      const std::string* key = text_of(items[k]);
      if (!key) fail_at(where, fmt::format("dict key {} is {}, not a string", k / 2, what(items[k])));
      out.insert_or_assign(*key,
                           value_of(items[k + 1], fmt::format("{}: pickled dict key '{}'", name_, printable(*key))));
    }
    return out;
  }

  std::span<const unsigned char> p_;
  const std::string& name_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  unsigned char op_ = 0;
  std::deque<Obj> objs_;
  std::vector<std::uint32_t> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, std::uint32_t> memo_;
  const std::uint64_t budget_;
  std::uint64_t used_ = 0;
};

}  // namespace

std::map<std::string, NpyArray> parse_pickled_dict(std::span<const unsigned char> pickle, const std::string& name) {
  return Unpickler(pickle, name).run();
}

}  // namespace popcode
