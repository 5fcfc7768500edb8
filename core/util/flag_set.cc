#include "core/util/flag_set.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace facet {
namespace {

bool ParseBool(const std::string& v, bool* out) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return *out = true, true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return *out = false, true;
  return false;
}

}  // namespace

void FlagSet::Define(const std::string& name, Kind kind, std::string default_value, std::string help,
                     std::string env) {
  if (flags_.count(name)) throw std::logic_error("flag --" + name + " defined twice");
  flags_[name] = Flag{kind, default_value, default_value, std::move(help), std::move(env)};
  order_.push_back(name);
}

void FlagSet::String(const std::string& name, std::string d, std::string help, std::string env) {
  Define(name, Kind::kString, std::move(d), std::move(help), std::move(env));
}
void FlagSet::Int(const std::string& name, long d, std::string help, std::string env) {
  Define(name, Kind::kInt, std::to_string(d), std::move(help), std::move(env));
}
void FlagSet::Double(const std::string& name, double d, std::string help, std::string env) {
  std::ostringstream s;
  s << d;
  Define(name, Kind::kDouble, s.str(), std::move(help), std::move(env));
}
void FlagSet::Bool(const std::string& name, bool d, std::string help, std::string env) {
  Define(name, Kind::kBool, d ? "true" : "false", std::move(help), std::move(env));
}

void FlagSet::Assign(const std::string& name, Flag& flag, const std::string& value) {
  char* end = nullptr;
  switch (flag.kind) {
    case Kind::kString: break;
    case Kind::kInt:
      std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') throw std::invalid_argument("--" + name + " needs an integer, got '" + value + "'");
      break;
    case Kind::kDouble:
      std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0') throw std::invalid_argument("--" + name + " needs a number, got '" + value + "'");
      break;
    case Kind::kBool: {
      bool b;
      if (!ParseBool(value, &b)) throw std::invalid_argument("--" + name + " needs true or false, got '" + value + "'");
      flag.value = b ? "true" : "false";
      flag.set = true;
      return;
    }
  }
  flag.value = value;
  flag.set = true;
}

void FlagSet::Parse(int argc, const char* const* argv, int first) {
  for (auto& [name, flag] : flags_) {
    if (flag.env.empty()) continue;
    if (const char* v = std::getenv(flag.env.c_str()); v && *v) {
      try {
        Assign(name, flag, v);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string(e.what()) + " (from $" + flag.env + ")");
      }
    }
  }
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help_requested_ = true;
      continue;
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.push_back(argv[i]);
      break;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end() && name.rfind("no-", 0) == 0) {
      auto negated = flags_.find(name.substr(3));
      if (negated != flags_.end() && negated->second.kind == Kind::kBool && !has_value) {
        Assign(negated->first, negated->second, "false");
        continue;
      }
    }
    if (it == flags_.end()) throw std::invalid_argument("unknown flag --" + name + " (see --help)");
    if (!has_value) {
      bool ignored;
      if (it->second.kind == Kind::kBool && (i + 1 >= argc || !ParseBool(argv[i + 1], &ignored))) {
        value = "true";
      } else {
        if (i + 1 >= argc) throw std::invalid_argument("--" + name + " needs a value");
        value = argv[++i];
      }
    }
    Assign(name, it->second, value);
  }
}

const FlagSet::Flag& FlagSet::Find(const std::string& name, Kind kind) const {
  auto it = flags_.find(name);
  if (it == flags_.end() || it->second.kind != kind) throw std::logic_error("no such flag --" + name);
  return it->second;
}

std::string FlagSet::GetString(const std::string& name) const { return Find(name, Kind::kString).value; }
long FlagSet::GetInt(const std::string& name) const { return std::strtol(Find(name, Kind::kInt).value.c_str(), nullptr, 10); }
double FlagSet::GetDouble(const std::string& name) const {
  return std::strtod(Find(name, Kind::kDouble).value.c_str(), nullptr);
}
bool FlagSet::GetBool(const std::string& name) const { return Find(name, Kind::kBool).value == "true"; }
bool FlagSet::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.set;
}

std::string FlagSet::Help() const {
  std::ostringstream out;
  out << usage_ << "\n";
  if (!order_.empty()) out << "\nflags:\n";
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = "  --" + name;
    if (f.kind != Kind::kBool) left += f.kind == Kind::kString ? " STR" : f.kind == Kind::kInt ? " N" : " X";
    out << left;
    out << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << f.help;
    if (!f.default_value.empty()) out << " (default " << f.default_value << ")";
    if (!f.env.empty()) out << " [$" << f.env << "]";
    out << "\n";
  }
  return out.str();
}

}  // namespace facet
