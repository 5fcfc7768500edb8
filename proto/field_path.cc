#include "proto/field_path.h"

#include <google/protobuf/descriptor.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace facet::proto {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// The fields along the path, checked against the message type (not an instance, whose sub-messages may be unset):
// messages all the way, and a singular numeric or bool field with presence at the end.
std::vector<const FieldDescriptor*> FieldsAlong(const google::protobuf::Descriptor* type, const std::string& path) {
  std::vector<const FieldDescriptor*> chain;
  std::string::size_type start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const FieldDescriptor* field = type ? type->FindFieldByName(name) : nullptr;
    if (!field || field->is_repeated()) throw std::logic_error("'" + path + "' is not a field of the message");
    chain.push_back(field);
    if (dot == std::string::npos) break;
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      throw std::logic_error("'" + path + "': '" + name + "' is not a message");
    }
    type = field->message_type();
    start = dot + 1;
  }
  const FieldDescriptor* last = chain.back();
  if (last->cpp_type() == FieldDescriptor::CPPTYPE_STRING || last->cpp_type() == FieldDescriptor::CPPTYPE_ENUM ||
      last->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE || !last->has_presence()) {
    throw std::logic_error("'" + path + "' is not a numeric field with presence");
  }
  return chain;
}

// The message that holds the path's last field, or null when a sub-message on the way is unset.
const Message* Holder(const Message& message, const std::vector<const FieldDescriptor*>& chain) {
  const Message* m = &message;
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    if (!m->GetReflection()->HasField(*m, chain[i])) return nullptr;
    m = &m->GetReflection()->GetMessage(*m, chain[i]);
  }
  return m;
}

Message* MutableHolder(Message& message, const std::vector<const FieldDescriptor*>& chain) {
  Message* m = &message;
  for (size_t i = 0; i + 1 < chain.size(); ++i) m = m->GetReflection()->MutableMessage(m, chain[i]);
  return m;
}

// An integer field's value: a whole number inside the type's range, or std::invalid_argument naming the path.
template <typename Int>
Int Whole(double value, const std::string& path) {
  if (!(value >= static_cast<double>(std::numeric_limits<Int>::min()) &&
        value <= static_cast<double>(std::numeric_limits<Int>::max()) && std::trunc(value) == value)) {
    throw std::invalid_argument(path + ": " + std::to_string(value) + " is not a whole number in range");
  }
  return static_cast<Int>(value);
}

}  // namespace

bool HasNumberAt(const Message& message, const std::string& path) {
  const auto chain = FieldsAlong(message.GetDescriptor(), path);
  const Message* holder = Holder(message, chain);
  return holder && holder->GetReflection()->HasField(*holder, chain.back());
}

double GetNumberAt(const Message& message, const std::string& path) {
  const auto chain = FieldsAlong(message.GetDescriptor(), path);
  const Message* holder = Holder(message, chain);
  if (!holder) return 0.0;
  const FieldDescriptor* field = chain.back();
  const auto* r = holder->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(*holder, field);
    case FieldDescriptor::CPPTYPE_INT64: return static_cast<double>(r->GetInt64(*holder, field));
    case FieldDescriptor::CPPTYPE_UINT32: return r->GetUInt32(*holder, field);
    case FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(r->GetUInt64(*holder, field));
    case FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(*holder, field);
    case FieldDescriptor::CPPTYPE_FLOAT: return r->GetFloat(*holder, field);
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(*holder, field) ? 1.0 : 0.0;
    default: throw std::logic_error("'" + path + "' is not numeric");
  }
}

void SetNumberAt(Message& message, const std::string& path, double value) {
  const auto chain = FieldsAlong(message.GetDescriptor(), path);
  Message* holder = MutableHolder(message, chain);
  const FieldDescriptor* field = chain.back();
  const auto* r = holder->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(holder, field, Whole<int32_t>(value, path)); break;
    case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(holder, field, Whole<int64_t>(value, path)); break;
    case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(holder, field, Whole<uint32_t>(value, path)); break;
    case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(holder, field, Whole<uint64_t>(value, path)); break;
    case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(holder, field, value); break;
    case FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(holder, field, static_cast<float>(value)); break;
    case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(holder, field, value != 0.0); break;
    default: throw std::logic_error("'" + path + "' is not numeric");
  }
}

}  // namespace facet::proto
