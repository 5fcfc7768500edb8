// Command-line flags with environment-variable overrides and generated --help. No dependencies.
// Not thread-safe: a FlagSet is filled and read by one thread at start-up. Parse throws std::invalid_argument naming
// the flag; defining a flag twice, or getting one never defined (or of another kind), is a std::logic_error.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace facet {

// Precedence: --flag on the command line, then the flag's environment variable, then its default.
// Accepts `--name value` and `--name=value`; boolean flags also accept a bare `--name` and `--no-name`.
class FlagSet {
 public:
  explicit FlagSet(std::string usage) : usage_(std::move(usage)) {}

  void String(const std::string& name, std::string default_value, std::string help, std::string env = "");
  void Int(const std::string& name, long default_value, std::string help, std::string env = "");
  void Double(const std::string& name, double default_value, std::string help, std::string env = "");
  void Bool(const std::string& name, bool default_value, std::string help, std::string env = "");

  // Parses argv[first..]; positional arguments are collected. Throws std::invalid_argument with a message naming
  // the flag on an unknown flag or a malformed value. Sets help_requested() on -h/--help.
  void Parse(int argc, const char* const* argv, int first = 1);

  std::string GetString(const std::string& name) const;
  long GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  bool IsSet(const std::string& name) const;  // given on the command line or through its environment variable

  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool };
  struct Flag {
    Kind kind;
    std::string value;
    std::string default_value;
    std::string help;
    std::string env;
    bool set = false;
  };
  void Define(const std::string& name, Kind kind, std::string default_value, std::string help, std::string env);
  void Assign(const std::string& name, Flag& flag, const std::string& value);
  const Flag& Find(const std::string& name, Kind kind) const;

  std::string usage_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace facet
